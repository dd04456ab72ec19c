"""Entity-level precision, recall and F1 with the semantics of conlleval / ``seqeval`` (default mode).

Tags are ``B-X`` / ``I-X`` / ``E-X`` / ``S-X`` / ``O`` (BIO, IOB2, IOB1, BIOES all parse). Chunks follow
conlleval's rules: a chunk ends before a ``B``/``S``/``O``, after an ``E``/``S``, or where the type
changes; a chunk starts at ``B``/``S``, at an ``I``/``E`` that follows ``O``/``E``/``S``, or where the
type changes -- so an ``I-X`` after ``O`` or after another type *starts* an entity (the one repair rule
``predict_entities`` also uses). Scores are micro averages over exact (sentence, type, start, end) matches.
"""

import collections


def _split(tag):
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "_")`` (seqeval's parse of a tag)."""
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _ends(prev_tag, tag, prev_type, type_):
    return (
        prev_tag in ("E", "S")
        or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
        or (prev_tag not in ("O", ".") and prev_type != type_)
    )


def _starts(prev_tag, tag, prev_type, type_):
    return (
        tag in ("B", "S")
        or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
        or (tag not in ("O", ".") and prev_type != type_)
    )


def tag_chunks(tags):
    """Entities of one tag sequence: ``[(type, first, last)]`` word indices, ``last`` inclusive.

    >>> tag_chunks(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "E-LOC"])
    [('PER', 0, 1), ('LOC', 3, 3), ('LOC', 4, 5)]
    """
    chunks, prev_tag, prev_type, begin = [], "O", "", 0
    for i, tag in enumerate(list(tags) + ["O"]):
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"tag {i} is {tag!r}; tags are strings such as 'B-PER', 'I-PER', 'O'")
        tag, type_ = _split(tag)
        if _ends(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def _prf(correct, predicted, true):
    precision = correct / predicted if predicted else 0.0
    recall = correct / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": true}


def entity_scores(true_tag_sequences, pred_tag_sequences):
    """Entity precision / recall / F1 over sentences, as ``seqeval.metrics`` (default mode) computes them.

    Args:
        true_tag_sequences: list of gold tag lists, one per sentence.
        pred_tag_sequences: list of predicted tag lists, same lengths.

    Returns:
        dict: ``precision``, ``recall``, ``f1`` (micro, in [0, 1]; 0 where undefined), ``support``
        (gold entities) and ``per_type`` = ``{type: {precision, recall, f1, support}}``.

    >>> scores = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])
    >>> scores["precision"], scores["recall"], round(scores["f1"], 3)
    (1.0, 0.5, 0.667)
    """
    if len(true_tag_sequences) != len(pred_tag_sequences):
        raise ValueError(
            f"{len(true_tag_sequences)} gold sentences but {len(pred_tag_sequences)} predicted"
        )
    true_set, pred_set = set(), set()
    for i, (gold, pred) in enumerate(zip(true_tag_sequences, pred_tag_sequences)):
        if len(gold) != len(pred):
            raise ValueError(f"sentence {i}: {len(gold)} gold tags but {len(pred)} predicted")
        true_set.update((i, *chunk) for chunk in tag_chunks(gold))
        pred_set.update((i, *chunk) for chunk in tag_chunks(pred))
    correct = true_set & pred_set
    scores = _prf(len(correct), len(pred_set), len(true_set))
    count = collections.Counter
    by_type = [count(c[1] for c in s) for s in (correct, pred_set, true_set)]
    scores["per_type"] = {
        type_: _prf(by_type[0][type_], by_type[1][type_], by_type[2][type_])
        for type_ in sorted(set(by_type[1]) | set(by_type[2]))
    }
    return scores
