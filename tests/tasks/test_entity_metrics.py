"""tfmodels.metrics.entity_scores against seqeval 1.2.2 (default mode, conlleval semantics)."""

import random
import warnings

import pytest

from tfmodels.metrics import entity_scores, tag_chunks

seqeval_metrics = pytest.importorskip("seqeval.metrics")
from seqeval.metrics.sequence_labeling import get_entities  # noqa: E402

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-ORG", "I-ORG"]


def _random_sequences(rng, n):
    return [[rng.choice(TAGS) for _ in range(rng.randint(0, 9))] for _ in range(n)]


def _seqeval(gold, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined precision/recall warnings
        report = seqeval_metrics.classification_report(gold, pred, output_dict=True, zero_division=0)
        return {
            "precision": seqeval_metrics.precision_score(gold, pred, zero_division=0),
            "recall": seqeval_metrics.recall_score(gold, pred, zero_division=0),
            "f1": seqeval_metrics.f1_score(gold, pred, zero_division=0),
            "report": report,
        }


@pytest.mark.parametrize("seed", range(20))
def test_matches_seqeval_on_random_tag_soup(seed):
    rng = random.Random(seed)
    gold = _random_sequences(rng, 12)
    # Predictions: the gold with some tags changed, so there are hits and misses.
    pred = [[rng.choice(TAGS) if rng.random() < 0.3 else t for t in seq] for seq in gold]
    ours, theirs = entity_scores(gold, pred), _seqeval(gold, pred)
    for key in ("precision", "recall", "f1"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-12), key
    for type_, row in ours["per_type"].items():
        if row["support"]:
            assert row["f1"] == pytest.approx(theirs["report"][type_]["f1-score"], abs=1e-12)
            assert row["support"] == theirs["report"][type_]["support"]


@pytest.mark.parametrize("seed", range(20))
def test_chunks_match_seqeval_get_entities(seed):
    rng = random.Random(100 + seed)
    (tags,) = _random_sequences(rng, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert tag_chunks(tags) == get_entities(tags)


def test_hand_checked_repairs():
    # I-PER after O starts an entity; a type change splits; E ends; S is single.
    assert tag_chunks(["O", "I-PER", "I-PER", "I-LOC", "S-LOC", "B-ORG", "E-ORG", "I-ORG"]) == [
        ("PER", 1, 2), ("LOC", 3, 3), ("LOC", 4, 4), ("ORG", 5, 6), ("ORG", 7, 7)]
    perfect = entity_scores([["B-PER", "O"]], [["B-PER", "O"]])
    assert (perfect["precision"], perfect["recall"], perfect["f1"]) == (1.0, 1.0, 1.0)
    nothing = entity_scores([["O"]], [["O"]])
    assert nothing["f1"] == 0.0 and nothing["per_type"] == {}


def test_bad_input():
    with pytest.raises(ValueError, match="sentence 1: 2 gold tags but 1 predicted"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="2 gold sentences but 1"):
        entity_scores([["O"], ["O"]], [["O"]])
