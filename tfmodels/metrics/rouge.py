"""ROUGE-1/2/L F1 as the field computes it: Google's ``rouge-score`` (PyPI), Porter stemming."""

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_SCORER = None


def _scorer():
    global _SCORER
    if _SCORER is None:  # building the scorer loads the stemmer once
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    return _SCORER


def rouge_f1(prediction, reference):
    """``(rouge1, rouge2, rougeL)`` F1 in [0, 1] of one prediction against one reference.

    Example:
    >>> rouge_f1("The parser is slow.", "The parser is slow.")
    (1.0, 1.0, 1.0)
    """
    scores = _scorer().score(reference, prediction)
    return tuple(scores[name].fmeasure for name in ROUGE_TYPES)


def rouge_scores(predictions, references):
    """``{"rouge1", "rouge2", "rougeL"}``: mean F1 in [0, 1] over the pairs (one reference each).

    Example:
    >>> rouge_scores(["The parser is slow.", "zzz"], ["The parser is slow.", "Fast."])
    {'rouge1': 0.5, 'rouge2': 0.5, 'rougeL': 0.5}
    """
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references) or not references:
        raise ValueError(f"need as many predictions as references (and some): {len(predictions)} "
                         f"predictions, {len(references)} references")
    totals = [0.0] * len(ROUGE_TYPES)
    for prediction, reference in zip(predictions, references):
        totals = [t + s for t, s in zip(totals, rouge_f1(prediction, reference))]
    return {name: total / len(references) for name, total in zip(ROUGE_TYPES, totals)}
