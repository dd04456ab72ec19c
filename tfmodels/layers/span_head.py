"""Start/end logits for extractive question answering (SQuAD-style span prediction)."""

import keras
from keras import ops

from tfmodels.layers.dense import Dense


@keras.saving.register_keras_serializable(package="tfmodels")
class SpanHead(keras.layers.Layer):
    """Projects each token to a start and an end logit; padded tokens get a very low logit so a
    span can never start or end on them.

    Args:
        kernel_initializer: initializer for the projection.

    Call args:
        sequence_output: ``[batch, length, hidden]``.
        padding_mask: ``[batch, length]``, 1 for real tokens.

    Returns:
        ``(start_logits, end_logits)``, each float32 ``[batch, length]``.

    Example:
    >>> start, end = SpanHead()(keras.ops.ones((2, 5, 8)), keras.ops.ones((2, 5)))
    >>> start.shape
    TensorShape([2, 5])
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, sequence_output_shape, padding_mask_shape=None):
        self.dense = Dense(
            2, kernel_initializer=self.kernel_initializer, name="dense", dtype=self.dtype_policy
        )
        self.dense.build(sequence_output_shape)
        self.built = True

    def call(self, sequence_output, padding_mask=None):
        logits = ops.cast(self.dense(sequence_output), "float32")
        if padding_mask is not None:
            real = ops.cast(padding_mask, "bool")[:, :, None]
            logits = ops.where(real, logits, ops.full_like(logits, -1e4))
        return logits[..., 0], logits[..., 1]

    def compute_output_shape(self, sequence_output_shape, padding_mask_shape=None):
        return (tuple(sequence_output_shape[:2]), tuple(sequence_output_shape[:2]))

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        return config
