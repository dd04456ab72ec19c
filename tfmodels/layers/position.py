"""Position encodings: learned embeddings (BERT) and fixed sinusoids (Vaswani et al., 2017)."""

import math

import keras
from keras import ops

from tfmodels.layers.initializers import clone_initializer


@keras.saving.register_keras_serializable(package="tfmodels")
class PositionEmbedding(keras.layers.Layer):
    """Learned absolute position embeddings.

    Args:
        sequence_length: the largest number of positions.
        initializer: initializer for the table.

    Call args:
        inputs: ``[batch, length, dim]``; only its shape is read.
        start_index: int, position of the first input (used in cached decoding).

    Returns:
        ``[1, length, dim]`` embeddings, to be added to ``inputs``.

    Example:
    >>> PositionEmbedding(16)(keras.ops.zeros((2, 5, 8))).shape
    TensorShape([1, 5, 8])
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)

    def build(self, inputs_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer=clone_initializer(self.initializer),
        )
        self.built = True

    def call(self, inputs, start_index=0):
        length = ops.shape(inputs)[1]
        table = ops.convert_to_tensor(self.embeddings)
        return ops.slice(table, (start_index, 0), (length, ops.shape(table)[1]))[None]

    def compute_output_shape(self, inputs_shape):
        return (1,) + tuple(inputs_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tfmodels")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Fixed sine/cosine position encodings of "Attention is all you need".

    ``PE[p, 2i] = sin(p / max_wavelength^(2i/d))``, ``PE[p, 2i+1] = cos(...)``.

    Args:
        max_wavelength: the longest wavelength (10000 in the paper).

    Call args:
        inputs: ``[batch, length, dim]``; only its shape is read.
        start_index: int, position of the first input.

    Example:
    >>> SinusoidalPositionEncoding()(keras.ops.zeros((2, 5, 8))).shape
    TensorShape([1, 5, 8])
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength

    def call(self, inputs, start_index=0):
        length = ops.shape(inputs)[1]
        dim = inputs.shape[-1]
        positions = ops.cast(ops.arange(length) + start_index, "float32")
        half = ops.arange(dim // 2, dtype="float32")
        inv_freq = ops.exp(-math.log(self.max_wavelength) * 2.0 * half / dim)
        angles = positions[:, None] * inv_freq[None, :]
        # Interleave sin and cos so column 2i is sin and 2i+1 is cos, as in the paper.
        encoding = ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (length, -1))
        if dim % 2:
            encoding = ops.pad(encoding, [[0, 0], [0, 1]])
        return ops.cast(encoding, self.compute_dtype)[None]

    def compute_output_shape(self, inputs_shape):
        return (1,) + tuple(inputs_shape[1:])

    def get_config(self):
        config = super().get_config()
        config["max_wavelength"] = self.max_wavelength
        return config
