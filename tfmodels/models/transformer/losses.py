"""Label-smoothed cross-entropy over padded target sequences."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class LabelSmoothedCrossEntropy(keras.losses.Loss):
    """Token-level cross-entropy against ``(1 - eps) * one_hot + eps / vocab``, averaged over
    the non-padding tokens of the batch (Szegedy et al., 2016; ``eps = 0.1`` in the Transformer).

    The smoothed target is never materialized: ``-sum(q * log p) = -(1 - eps) * log p[y] -
    eps * mean(log p)``, so memory stays ``[batch, length]`` on top of the logits.

    Args:
        label_smoothing: ``eps`` in [0, 1).
        pad_id: target id that contributes no loss.

    Call args:
        y_true: int ``[batch, length]`` next tokens.
        y_pred: ``[batch, length, vocab]`` logits.

    Example:
    >>> loss = LabelSmoothedCrossEntropy(label_smoothing=0.1)
    >>> float(loss(keras.ops.convert_to_tensor([[3, 0]]), keras.ops.zeros((1, 2, 5)))) > 0
    True
    """

    def __init__(
        self, label_smoothing=0.1, pad_id=0, name="label_smoothed_cross_entropy", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.pad_id = pad_id

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        true_log_probs = ops.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]
        per_token = -(1.0 - self.label_smoothing) * true_log_probs
        per_token -= self.label_smoothing * ops.mean(log_probs, axis=-1)
        weights = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        # One scalar per batch: a mean over real tokens, not over padded positions or sequences.
        return ops.sum(per_token * weights) / ops.maximum(ops.sum(weights), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"label_smoothing": self.label_smoothing, "pad_id": self.pad_id})
        return config


@keras.saving.register_keras_serializable(package="tfmodels")
def masked_accuracy(y_true, y_pred, pad_id=0):
    """Next-token accuracy over the non-padding targets (a metric for ``compile``)."""
    y_true = ops.cast(y_true, "int32")
    correct = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), y_true), "float32")
    weights = ops.cast(ops.not_equal(y_true, pad_id), "float32")
    return ops.sum(correct * weights) / ops.maximum(ops.sum(weights), 1.0)
