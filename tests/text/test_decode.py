"""decode: ids -> Python text on both tokenizers (the user-facing name of detokenize)."""

from tfmodels.text import BertTokenizer
from tfmodels.text.byte_pair import BytePairTokenizer, bytes_to_unicode

WORDPIECE_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "qu", "##ick", "fox", "."]


def test_wordpiece_decode_gives_a_string_for_one_sequence_and_a_list_for_a_batch():
    tokenizer = BertTokenizer(WORDPIECE_VOCAB)
    ids = tokenizer(["The quick fox.", "fox"])
    assert tokenizer.decode(ids) == ["the quick fox .", "fox"]
    assert tokenizer.decode(ids.to_list()) == ["the quick fox .", "fox"]
    assert tokenizer.decode([5, 6, 7]) == "the quick"
    assert tokenizer.decode(tokenizer.tokenize("quick")) == "quick"


def test_byte_pair_decode_restores_any_text_and_skips_special_tokens():
    letters = list(bytes_to_unicode().values())
    tokenizer = BytePairTokenizer(letters + ["<e>"], [], special_tokens=["<e>"])
    text = "Héllo 世界 🙂!"
    ids = tokenizer.tokenize(text).numpy().tolist()
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode([ids, ids[:1]]) == [text, "H"]
    end = tokenizer.token_to_id("<e>")
    assert tokenizer.decode(ids + [end]) == text + "<e>"
    assert tokenizer.decode(ids + [end], skip_special_tokens=True) == text
    cut = tokenizer.tokenize("é").numpy().tolist()[:1]  # half a character
    assert tokenizer.decode(cut) == "\ufffd"
