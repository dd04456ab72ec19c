"""BertClassifier: sequence classification (or regression) on the pooled output."""

import keras

from tfmodels.models.bert.encoder import bert_inputs
from tfmodels.models.bert.task import BertTask, logits_head


@keras.saving.register_keras_serializable(package="tfmodels")
class BertClassifier(BertTask):
    """Classifies whole sequences (or sequence pairs): dropout and a dense layer on the pooled output.

    Args:
        encoder: a ``BertEncoder``.
        num_classes: number of classes; 1 for regression.
        dropout: dropout rate before the output layer.
        preprocessor: optional; lets ``fit`` / ``evaluate`` / ``predict`` take raw inputs and is
            saved with the model (see ``BertTask``).

    Inputs: the encoder's dict (``token_ids``, ``segment_ids``, ``padding_mask``).
    Outputs: float32 logits ``[batch, num_classes]`` (raw scores for regression).

    Example:
    >>> import numpy as np
    >>> from tfmodels import BertConfig, BertEncoder
    >>> encoder = BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                                  num_attention_heads=2, intermediate_size=64))
    >>> model = BertClassifier(encoder, num_classes=3)
    >>> x = {"token_ids": np.ones((2, 8), "int32"), "segment_ids": np.zeros((2, 8), "int32"),
    ...      "padding_mask": np.ones((2, 8), "int32")}
    >>> model.predict(x, verbose=0).shape
    (2, 3)
    """

    def __init__(self, encoder, num_classes, dropout=0.1, **kwargs):
        inputs = bert_inputs(encoder.sequence_length)
        # The pooled output alone: the last block skips the positions the head never reads.
        pooled = encoder(inputs, pooled_only=True)["pooled_output"]
        logits = logits_head(
            pooled, num_classes, dropout, encoder.config.initializer_range, "classifier"
        )
        self._init_task(encoder, inputs, logits, **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout

    @classmethod
    def _from_preset_parts(cls, encoder, tokenizer, sequence_length=128, truncate="round_robin",
                           **kwargs):
        from tfmodels.text.preprocessing import BertPreprocessor

        preprocessor = BertPreprocessor(tokenizer, sequence_length, truncate=truncate)
        return cls(encoder, preprocessor=preprocessor, **kwargs)

    def default_loss(self):
        if self.num_classes == 1:
            return keras.losses.MeanSquaredError()
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_metrics(self):
        if self.num_classes == 1:
            return [keras.metrics.MeanAbsoluteError(name="mae")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def _task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout}
