"""Per-output-channel int8 weights and the matmul that uses them.

Weights only: ``x @ kernel`` becomes ``(x @ float(q)) * scale`` with ``q`` int8 and ``scale`` one
float per output column. Activations stay in float. The dynamic int8 activations that Keras'
``Dense`` uses (per-row abs-max, int8 x int8 -> int32 matmul) were 3.7x *slower* than the float32
matmul in TensorFlow 2.16 on CPU ([128, 384] @ [384, 1536], with and without XLA, on a machine with
AVX-512 VNNI and AMX): the int32-output MatMul kernel is not oneDNN's. Weight-only int8 keeps the
4x smaller weights (what the SavedModel size and memory need) for ~20% more matmul time (the cast).
"""

import tensorflow as tf
from keras import ops

INT8_MAX = 127.0


def quantize_per_channel(kernel):
    """``(q, scale)`` with ``kernel ~= q * scale``: int8 ``q`` of ``kernel``'s shape ``[in, out]``
    and float32 ``scale`` ``[out]``, symmetric abs-max per output column (an all-zero column gets
    scale 1, so it round-trips to zeros)."""
    kernel = tf.convert_to_tensor(kernel, tf.float32)
    abs_max = tf.reduce_max(tf.abs(kernel), axis=0)
    scale = tf.where(abs_max > 0, abs_max / INT8_MAX, tf.ones_like(abs_max))
    q = tf.cast(tf.clip_by_value(tf.round(kernel / scale), -INT8_MAX, INT8_MAX), tf.int8)
    return q, scale


def dequantize(q, scale, dtype=tf.float32):
    """``q * scale`` in ``dtype``: the float kernel an int8 one stands for."""
    return tf.cast(q, dtype) * tf.cast(scale, dtype)


@tf.custom_gradient
def _int8_matmul(x, q, scale):
    y = tf.matmul(x, tf.cast(q, x.dtype)) * scale

    def grad(dy):
        # The weights are frozen (int8 has no gradient); the input gradient lets layers below train.
        return tf.matmul(dy * scale, tf.cast(q, dy.dtype), transpose_b=True), None, None

    return y, grad


def int8_matmul_last_axis(x, q, scale):
    """``x @ (q * scale)`` contracting ``x``'s last axis with int8 ``q`` ``[in, out]`` (per-column
    float ``scale`` ``[out]``), as one 2-D product (see ``matmul_last_axis``)."""
    x = tf.convert_to_tensor(x)
    scale = tf.cast(tf.convert_to_tensor(scale), x.dtype)
    y = _int8_matmul(ops.reshape(x, (-1, ops.shape(x)[-1])), tf.convert_to_tensor(q), scale)
    return ops.reshape(y, tuple(ops.shape(x)[:-1]) + (q.shape[-1],))
