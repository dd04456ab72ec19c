"""Exact (erf) GELU with a one-pass gradient.

Autodiff of ``0.5 * x * (1 + erf(x / sqrt(2)))`` under XLA on CPU recomputes erf in one fusion,
multiplies in a second and sums the two product-rule terms in a third: three passes over the
``[tokens, intermediate]`` activations per layer. The hand-written derivative
``Phi(x) + x * phi(x)`` is one elementwise pass. Same values as ``keras.activations.gelu``.
"""

import math

import tensorflow as tf

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _cdf(x):
    return 0.5 * (1.0 + tf.math.erf(x * _SQRT_HALF))


@tf.custom_gradient
def _gelu(x):
    def grad(dy):
        xf = tf.cast(x, tf.float32)
        slope = _cdf(xf) + xf * tf.exp(-0.5 * xf * xf) * _INV_SQRT_2PI
        return tf.cast(tf.cast(dy, tf.float32) * slope, x.dtype)

    xf = tf.cast(x, tf.float32)
    return tf.cast(xf * _cdf(xf), x.dtype), grad


def gelu(x):
    """``x * Phi(x)``, Phi the standard normal CDF (BERT's "gelu"); computed in float32."""
    return _gelu(tf.convert_to_tensor(x))
