"""Position-wise feed-forward network and the activations BERT checkpoints name."""

import keras

from tfmodels.layers.activations import get_activation, serialize_activation
from tfmodels.layers.dense import Dense
from tfmodels.layers.dropout import Dropout


@keras.saving.register_keras_serializable(package="tfmodels")
class FeedForward(keras.layers.Layer):
    """``dense(activation(dense(x)))`` applied at each position, with dropout on the hidden units.

    Args:
        intermediate_size: width of the hidden layer.
        activation: activation name (see ``get_activation``) or callable.
        dropout: dropout rate after the activation (0 in BERT; the output dropout lives in the block).
        use_bias: whether the projections have biases.
        kernel_initializer: initializer for the kernels.

    Example:
    >>> FeedForward(32)(keras.ops.ones((2, 3, 8))).shape
    TensorShape([2, 3, 8])
    """

    def __init__(
        self,
        intermediate_size,
        activation="gelu",
        dropout=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.dropout = dropout
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._activation_fn = get_activation(activation)

    def _dense(self, units, name, inputs_shape):
        """A built projection (int8-quantizable, LoRA-capable ``Dense``) from ``inputs_shape``."""
        layer = Dense(units, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                      name=name, dtype=self.dtype_policy)
        layer.build(inputs_shape)
        return layer

    def build(self, inputs_shape):
        hidden_shape = tuple(inputs_shape[:-1]) + (self.intermediate_size,)
        self.intermediate_dense = self._dense(self.intermediate_size, "intermediate_dense", inputs_shape)
        self.output_dense = self._dense(inputs_shape[-1], "output_dense", hidden_shape)
        self.dropout_layer = Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, x, training=None):
        h = self._activation_fn(self.intermediate_dense(x))
        h = self.dropout_layer(h, training=training)
        return self.output_dense(h)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_size": self.intermediate_size,
                "activation": serialize_activation(self.activation),
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
