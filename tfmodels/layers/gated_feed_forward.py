"""Gated feed-forward network (Shazeer, 2020): SwiGLU in Llama."""

import keras

from tfmodels.layers.dropout import Dropout
from tfmodels.layers.feed_forward import FeedForward


@keras.saving.register_keras_serializable(package="tfmodels")
class GatedFeedForward(FeedForward):
    """``down(dropout(activation(gate(x)) * up(x)))`` at each position; SwiGLU with ``activation="silu"``.

    Three ``Dense`` projections named as in Hugging Face Llama (``gate_dense``, ``up_dense``,
    ``down_dense``), each int8-quantizable and LoRA-capable.

    Args:
        intermediate_size: width of the gated hidden layer.
        activation: gate activation (``"silu"`` for SwiGLU, ``"gelu"`` for GeGLU).
        dropout: dropout rate on the gated hidden units (Llama: 0).
        use_bias: whether the projections have biases (Llama: no).
        kernel_initializer: initializer for the three kernels.

    Example:
    >>> GatedFeedForward(32)(keras.ops.ones((2, 3, 8))).shape
    TensorShape([2, 3, 8])
    """

    def __init__(self, intermediate_size, activation="silu", dropout=0.0, use_bias=False,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(intermediate_size, activation=activation, dropout=dropout, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, **kwargs)

    def build(self, inputs_shape):
        hidden_shape = tuple(inputs_shape[:-1]) + (self.intermediate_size,)
        self.gate_dense = self._dense(self.intermediate_size, "gate_dense", inputs_shape)
        self.up_dense = self._dense(self.intermediate_size, "up_dense", inputs_shape)
        self.down_dense = self._dense(inputs_shape[-1], "down_dense", hidden_shape)
        self.dropout_layer = Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, x, training=None):
        hidden = self._activation_fn(self.gate_dense(x)) * self.up_dense(x)
        return self.down_dense(self.dropout_layer(hidden, training=training))
