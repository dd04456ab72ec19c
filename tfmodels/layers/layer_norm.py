"""Layer normalization over the last axis, computed in float32 even under mixed precision."""

import keras
from keras import ops

from tfmodels.ops import scale_and_shift


@keras.saving.register_keras_serializable(package="tfmodels")
class LayerNorm(keras.layers.Layer):
    """``(x - mean) / sqrt(var + epsilon) * gamma + beta`` over the last axis, weights named as in
    ``keras.layers.LayerNormalization``. Statistics are float32 under mixed precision; the
    gamma/beta gradients are matmuls (see ``tfmodels.ops.scale_and_shift``).

    Args:
        epsilon: added to the variance (1e-12 in BERT, inside the square root).

    Example:
    >>> out = LayerNorm()(keras.ops.arange(8.0)[None])
    >>> round(float(keras.ops.mean(out)), 4)
    0.0
    """

    def __init__(self, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, inputs_shape):
        dim = inputs_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")
        self.built = True

    def call(self, x):
        dtype = x.dtype
        x = ops.cast(x, "float32")
        mean = ops.mean(x, axis=-1, keepdims=True)
        centered = x - mean
        variance = ops.mean(ops.square(centered), axis=-1, keepdims=True)
        normalized = centered * ops.rsqrt(variance + self.epsilon)
        gamma = ops.cast(self.gamma, "float32")
        beta = ops.cast(self.beta, "float32")
        return ops.cast(scale_and_shift(normalized, gamma, beta), dtype)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config
