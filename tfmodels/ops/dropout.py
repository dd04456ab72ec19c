"""Dropout whose random bits are a counter-based hash, computed inside the consumer's fusion.

``tf.nn.experimental.stateless_dropout`` (and Keras' dropout) draw a Philox float per element into
a separate buffer; under XLA on CPU that generator was ~5% of a BERT training step (attention-
probability dropout alone draws millions of numbers per step). Here each element's 32 random bits
are ``fmix32`` (MurmurHash3's finalizer, full avalanche) of its flat index mixed with a key derived
from the seed: a handful of integer ops that XLA fuses into the multiply-and-select, with no
random buffer. The draws are the same Bernoulli(1 - rate) keep decisions up to the rate being
resolved to 2^-32; independent seeds give independent-looking masks, and the same seed gives the
same mask (what recompute-in-backward and reproducibility need).
"""

import tensorflow as tf

_GOLDEN = 0x9E3779B9  # 2^32 / phi: spreads consecutive counters over the 32-bit range


def _fmix32(h):
    """MurmurHash3's 32-bit finalizer: every input bit flips each output bit with p ~ 1/2."""
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))
    h = h * tf.constant(0x85EBCA6B, tf.uint32)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 13))
    h = h * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))


def random_bits(shape, seed):
    """uint32 tensor of ``shape``: hash random bits for ``seed`` (int32 ``[2]``)."""
    seed = tf.bitcast(tf.cast(seed, tf.int32), tf.uint32)
    key = _fmix32(tf.bitwise.bitwise_xor(seed[0], _fmix32(seed[1] + tf.constant(_GOLDEN, tf.uint32))))
    key2 = _fmix32(key + tf.constant(_GOLDEN, tf.uint32))
    count = tf.reduce_prod(shape)
    counter = tf.bitcast(tf.range(count, dtype=tf.int32), tf.uint32)
    bits = _fmix32(tf.bitwise.bitwise_xor(_fmix32(counter * tf.constant(_GOLDEN, tf.uint32) + key), key2))
    return tf.reshape(bits, shape)


def dropout(x, rate, seed):
    """Zeroes each element with probability ``rate`` and scales the rest by ``1 / (1 - rate)``.

    Args:
        x: float tensor.
        rate: python float in [0, 1).
        seed: int32 ``[2]`` tensor; a new one per call (see ``keras.random.SeedGenerator``).
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    if rate == 0.0:
        return x
    bits = random_bits(tf.shape(x), seed)
    keep = bits >= tf.constant(min(round(rate * 2**32), 2**32 - 1), tf.uint32)
    return tf.where(keep, x * tf.cast(1.0 / (1.0 - rate), x.dtype), tf.zeros_like(x))


def dropout_with_seed_generator(x, rate, seed_generator):
    """``dropout`` with the next seed of a ``keras.random.SeedGenerator`` (a new mask per call)."""
    state = seed_generator.next()
    seed = tf.cast(tf.math.floormod(tf.cast(state, tf.int64), tf.int32.max - 1), tf.int32)
    return dropout(x, rate, seed)
