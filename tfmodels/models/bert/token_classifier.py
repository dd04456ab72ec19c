"""BertTokenClassifier: a label per token (NER, POS tagging)."""

import keras

from tfmodels.models.bert.encoder import bert_inputs
from tfmodels.models.bert.task import BertTask, logits_head


@keras.saving.register_keras_serializable(package="tfmodels")
class BertTokenClassifier(BertTask):
    """Classifies every token: dropout and a dense layer on the sequence output.

    Train with ``sample_weight = padding_mask`` (or 0 on sub-word continuations) so padded
    positions do not count in the loss and metrics.

    Args:
        encoder: a ``BertEncoder``.
        num_classes: number of token labels.
        dropout: dropout rate before the output layer.
        preprocessor: optional; lets ``fit`` / ``evaluate`` / ``predict`` take raw inputs and is
            saved with the model (see ``BertTask``).

    Inputs: the encoder's dict. Outputs: float32 logits ``[batch, length, num_classes]``.

    Example:
    >>> import numpy as np
    >>> from tfmodels import BertConfig, BertEncoder
    >>> encoder = BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                                  num_attention_heads=2, intermediate_size=64))
    >>> model = BertTokenClassifier(encoder, num_classes=5)
    >>> x = {"token_ids": np.ones((2, 8), "int32"), "segment_ids": np.zeros((2, 8), "int32"),
    ...      "padding_mask": np.ones((2, 8), "int32")}
    >>> model.predict(x, verbose=0).shape
    (2, 8, 5)
    """

    def __init__(self, encoder, num_classes, dropout=0.1, **kwargs):
        inputs = bert_inputs(encoder.sequence_length)
        sequence = encoder(inputs)["sequence_output"]
        logits = logits_head(
            sequence, num_classes, dropout, encoder.config.initializer_range, "token"
        )
        self._init_task(encoder, inputs, logits, **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout

    def default_loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_weighted_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def _task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout}
