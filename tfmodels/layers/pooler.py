"""BERT's pooler: a tanh dense layer on the first ([CLS]) token."""

import keras

from tfmodels.layers.dense import Dense


@keras.saving.register_keras_serializable(package="tfmodels")
class Pooler(keras.layers.Layer):
    """Returns ``tanh(W h_0 + b)`` for the first token of each sequence.

    Args:
        hidden_size: output width; defaults to the input width.
        kernel_initializer: initializer for the kernel.

    Example:
    >>> Pooler()(keras.ops.ones((2, 5, 8))).shape
    TensorShape([2, 8])
    """

    def __init__(self, hidden_size=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, sequence_shape):
        self.dense = Dense(
            self.hidden_size or sequence_shape[-1],
            activation="tanh",
            kernel_initializer=self.kernel_initializer,
            name="dense",
            dtype=self.dtype_policy,
        )
        self.dense.build((sequence_shape[0], sequence_shape[-1]))
        self.built = True

    def call(self, sequence_output):
        return self.dense(sequence_output[:, 0, :])

    def compute_output_shape(self, sequence_shape):
        return (sequence_shape[0], self.hidden_size or sequence_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_size": self.hidden_size,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
