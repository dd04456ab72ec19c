"""tfmodels.metrics.squad_em_f1 / squad_scores against hand-checked SQuAD v1.1 cases."""

import pytest

from tfmodels.metrics import normalize_answer, squad_em_f1, squad_scores


@pytest.mark.parametrize("text,normalized", [
    ("The Denver Broncos!", "denver broncos"),
    ("  an   apple, a day ", "apple day"),
    ("Theory of the case", "theory of case"),  # "the" only as a whole word
    ("U.S.A.", "usa"),
    ("Saint-Étienne", "saintétienne"),  # accents kept, hyphen (ASCII punctuation) dropped
    ("“quoted”", "“quoted”"),  # only string.punctuation is dropped, as evaluate-v1.1.py
])
def test_normalization(text, normalized):
    assert normalize_answer(text) == normalized


def test_exact_match_and_f1_hand_checked():
    assert squad_em_f1("Denver Broncos", ["Denver Broncos", "Broncos"]) == (1.0, 1.0)
    # pred {denver, broncos}, gold {broncos}: P=1/2, R=1 -> F1=2/3
    em, f1 = squad_em_f1("Denver Broncos", ["Broncos"])
    assert em == 0.0 and f1 == pytest.approx(2 / 3)
    # pred {in, 1990s}, gold {late, 1990s}: common 1, P=1/2, R=1/2 -> 0.5
    assert squad_em_f1("in the 1990s", ["late 1990s"]) == (0.0, 0.5)
    # The maximum over gold answers, taken separately for EM and F1.
    em, f1 = squad_em_f1("Santa Clara", ["Levi's Stadium", "Santa Clara, California"])
    assert em == 0.0 and f1 == pytest.approx(2 * (1 * 2 / 3) / (1 + 2 / 3))
    # Repeated tokens count as a bag: pred {the->dropped, a, a}, gold {a}.
    assert squad_em_f1("b b", ["b"]) == (0.0, pytest.approx(2 * 0.5 * 1 / 1.5))
    assert squad_em_f1("", ["Broncos"]) == (0.0, 0.0)
    assert squad_em_f1("The", ["a"]) == (1.0, 0.0)  # both normalize to "": EM 1, F1 0 (as evaluate-v1.1)


def test_corpus_scores_are_percent_averages():
    scores = squad_scores(["Broncos", "1990", "x"], [["Denver Broncos", "Broncos"], ["1991"], ["x y"]])
    assert scores["count"] == 3
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 0 + 2 / 3) / 3)


def test_bad_input():
    with pytest.raises(TypeError, match="string"):
        squad_em_f1(3, ["a"])
    with pytest.raises(ValueError, match="gold answer"):
        squad_em_f1("a", [])
    with pytest.raises(ValueError, match="predictions"):
        squad_scores(["a"], [["a"], ["b"]])
