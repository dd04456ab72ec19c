"""Rotary position embedding (RoPE; Su et al., 2021) in the Hugging Face / keras-hub convention."""

import keras
from keras import ops


def rotary_angles(positions, head_dim, max_wavelength=10000.0, scaling_factor=1.0):
    """``(cos, sin)``, float32 ``positions.shape + [head_dim]``: the rotation of each position.

    Frequency ``i`` (of ``head_dim // 2``) is ``max_wavelength ** (-2i / head_dim)``; linear RoPE
    scaling divides the positions by ``scaling_factor``. Both halves of the head repeat the same
    frequencies (``rotate_half`` pairs element ``i`` with ``i + head_dim // 2``).
    """
    exponents = ops.arange(0, head_dim, 2, dtype="float32") / float(head_dim)
    inverse_frequencies = 1.0 / ops.power(float(max_wavelength), exponents)
    angles = ops.cast(positions, "float32")[..., None] / float(scaling_factor) * inverse_frequencies
    angles = ops.concatenate([angles, angles], axis=-1)
    return ops.cos(angles), ops.sin(angles)


def apply_rotary(x, positions, max_wavelength=10000.0, scaling_factor=1.0):
    """Rotates ``x`` ``[batch, length, heads, head_dim]`` by ``positions`` ``[batch, length]``
    (or ``[length]``): ``x * cos + rotate_half(x) * sin``, computed in float32, returned in
    ``x``'s dtype. Positions are per row, so left-padded rows can count from their first token."""
    cos, sin = rotary_angles(positions, x.shape[-1], max_wavelength, scaling_factor)
    if len(cos.shape) == 2:  # [length, dim]: the same positions for every row
        cos, sin = cos[None], sin[None]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]  # broadcast over heads
    x32 = ops.cast(x, "float32")
    first, second = ops.split(x32, 2, axis=-1)
    rotated = ops.concatenate([-second, first], axis=-1)
    return ops.cast(x32 * cos + rotated * sin, x.dtype)


@keras.saving.register_keras_serializable(package="tfmodels")
class RotaryEmbedding(keras.layers.Layer):
    """Applies rotary position embedding to query or key heads (no weights).

    ``MultiHeadAttention(rope_max_wavelength=...)`` calls ``apply_rotary`` itself (it must stay a
    leaf layer for ``Model.quantize``); this layer is the same function for use elsewhere.

    Args:
        max_wavelength: the RoPE base (``rope_theta``: 10,000 in Llama 2, 100,000 in SmolLM2).
        scaling_factor: linear position scaling (positions are divided by it); 1 for none.

    Call args:
        x: ``[batch, length, heads, head_dim]`` with an even ``head_dim``.
        positions: int ``[batch, length]`` or ``[length]``; defaults to ``start_index + arange``.
        start_index: first position when ``positions`` is omitted.

    Example:
    >>> layer = RotaryEmbedding(max_wavelength=10000)
    >>> layer(keras.ops.ones((1, 3, 2, 4))).shape
    TensorShape([1, 3, 2, 4])
    """

    def __init__(self, max_wavelength=10000.0, scaling_factor=1.0, **kwargs):
        super().__init__(**kwargs)
        if scaling_factor <= 0:
            raise ValueError(f"RotaryEmbedding scaling_factor must be > 0, got {scaling_factor!r}")
        self.max_wavelength = max_wavelength
        self.scaling_factor = scaling_factor

    def call(self, x, positions=None, start_index=0):
        if x.shape[-1] % 2:
            raise ValueError(f"rotary embedding needs an even head size, got {x.shape[-1]}")
        if positions is None:
            positions = ops.arange(ops.shape(x)[1]) + start_index
        return apply_rotary(x, positions, self.max_wavelength, self.scaling_factor)

    def compute_output_shape(self, x_shape, positions_shape=None):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength, "scaling_factor": self.scaling_factor})
        return config
