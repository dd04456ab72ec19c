"""The WNUT-16 split, the baseline and the word-tag mapping of tfmodels.examples.ner (the fine-tuning itself
runs in notebooks/06_ner_wnut.ipynb's fast setting)."""

import pytest

from tfmodels.datasets.wnut import (
    load_wnut16,
    most_frequent_tag_baseline,
    wnut16_splits,
    wnut16_tags,
)
from tfmodels.examples import ner
from tfmodels.metrics import entity_scores


def test_split_is_fixed_disjoint_and_complete():
    train, test = wnut16_splits(0.2, seed=0)
    again_train, again_test = wnut16_splits(0.2, seed=0)
    assert test == again_test and train == again_train
    assert len(train) + len(test) == len(load_wnut16()) and len(test) == round(0.2 * len(load_wnut16()))
    assert wnut16_splits(0.2, seed=1)[1] != test
    tags = wnut16_tags()
    assert tags[0] == "O" and len(tags) == 21
    assert {t for _, ts in train + test for t in ts} <= set(tags)


def test_baseline_scores_between_zero_and_one_and_memorises_training_words():
    train, test = wnut16_splits(0.2, seed=0)
    assert most_frequent_tag_baseline(train, train[:50]) != [["O"] * len(w) for w, _ in train[:50]]
    scores = entity_scores([t for _, t in test], most_frequent_tag_baseline(train, test))
    assert 0.0 < scores["f1"] < 1.0


def test_entities_to_word_tags():
    words = ["I", "love", "New", "York", "and", "@bob"]
    text = " ".join(words)
    entities = [{"type": "geo-loc", "start": text.index("New"), "end": text.index("York") + 4},
                {"type": "person", "start": text.index("bob"), "end": len(text)}]
    assert ner.entities_to_word_tags(words, entities) == [
        "O", "O", "B-geo-loc", "I-geo-loc", "O", "B-person"]


def test_every_flag_has_help_with_its_default(capsys):
    with pytest.raises(SystemExit):
        ner.main(["--help"])
    help_text = capsys.readouterr().out
    for flag in ("--epochs", "--seeds", "--sequence-length", "--export-dir", "--smoke", "--split-seed"):
        assert flag in help_text
    assert help_text.count("(default:") >= 12
