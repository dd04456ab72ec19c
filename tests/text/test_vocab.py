"""Vocabulary files: bad input gives clear errors; learning a vocabulary from IMDB."""

import pytest

from tfmodels.text import BertTokenizer, learn_vocabulary, load_vocabulary

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _write(tmp_path, data: bytes):
    path = tmp_path / "vocab.txt"
    path.write_bytes(data)
    return str(path)


def test_missing_special_tokens_is_a_clear_error(tmp_path):
    path = _write(tmp_path, "\n".join(["[PAD]", "[UNK]", "[CLS]", "hello"]).encode() + b"\n")
    with pytest.raises(ValueError, match=r"\[SEP\], \[MASK\]"):
        BertTokenizer.from_vocab_file(path)


def test_non_utf8_vocab_line_is_a_clear_error(tmp_path):
    path = _write(tmp_path, b"[PAD]\n[UNK]\ncaf\xe9\n")
    with pytest.raises(ValueError, match="line 3"):
        load_vocabulary(path)
    with pytest.raises(ValueError, match="empty"):
        load_vocabulary(_write(tmp_path, b""))


def test_vocab_file_semantics_follow_bert(tmp_path, vocab_path):
    # Lines are stripped, the final newline adds no token, a repeated token
    # maps to its last line (as BERT's load_vocab and HF do).
    path = _write(tmp_path, "\n".join(SPECIALS + [" dog ", "cat", "dog"]).encode() + b"\n")
    tok = BertTokenizer.from_vocab_file(path)
    assert tok.vocabulary_size() == 8 and tok.token_to_id("dog") == 7
    assert tok(["dog cat"]).to_list() == [[7, 6]]
    assert len(load_vocabulary(vocab_path)) == 30522


def test_learned_vocabulary_tokenizes_held_out_reviews(imdb_texts):
    # tensorflow-text's learner is pure Python and slow: keep the corpus small.
    train, held_out = imdb_texts[:80], imdb_texts[400:430]
    vocab = learn_vocabulary(train, vocabulary_size=600, min_count=2)
    assert vocab[:5] == SPECIALS and 300 < len(vocab) <= 600
    assert any(t.startswith("##") for t in vocab)
    tok = BertTokenizer(vocab)
    ids = tok(held_out).to_list()
    total = sum(map(len, ids))
    unknown = sum(row.count(tok.unk_token_id) for row in ids)
    assert total > 3000 and unknown / total < 0.02
