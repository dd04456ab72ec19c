"""The official SQuAD v1.1 metrics (``evaluate-v1.1.py``): exact match and bag-of-tokens F1."""

import collections
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text):
    """Lower case, drop ``string.punctuation``, drop the words a/an/the, collapse whitespace
    (the order of ``evaluate-v1.1.py``)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _f1(prediction, gold):
    predicted, reference = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((collections.Counter(predicted) & collections.Counter(reference)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def squad_em_f1(prediction, gold_answers):
    """``(exact_match, f1)`` of one predicted answer: each the maximum over the gold answers.

    Args:
        prediction: the predicted answer text.
        gold_answers: the gold answer texts (a single string is taken as one answer).

    Returns:
        ``(em, f1)``: ``em`` 0.0 or 1.0, ``f1`` in [0, 1].

    Example:
    >>> squad_em_f1("The Eiffel Tower!", ["Eiffel tower", "the tower"])
    (1.0, 1.0)
    >>> squad_em_f1("Denver Broncos", ["Broncos"])
    (0.0, 0.6666666666666666)
    """
    if isinstance(gold_answers, str):
        gold_answers = [gold_answers]
    if not isinstance(prediction, str) or not all(isinstance(g, str) for g in gold_answers):
        raise TypeError("squad_em_f1 takes a prediction string and a list of gold answer strings")
    if not gold_answers:
        raise ValueError("squad_em_f1 needs at least one gold answer")
    em = max(float(normalize_answer(prediction) == normalize_answer(g)) for g in gold_answers)
    return em, max(_f1(prediction, g) for g in gold_answers)


def squad_scores(predictions, gold_answers):
    """Corpus EM and F1, averaged over questions and ×100 (as ``evaluate-v1.1.py`` reports them).

    Args:
        predictions: one answer text per question.
        gold_answers: per question, its list of gold answer texts.

    Returns:
        ``{"exact_match": ..., "f1": ..., "count": n}``.

    Example:
    >>> squad_scores(["Broncos", "1990"], [["Denver Broncos", "Broncos"], ["1991"]])
    {'exact_match': 50.0, 'f1': 50.0, 'count': 2}
    """
    predictions, gold_answers = list(predictions), list(gold_answers)
    if len(predictions) != len(gold_answers):
        raise ValueError(f"got {len(predictions)} predictions for {len(gold_answers)} questions")
    if not predictions:
        raise ValueError("squad_scores needs at least one question")
    scores = [squad_em_f1(p, g) for p, g in zip(predictions, gold_answers)]
    return {"exact_match": 100.0 * sum(s[0] for s in scores) / len(scores),
            "f1": 100.0 * sum(s[1] for s in scores) / len(scores), "count": len(scores)}
