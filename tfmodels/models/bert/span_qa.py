"""BertSpanQA: extractive question answering (SQuAD): start/end logits over the context tokens."""

import keras
import numpy as np
import tensorflow as tf

from tfmodels.layers.span_head import SpanHead
from tfmodels.models.bert.encoder import bert_inputs
from tfmodels.models.bert.span_qa_reader import (
    SpanQAPreprocessor,
    _strings,
    answer_batch,
    window_features,
)
from tfmodels.models.bert.task import BertTask


@keras.saving.register_keras_serializable(package="tfmodels")
class BertSpanQA(BertTask):
    """Predicts the answer span in a ``[CLS] question [SEP] context [SEP]`` input.

    Args:
        encoder: a ``BertEncoder``.
        preprocessor: optional ``SpanQAPreprocessor`` (tokenizer, window length, doc stride, question
            limit); needed by :meth:`answer`, saved with the model (vocabulary included).

    Inputs: the encoder's dict.
    Outputs: dict of float32 ``[batch, length]``: ``start_logits`` and ``end_logits``; padded
    positions are pushed to -1e4. Targets are the start and end token indices ``[batch]``.

    Example:
    >>> import numpy as np
    >>> from tfmodels import BertConfig, BertEncoder
    >>> encoder = BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                                  num_attention_heads=2, intermediate_size=64))
    >>> model = BertSpanQA(encoder)
    >>> x = {"token_ids": np.ones((2, 8), "int32"), "segment_ids": np.zeros((2, 8), "int32"),
    ...      "padding_mask": np.ones((2, 8), "int32")}
    >>> model.predict(x, verbose=0)["start_logits"].shape
    (2, 8)
    """

    def __init__(self, encoder, preprocessor=None, **kwargs):
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        if preprocessor is not None and not isinstance(preprocessor, SpanQAPreprocessor):
            raise TypeError(f"preprocessor must be a SpanQAPreprocessor, got {type(preprocessor).__name__}")
        inputs = bert_inputs(encoder.sequence_length)
        sequence = encoder(inputs)["sequence_output"]
        initializer = keras.initializers.TruncatedNormal(stddev=encoder.config.initializer_range)
        start, end = SpanHead(kernel_initializer=initializer, dtype="float32", name="span_head")(
            sequence, inputs["padding_mask"]
        )
        outputs = {"start_logits": start, "end_logits": end}
        self._init_task(encoder, inputs, outputs, preprocessor=preprocessor, **kwargs)

    @classmethod
    def _from_preset_parts(cls, encoder, tokenizer, sequence_length=384, doc_stride=128,
                           max_query_length=64, **kwargs):
        preprocessor = SpanQAPreprocessor(tokenizer, sequence_length, doc_stride, max_query_length)
        return cls(encoder, preprocessor=preprocessor, **kwargs)

    def preprocess_arrays(self, x, y=None, sample_weight=None):
        """Raw ``x = (questions, contexts)`` -> windows; ``y`` (optional), per question its answer
        ``{"text", "answer_start"}`` (SQuAD's form), -> per-window start/end targets ([CLS] where the
        window lacks the answer). Rows are windows, so ``sample_weight`` is not supported here."""
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise ValueError("BertSpanQA's raw input is a (questions, contexts) pair")
        if sample_weight is not None:
            raise ValueError("sample_weight cannot follow raw questions: rows become windows")
        x, y, _ = window_features(self.preprocessor, x[0], x[1], y)
        return x, y, None

    def preprocess_dataset(self, dataset):
        raise NotImplementedError(
            "BertSpanQA takes raw (questions, contexts) as in-memory arrays, whose answers become "
            "per-window targets; for tf.data, map SpanQAPreprocessor and window targets yourself")

    def answer(self, questions, contexts, max_answer_length=30, n_best=20, batch_size=32):
        """Answers each question from its context: ``run_squad`` windows, best span, context characters.

        Args:
            questions, contexts: equally long lists (or 1-D arrays/tensors) of strings; a single pair of
                strings is accepted too. A question longer than the preprocessor's ``max_query_length``
                tokens is truncated to its first tokens.
            max_answer_length: most tokens in an answer.
            n_best: highest start and end logits searched per window.
            batch_size: questions run through the model at a time.

        Returns:
            list of dicts ``{"text", "start", "end", "score"}``, one per question, with
            ``contexts[i][start:end] == text`` (Python ``str`` indices) and ``score`` the span's
            probability among the candidate spans; an empty context gives ``("", -1, -1, 0.0)``.

        Raises:
            ValueError: no preprocessor, or questions and contexts differ in number.
            TypeError: a question or context is not a string.
        """
        if self.preprocessor is None:
            raise ValueError("answer() needs a model built with preprocessor=SpanQAPreprocessor(...)")
        questions = _strings(questions, "questions")
        contexts = _strings(contexts, "contexts")
        if questions.shape[0] != contexts.shape[0]:
            raise ValueError(f"got {questions.shape[0]} questions but {contexts.shape[0]} contexts")
        if not hasattr(self, "_answer_fn"):
            self._answer_fn = tf.function(
                lambda q, c, m, n: answer_batch(self, self.preprocessor, q, c, m, n), reduce_retracing=True)
        answers = []
        for begin in range(0, int(questions.shape[0]), batch_size):
            out = self._answer_fn(questions[begin : begin + batch_size], contexts[begin : begin + batch_size],
                                  tf.constant(max_answer_length), tf.constant(n_best))
            for text, start, end, score in zip(*(out[k].numpy() for k in (
                    "answer_text", "answer_start", "answer_end", "score"))):
                answers.append({"text": text.decode("utf-8"), "start": int(start), "end": int(end),
                                "score": float(score)})
        return answers

    def default_loss(self):
        return {
            "start_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "end_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        }

    def default_metrics(self):
        return {
            "start_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            "end_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    @staticmethod
    def best_spans(start_logits, end_logits, max_answer_length=30, allowed_mask=None):
        """Returns ``[batch, 2]`` (start, end) maximising ``start + end`` logits with
        ``start <= end < start + max_answer_length``; ``allowed_mask`` (e.g. context tokens) limits
        where a span may lie."""
        start_logits = np.asarray(start_logits, dtype=np.float64)
        end_logits = np.asarray(end_logits, dtype=np.float64)
        if allowed_mask is not None:
            allowed = np.asarray(allowed_mask).astype(bool)
            start_logits = np.where(allowed, start_logits, -np.inf)
            end_logits = np.where(allowed, end_logits, -np.inf)
        length = start_logits.shape[1]
        offsets = np.arange(length)[None, :] - np.arange(length)[:, None]  # end - start
        valid = (offsets >= 0) & (offsets < max_answer_length)
        scores = start_logits[:, :, None] + end_logits[:, None, :]
        scores = np.where(valid[None], scores, -np.inf)
        flat = scores.reshape(scores.shape[0], -1).argmax(axis=1)
        return np.stack([flat // length, flat % length], axis=1)
