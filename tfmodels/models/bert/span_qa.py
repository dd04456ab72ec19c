"""BertSpanQA: extractive question answering (SQuAD): start/end logits over the context tokens."""

import keras
import numpy as np

from tfmodels.layers.span_head import SpanHead
from tfmodels.models.bert.encoder import bert_inputs
from tfmodels.models.bert.task import BertTask


@keras.saving.register_keras_serializable(package="tfmodels")
class BertSpanQA(BertTask):
    """Predicts the answer span in a ``[CLS] question [SEP] context [SEP]`` input.

    Args:
        encoder: a ``BertEncoder``.

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

    def __init__(self, encoder, **kwargs):
        inputs = bert_inputs(encoder.sequence_length)
        sequence = encoder(inputs)["sequence_output"]
        initializer = keras.initializers.TruncatedNormal(stddev=encoder.config.initializer_range)
        start, end = SpanHead(kernel_initializer=initializer, dtype="float32", name="span_head")(
            sequence, inputs["padding_mask"]
        )
        outputs = {"start_logits": start, "end_logits": end}
        self._init_task(encoder, inputs, outputs, **kwargs)

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
