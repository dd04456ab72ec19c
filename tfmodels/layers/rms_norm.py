"""Root-mean-square layer normalization (Zhang & Sennrich, 2019), as in Llama."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class RMSNorm(keras.layers.Layer):
    """``x / sqrt(mean(x^2) + epsilon) * scale`` over the last axis: no centring, no bias.

    The statistics are float32 under mixed precision; the result is cast back to the input dtype
    before the scale multiplies it, as Hugging Face's ``LlamaRMSNorm`` does.

    Args:
        epsilon: added to the mean square (1e-5 in SmolLM2, 1e-6 in Llama 2).

    Example:
    >>> out = RMSNorm()(keras.ops.convert_to_tensor([[3.0, 4.0]]))
    >>> [round(v, 3) for v in keras.ops.convert_to_numpy(out)[0].tolist()]
    [0.849, 1.131]
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, inputs_shape):
        self.scale = self.add_weight(name="scale", shape=(inputs_shape[-1],), initializer="ones")
        self.built = True

    def call(self, x):
        dtype = x.dtype
        x32 = ops.cast(x, "float32")
        normalized = x32 * ops.rsqrt(ops.mean(ops.square(x32), axis=-1, keepdims=True) + self.epsilon)
        return ops.cast(normalized, dtype) * ops.cast(self.scale, dtype)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config
