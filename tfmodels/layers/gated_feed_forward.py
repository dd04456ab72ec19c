"""Gated feed-forward network (Shazeer, 2020): SwiGLU in Llama."""

import keras

from tfmodels.layers.activations import get_activation, serialize_activation
from tfmodels.layers.dense import Dense


@keras.saving.register_keras_serializable(package="tfmodels")
class GatedFeedForward(keras.layers.Layer):
    """``down(activation(gate(x)) * up(x))`` at each position; SwiGLU with ``activation="silu"``.

    Three bias-free ``Dense`` projections named as in Hugging Face Llama (``gate_dense``,
    ``up_dense``, ``down_dense``), each int8-quantizable and LoRA-capable.

    Args:
        intermediate_size: width of the gated hidden layer.
        activation: gate activation (``"silu"`` for SwiGLU, ``"gelu"`` for GeGLU).
        use_bias: whether the projections have biases (Llama: no).
        kernel_initializer: initializer for the three kernels.

    Example:
    >>> GatedFeedForward(32)(keras.ops.ones((2, 3, 8))).shape
    TensorShape([2, 3, 8])
    """

    def __init__(
        self,
        intermediate_size,
        activation="silu",
        use_bias=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._activation_fn = get_activation(activation)

    def _dense(self, units, name, inputs_shape):
        layer = Dense(units, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                      name=name, dtype=self.dtype_policy)
        layer.build(inputs_shape)
        return layer

    def build(self, inputs_shape):
        hidden_shape = tuple(inputs_shape[:-1]) + (self.intermediate_size,)
        self.gate_dense = self._dense(self.intermediate_size, "gate_dense", inputs_shape)
        self.up_dense = self._dense(self.intermediate_size, "up_dense", inputs_shape)
        self.down_dense = self._dense(inputs_shape[-1], "down_dense", hidden_shape)
        self.built = True

    def call(self, x):
        return self.down_dense(self._activation_fn(self.gate_dense(x)) * self.up_dense(x))

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_size": self.intermediate_size,
                "activation": serialize_activation(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
