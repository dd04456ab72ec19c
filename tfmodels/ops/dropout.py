"""Dropout from raw random bits.

``tf.nn.experimental.stateless_dropout`` draws a float per element and compares it with the rate.
Here each Philox uint32 is split into two 16-bit draws compared with an integer threshold: the
same Bernoulli draw with the rate resolved to 2^-16 (0.1 becomes 0.100006), and ~10x cheaper under
XLA on CPU, where attention-probability dropout alone draws millions of numbers per step.
"""

import tensorflow as tf


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
    shape = tf.shape(x)
    if x.shape.rank and x.shape[-1] is not None and x.shape[-1] % 2 == 0:
        half = tf.concat([shape[:-1], [shape[-1] // 2]], axis=0)
        words = tf.random.stateless_uniform(
            half, seed=seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
        )
        bits = tf.reshape(tf.bitcast(words, tf.uint16), shape)
        keep = bits >= tf.constant(round(rate * 2**16), tf.uint16)
    else:
        bits = tf.random.stateless_uniform(
            shape, seed=seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
        )
        keep = bits >= tf.constant(min(round(rate * 2**32), 2**32 - 1), tf.uint32)
    return tf.where(keep, x * tf.cast(1.0 / (1.0 - rate), x.dtype), tf.zeros_like(x))
