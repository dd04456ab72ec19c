"""Span QA from raw strings in core TensorFlow ops: BERT ``run_squad``-style windows and decoding.

One implementation serves training features, :meth:`BertSpanQA.answer` and the exported SavedModel
(``tfmodels.export.export_span_qa``), so Python and serving cannot disagree.

- :class:`SpanQAPreprocessor` tokenizes question and context, truncates the question to
  ``max_query_length`` tokens and splits a context that does not fit into windows of
  ``[CLS] question [SEP] context-slice [SEP]`` that start every ``doc_stride`` context tokens
  (``run_squad.py``'s doc stride). Each context token is marked as having its *max context* in the
  one window where ``min(left, right) + 0.01 * window_length`` is highest (first such window on a tie),
  as ``run_squad``'s ``_check_is_max_context``.
- :func:`decode_answers` picks, per question, the best ``start + end`` logit span over all windows:
  the start must be a max-context token, both ends context tokens, ``end - start < max_answer_length``,
  the start among the window's ``n_best`` highest start logits and the end among the ``n_best`` highest
  end logits (``run_squad``'s n-best search); when no such pair exists in any of the question's windows,
  the best span among all valid ones (``run_squad`` always answers SQuAD v1.1 with a span). The span is mapped back to the context's characters
  (the tokenizer's offsets are UTF-8 bytes; they are converted to Unicode code points, Python ``str``
  indices), so ``context[start:end] == answer_text`` also for accents, CJK and emoji.

Only an empty context (or one the tokenizer reduces to nothing) has no candidate span: its answer is
``""`` with start/end ``-1`` and score ``0``. An empty question is allowed (the window just holds no
question tokens).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfmodels.models.bert.encoder import INPUT_NAMES
from tfmodels.text.preprocessing import TokenizingLayer
from tfmodels.text.windows import after_checks, check_text_chars, check_windows, run_in_chunks
from tfmodels.text.wordpiece import BertTokenizer  # noqa: F401 (registered before deserializing)

EMPTY_ANSWER = ("", -1, -1, 0.0)


def _strings(values, name):
    """A 1-D string tensor, or a clear error naming ``name``."""
    if isinstance(values, (tf.Tensor, tf.RaggedTensor)):
        if values.dtype != tf.string:
            raise TypeError(f"{name} must be strings, got a {values.dtype.name} tensor")
        tensor = values
    else:
        if isinstance(values, (str, bytes)):
            values = [values]
        values = list(np.asarray(values, dtype=object).reshape(-1)) if not isinstance(values, list) else values
        bad = [v for v in values if not isinstance(v, (str, bytes))]
        if bad:
            raise TypeError(f"{name} must be strings, got {type(bad[0]).__name__} {bad[0]!r}")
        tensor = tf.constant(values, tf.string, shape=[len(values)])
    if tensor.shape.rank == 0:
        tensor = tensor[tf.newaxis]
    if tensor.shape.rank != 1:
        raise ValueError(f"{name} must be a 1-D batch of strings, got shape {tensor.shape}")
    return tensor


@keras.saving.register_keras_serializable(package="tfmodels")
class SpanQAPreprocessor(TokenizingLayer):
    """Question + context strings -> overlapping BERT windows (``run_squad``'s doc stride).

    Args:
      tokenizer: a :class:`~tfmodels.text.BertTokenizer`.
      sequence_length: window length, special tokens included (``run_squad``: 384).
      doc_stride: context tokens between the starts of consecutive windows (128).
      max_query_length: longer questions are truncated to their first ``max_query_length`` tokens (64).

    Call args:
      inputs: ``(questions, contexts)``, two 1-D string tensors of the same length.

    Returns:
      dict: the encoder inputs ``token_ids``, ``segment_ids``, ``padding_mask`` (int32
      ``[windows, sequence_length]``) and, to map windows back: ``example`` (int32 ``[windows]``, the
      question each window belongs to), ``window_start`` (first context token of the window),
      ``context_offset`` (position of that token in the window), ``window_length`` (context tokens in it),
      ``context_token`` (int32 ``[windows, sequence_length]``: index of the context token at each
      position, -1 elsewhere), ``max_context`` (bool, the token's max-context window is this one),
      ``byte_start``/``byte_end`` (int32 ``[windows, sequence_length]``, the token's UTF-8 byte span in
      its context, -1 elsewhere).

    Example:
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "a", "b", "c", "d"]
    >>> pre = SpanQAPreprocessor(BertTokenizer(vocab), sequence_length=8, doc_stride=2,
    ...                          max_query_length=2)
    >>> w = pre((tf.constant(["who"]), tf.constant(["a b c d"])))
    >>> w["token_ids"].numpy().tolist()
    [[2, 5, 3, 6, 7, 8, 9, 3]]
    >>> w = pre((tf.constant(["who who"]), tf.constant(["a b c d"])))
    >>> w["token_ids"].numpy().tolist()
    [[2, 5, 5, 3, 6, 7, 8, 3], [2, 5, 5, 3, 8, 9, 3, 0]]
    >>> w["max_context"].numpy().astype(int).tolist()
    [[0, 0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1, 0, 0]]
    """

    def __init__(self, tokenizer, sequence_length=384, doc_stride=128, max_query_length=64, **kwargs):
        super().__init__(tokenizer, sequence_length, **kwargs)
        self.doc_stride = int(doc_stride)
        self.max_query_length = int(max_query_length)
        room = self.sequence_length - 3 - self.max_query_length
        if room < 1:
            raise ValueError(
                f"sequence_length {sequence_length} leaves no room for context after a "
                f"{max_query_length}-token question and 3 special tokens")
        if not 1 <= self.doc_stride <= room:
            # A stride longer than the smallest window would skip context tokens.
            raise ValueError(f"doc_stride must be in [1, {room}] (sequence_length - 3 - max_query_length), "
                             f"got {doc_stride}")

    def call(self, inputs):
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError("SpanQAPreprocessor takes (questions, contexts)")
        questions = _strings(inputs[0], "questions")
        contexts = _strings(inputs[1], "contexts")
        tf.debugging.assert_equal(tf.shape(questions), tf.shape(contexts),
                                  message="questions and contexts must have the same length")
        question_ids = self.tokenizer.tokenize(questions)[:, : self.max_query_length]
        context_ids, byte_starts, byte_ends = self.tokenizer.tokenize_with_offsets(contexts)
        return self._windows(question_ids, context_ids, byte_starts, byte_ends)

    def _windows(self, question, context, byte_starts, byte_ends):
        seq = self.sequence_length
        q_len = tf.cast(question.row_lengths(), tf.int32)
        doc_len = tf.cast(context.row_lengths(), tf.int32)
        room = seq - 3 - q_len
        # run_squad: windows start at 0, stride, 2*stride, ... until one reaches the end of the context.
        num_windows = 1 + (tf.maximum(doc_len - room, 0) + self.doc_stride - 1) // self.doc_stride
        example = tf.repeat(tf.range(tf.size(q_len)), num_windows)
        window_start = tf.ragged.range(num_windows).flat_values * self.doc_stride
        q_w = tf.gather(q_len, example)
        length = tf.minimum(tf.gather(doc_len, example) - window_start, tf.gather(room, example))
        offset = q_w + 2

        pos = tf.range(seq)[tf.newaxis]
        is_question = (pos >= 1) & (pos <= q_w[:, None])
        is_context = (pos >= offset[:, None]) & (pos < (offset + length)[:, None])
        left = pos - offset[:, None]  # context tokens of the window before this one
        q_index = tf.cast(tf.gather(question.row_splits, example), tf.int32)[:, None] + pos - 1
        c_index = tf.cast(tf.gather(context.row_splits, example), tf.int32)[:, None] + window_start[:, None] + left
        pad = self.tokenizer.pad_token_id

        def take(values, index, where, fill):
            # One extra element so that gathers stay in range for rows with nothing to take.
            values = tf.concat([tf.cast(values, tf.int32), [fill]], 0)
            return tf.gather(values, tf.where(where, index, tf.size(values) - 1))

        token_ids = tf.where(is_question, take(question.flat_values, q_index, is_question, pad),
                             take(context.flat_values, c_index, is_context, pad))
        token_ids = tf.where(pos == 0, self.tokenizer.cls_token_id, token_ids)
        is_sep = (pos == (q_w + 1)[:, None]) | (pos == (offset + length)[:, None])
        token_ids = tf.where(is_sep, self.tokenizer.sep_token_id, token_ids)
        end = (offset + length)[:, None]
        segment_ids = tf.cast((pos >= offset[:, None]) & (pos <= end), tf.int32)
        padding_mask = tf.cast(pos <= end, tf.int32)

        # Max context: min(left, right) + 0.01 * length, the best window per context token (first on a tie).
        num_tokens = tf.size(context.flat_values)
        segment = tf.where(is_context, c_index, num_tokens)
        score = tf.cast(tf.minimum(left, length[:, None] - 1 - left), tf.float32) + 0.01 * tf.cast(
            length[:, None], tf.float32)
        score = tf.where(is_context, score, -1.0)
        best = tf.math.unsorted_segment_max(score, segment, num_tokens + 1)
        candidate = is_context & (score >= tf.gather(best, segment))
        row = tf.broadcast_to(tf.range(tf.size(example))[:, None], tf.shape(score))
        first = tf.math.unsorted_segment_min(tf.where(candidate, row, tf.int32.max), segment, num_tokens + 1)
        max_context = candidate & tf.equal(row, tf.gather(first, segment))

        return {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": padding_mask,
            "example": example,
            "window_start": window_start,
            "context_offset": offset,
            "window_length": length,
            "context_token": tf.where(is_context, window_start[:, None] + left, -1),
            "max_context": max_context,
            "byte_start": take(byte_starts.flat_values, c_index, is_context, -1),
            "byte_end": take(byte_ends.flat_values, c_index, is_context, -1),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            doc_stride=self.doc_stride,
            max_query_length=self.max_query_length,
        )
        return config


def decode_answers(windows, start_logits, end_logits, contexts, max_answer_length=30, n_best=20, window_chunk=None):
    """Best span per question over all its windows, mapped back to context characters.

    Args:
      windows: the dict :class:`SpanQAPreprocessor` returns.
      start_logits, end_logits: float ``[windows, sequence_length]``.
      contexts: the 1-D string tensor the windows were built from.
      max_answer_length: most tokens in an answer (``run_squad``: 30).
      n_best: starts/ends searched per window: the ``n_best`` highest logits (``run_squad``: 20).
      window_chunk: when given, the spans of that many windows are formed at a time (bounded memory).

    Returns:
      dict: ``answer_text`` (string ``[batch]``), ``answer_start``/``answer_end`` (int64 Unicode
      character offsets, ``context[start:end] == text``), ``score`` (float32: the span's softmax
      probability among all candidate spans of the question's windows). No candidate (empty context):
      ``""``, -1, -1, 0.
    """
    start_logits = tf.cast(start_logits, tf.float32)
    end_logits = tf.cast(end_logits, tf.float32)
    seq = tf.shape(start_logits)[1]
    k = tf.minimum(n_best, seq)
    neg = tf.constant(-np.inf, tf.float32)
    can_start = windows["max_context"]
    can_end = windows["context_token"] >= 0
    in_start_n_best = start_logits >= tf.math.top_k(start_logits, k).values[:, -1:]
    in_end_n_best = end_logits >= tf.math.top_k(end_logits, k).values[:, -1:]

    def window_spans(starts, ends):
        """Per window: best span score, its flat index start * seq + end, and the log-sum-exp of all spans.
        Only ends within max_answer_length of each start are formed ([windows, seq, max_answer_length], not
        [windows, seq, seq])."""
        band = tf.signal.frame(tf.concat([ends, tf.fill([tf.shape(ends)[0], max_answer_length], neg)], 1),
                               max_answer_length, 1, axis=1)[:, :seq]  # band[w, s, d] = ends[w, s + d]
        pairs = tf.reshape(starts[:, :, None] + band, [tf.shape(band)[0], -1])
        arg = tf.argmax(pairs, axis=1, output_type=tf.int32)  # first maximum: smallest start, then end
        start = arg // max_answer_length
        return tf.reduce_max(pairs, axis=1), start * seq + start + arg % max_answer_length, tf.reduce_logsumexp(
            pairs, axis=1)

    def both_tiers(rows):
        starts, ends, can_start, can_end, start_n_best, end_n_best = rows
        # run_squad (SQuAD v1.1) answers with its best valid span even when no start and end among the n-best
        # logits form one: then every valid span of the question's windows is searched.
        return (window_spans(tf.where(can_start & start_n_best, starts, neg), tf.where(can_end & end_n_best, ends, neg))
                + window_spans(tf.where(can_start, starts, neg), tf.where(can_end, ends, neg)))

    rows = (start_logits, end_logits, can_start, can_end, in_start_n_best, in_end_n_best)
    spans = run_in_chunks(both_tiers, rows, window_chunk) if window_chunk else both_tiers(rows)
    n_best_spans, any_spans = spans[:3], spans[3:]
    example = windows["example"]
    batch = tf.size(contexts)
    has_n_best = tf.math.unsorted_segment_max(
        tf.cast(tf.math.is_finite(n_best_spans[0]), tf.int32), example, batch) > 0
    use_n_best = tf.gather(has_n_best, example)
    window_best, window_arg, window_lse = (tf.where(use_n_best, n, a) for n, a in zip(n_best_spans, any_spans))

    # (A segment of only -inf windows reduces to float32's lowest, not -inf: test finiteness per window.)
    found = tf.math.unsorted_segment_max(tf.cast(tf.math.is_finite(window_best), tf.int32), example, batch) > 0
    best = tf.where(found, tf.math.unsorted_segment_max(window_best, example, batch), neg)
    # Softmax over every candidate of every window: log-sum-exp of the windows' log-sum-exps.
    peak = tf.math.unsorted_segment_max(window_lse, example, batch)
    safe_peak = tf.where(found, peak, 0.0)
    total = safe_peak + tf.math.log(tf.math.unsorted_segment_sum(
        tf.exp(window_lse - tf.gather(safe_peak, example)), example, batch))
    score = tf.where(found, tf.exp(best - tf.where(found, total, 0.0)), 0.0)

    rows = tf.range(tf.size(example))
    is_best = tf.math.is_finite(window_best) & (window_best >= tf.gather(best, example))
    window = tf.math.unsorted_segment_min(tf.where(is_best, rows, tf.int32.max), example, batch)
    window = tf.where(found, window, 0)
    arg = tf.gather(window_arg, window)
    start_pos, end_pos = arg // seq, arg % seq
    byte_start = tf.gather_nd(windows["byte_start"], tf.stack([window, start_pos], 1))
    byte_end = tf.gather_nd(windows["byte_end"], tf.stack([window, end_pos], 1))
    byte_start = tf.where(found, byte_start, 0)
    byte_end = tf.where(found, byte_end, 0)
    text = tf.strings.substr(contexts, byte_start, byte_end - byte_start, unit="BYTE")

    def chars_before(byte):
        prefix = tf.strings.substr(contexts, tf.zeros_like(byte), byte, unit="BYTE")
        return tf.cast(tf.strings.length(prefix, unit="UTF8_CHAR"), tf.int64)

    return {
        "answer_text": text,
        "answer_start": tf.where(found, chars_before(byte_start), -1),
        "answer_end": tf.where(found, chars_before(byte_end), -1),
        "score": score,
    }


def answer_batch(model, preprocessor, questions, contexts, max_answer_length=30, n_best=20, max_text_chars=None,
                 max_windows=None, window_chunk=None):
    """Windows, model, decoding for one batch of strings (graph-friendly; the SavedModel's body).

    ``max_text_chars`` / ``max_windows`` (None: no limit) fail a longer question or context, or a batch making
    more windows, with INVALID_ARGUMENT before the work; ``window_chunk`` runs the model that many windows at
    a time (memory of one chunk's activations however long the contexts).
    """
    checks = (check_text_chars(questions, max_text_chars, "question")
              + check_text_chars(contexts, max_text_chars, "context"))
    questions, contexts = after_checks((questions, contexts), checks)
    windows = preprocessor((questions, contexts))
    inputs = after_checks({name: windows[name] for name in INPUT_NAMES},
                          check_windows(tf.size(windows["example"]), max_windows))
    if window_chunk:
        logits = run_in_chunks(lambda rows: model(rows, training=False), inputs, window_chunk)
    else:
        logits = model(inputs, training=False)
    return decode_answers(windows, logits["start_logits"], logits["end_logits"], contexts,
                          max_answer_length=max_answer_length, n_best=n_best, window_chunk=window_chunk)


def window_features(preprocessor, questions, contexts, answers=None):
    """Windows of raw questions/contexts as numpy training inputs, with ``run_squad``'s targets.

    Args:
      preprocessor: a :class:`SpanQAPreprocessor`.
      questions, contexts: equally long sequences of strings.
      answers: optional, per question its answer ``{"text": ..., "answer_start": character offset}``
        (SQuAD's form; a list of them uses the first).

    Returns:
      ``(x, y, example)``: encoder inputs (int32 ``[windows, sequence_length]``), targets
      ``{"start_logits", "end_logits"}`` (``None`` without ``answers``) and each window's question index.
    """
    questions, contexts = _strings(questions, "questions"), _strings(contexts, "contexts")
    if answers is None:
        windows = {k: v.numpy() for k, v in preprocessor((questions, contexts)).items()}
        return {k: windows[k] for k in INPUT_NAMES}, None, windows["example"]
    answers = [a[0] if isinstance(a, (list, tuple)) else a for a in answers]
    if len(answers) != int(questions.shape[0]):
        raise ValueError(f"got {len(answers)} answers for {int(questions.shape[0])} questions")
    for i, (context, answer) in enumerate(zip(contexts.numpy(), answers)):
        start, text = int(answer["answer_start"]), answer["text"]
        if context.decode("utf-8")[start : start + len(text)] != text:
            raise ValueError(f"answer {i} {text!r} is not at character {start} of its context")
    windows = windows_with_targets(preprocessor, questions, contexts,
                                   tf.constant([a["text"] for a in answers], tf.string),
                                   tf.constant([int(a["answer_start"]) for a in answers], tf.int32))
    windows = {k: v.numpy() for k, v in windows.items()}
    x = {k: windows[k] for k in INPUT_NAMES}
    return x, {"start_logits": windows["start_position"], "end_logits": windows["end_position"]}, windows["example"]


def windows_with_targets(preprocessor, questions, contexts, answer_texts, answer_starts):
    """:class:`SpanQAPreprocessor` windows plus ``run_squad``'s training targets, in graph ops.

    Args:
      preprocessor: a :class:`SpanQAPreprocessor`.
      questions, contexts, answer_texts: 1-D string tensors of the same length.
      answer_starts: int ``[batch]``, each answer's first character (Unicode code points, SQuAD's
        ``answer_start``) in its context.

    Returns:
      the preprocessor's dict plus ``start_position`` / ``end_position`` (int32 ``[windows]``: the positions
      of the answer's first and last token, or 0, ``[CLS]``, in a window that does not hold the whole answer)
      and ``holds_answer`` (bool ``[windows]``).
    """
    question_ids = preprocessor.tokenizer.tokenize(questions)[:, : preprocessor.max_query_length]
    context_ids, token_starts, token_ends = preprocessor.tokenizer.tokenize_with_offsets(contexts)
    windows = preprocessor._windows(question_ids, context_ids, token_starts, token_ends)
    token_starts, token_ends = tf.cast(token_starts, tf.int32), tf.cast(token_ends, tf.int32)
    # SQuAD's answer_start counts characters; the tokenizer's offsets count UTF-8 bytes.
    byte_start = tf.strings.length(tf.strings.substr(
        contexts, tf.zeros_like(answer_starts, tf.int32), tf.cast(answer_starts, tf.int32), unit="UTF8_CHAR"))
    byte_end = byte_start + tf.strings.length(answer_texts)
    # The answer's first token ends after its first byte; its last token starts before its end. Counted per
    # context over the flat offsets: a ragged-to-dense comparison (`token_ends <= byte_start[:, None]`) builds a
    # broadcast of some 450 graph ops, a third of this function's graph, traced again by every Transform.
    def tokens_before(offsets, limits, inclusive):
        rows = offsets.value_rowids()
        limit = tf.gather(limits, rows)
        before = offsets.flat_values <= limit if inclusive else offsets.flat_values < limit
        return tf.math.unsorted_segment_sum(tf.cast(before, tf.int32), rows, tf.size(limits, out_type=rows.dtype))

    first = tokens_before(token_ends, byte_start, inclusive=True)
    last = tokens_before(token_starts, byte_end, inclusive=False) - 1
    first, last = tf.gather(first, windows["example"]), tf.gather(last, windows["example"])
    begin = windows["window_start"]
    holds = (first <= last) & (first >= begin) & (last < begin + windows["window_length"])
    offset = windows["context_offset"] - begin
    windows["start_position"] = tf.where(holds, first + offset, 0)
    windows["end_position"] = tf.where(holds, last + offset, 0)
    windows["holds_answer"] = holds
    return windows
