"""Per-output-channel int8 weights and the matmul that uses them.

Weights are int8 with one float32 scale per output column (``quantize_per_channel``). The matmul
(``int8_matmul_last_axis``) computes ``(x @ q) * scale`` on one of three paths (``INT8_PATHS``):

- ``"bfloat16"``: ``q`` cast to bfloat16 (int8 values are exact in it), the activations rounded to
  bfloat16, oneDNN's AMX/AVX512-BF16 matmul, the scale applied in float32. The default where the CPU
  has bfloat16 matmul instructions and TensorFlow runs oneDNN (x86 builds; ``TF_ENABLE_ONEDNN_OPTS``
  is on by default), with or without XLA: 1.4x faster than the float32 matmul over MiniLM's batch-1
  shapes, 2.2x at batch 32, with about the error of the int8 weights alone (bench/int8_kernels.py,
  Sapphire Rapids).
- ``"dynamic_int8"``: activations quantized to int8 per row as well, on oneDNN's u8 x s8 inner
  product (``QuantizedMatMulWithBiasAndDequantize``). Its kernel is the fastest one, but the
  quantize/zero-point/scale ops around it cost more than bfloat16 saves: slower than float32 at
  ``[128, 384] @ [384, 384]``, 1.6-1.75x faster at batch 32, behind ``"bfloat16"`` at every shape.
  Selectable with ``int8_path("dynamic_int8")``.
- ``"float32"``: weight-only int8, ``(x @ float32(q)) * scale`` (0.8-0.9x the float32 matmul: the
  cast): on CPUs without bfloat16 matmuls, and for float16 activations.

The int8 paths TensorFlow 2.16 offers besides were slower than the float32 matmul on this CPU: the
int8 x int8 -> int32 ``MatMul`` that Keras' int8 ``Dense`` uses (not a oneDNN kernel: 4-8x slower, XLA's
int8 dot too), ``QuantizedMatMul`` (no kernel for quint8 x qint8), and the MIN_FIRST activations TF's
own quantization rewrite uses (its outputs were far from float32's in our use, and it runs a single-threaded bias
compensation over the weights on every call). XLA has no kernel for the oneDNN op.
"""

import contextlib
import functools

import tensorflow as tf
from keras import ops

from tfmodels.utils.cpu import has_bfloat16_matmul

INT8_MAX = 127.0
BFLOAT16, DYNAMIC_INT8, FLOAT32 = "bfloat16", "dynamic_int8", "float32"
INT8_PATHS = (BFLOAT16, DYNAMIC_INT8, FLOAT32)


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


def _input_gradient(dy, q, scale):
    # The weights are frozen (int8 has no gradient); the input gradient lets layers below train.
    return tf.matmul(dy * tf.cast(scale, dy.dtype), tf.cast(q, dy.dtype), transpose_b=True)


@tf.custom_gradient
def _weight_only_matmul(x, q, scale):
    y = tf.matmul(x, tf.cast(q, x.dtype)) * tf.cast(scale, x.dtype)
    return y, lambda dy: (_input_gradient(dy, q, scale), None, None)


@tf.custom_gradient
def _bfloat16_matmul(x, q, scale):
    product = tf.matmul(tf.cast(x, tf.bfloat16), tf.cast(q, tf.bfloat16))
    y = tf.cast(tf.cast(product, tf.float32) * scale, x.dtype)
    return y, lambda dy: (_input_gradient(dy, q, scale), None, None)


# -- dynamic int8: per-row int8 activations on oneDNN's u8 x s8 inner product ------------------------

ACTIVATION_OFFSET = 128.0  # int8 activations shifted into the kernel's uint8: x_u8 = x_s8 + 128


def quantize_rows(x):
    """``(x_s8, scale)``: ``x`` ``[rows, in]`` rounded to int8 steps of ``scale`` ``[rows, 1]`` (abs-max
    per row; an all-zero row gets scale 1), as float values in ``[-127, 127]``."""
    abs_max = tf.reduce_max(tf.abs(x), axis=-1, keepdims=True)
    scale = tf.where(abs_max > 0, abs_max / INT8_MAX, tf.ones_like(abs_max))
    return tf.round(x / scale), scale


@tf.custom_gradient
def _dynamic_int8_matmul(x, q, scale):
    x32 = tf.cast(x, tf.float32)
    x_s8, x_scale = quantize_rows(x32)
    # The kernel takes uint8 activations: shift by 128, and append a row of ones whose product is
    # q's column sums, to take the shift back out (sum_k (x_s8 + 128) q = x_s8 @ q + 128 * sum_k q).
    x_u8 = tf.cast(x_s8 + ACTIVATION_OFFSET, tf.uint8)
    x_u8 = tf.concat([x_u8, tf.ones((1, tf.shape(x)[1]), tf.uint8)], axis=0)
    # SCALED mode with ranges [0, 255] and [-127, 127]: unit scales, so the float output is the exact
    # integer sum (no bias compensation pass, which MIN_FIRST would run over q on every call).
    sums = tf.raw_ops.QuantizedMatMulWithBiasAndDequantize(
        a=tf.bitcast(x_u8, tf.quint8), b=tf.bitcast(q, tf.qint8), bias=tf.zeros(tf.shape(q)[1:]),
        min_a=0.0, max_a=255.0, min_b=-INT8_MAX, max_b=INT8_MAX, min_freezed_output=0.0,
        max_freezed_output=1.0, Toutput=tf.float32, input_quant_mode="SCALED")
    rows = tf.shape(x)[0]
    y = (sums[:rows] - ACTIVATION_OFFSET * sums[rows:]) * (x_scale * scale)
    return tf.cast(y, x.dtype), lambda dy: (_input_gradient(dy, q, scale), None, None)


_MATMULS = {BFLOAT16: _bfloat16_matmul, DYNAMIC_INT8: _dynamic_int8_matmul, FLOAT32: _weight_only_matmul}


def int8_matmul(x, q, scale, path=FLOAT32):
    """``x @ (q * scale)`` for ``x`` ``[rows, in]``, int8 ``q`` ``[in, out]`` and float ``scale``
    ``[out]``, on ``path`` (one of ``INT8_PATHS``; see the module docstring). The output has ``x``'s
    dtype; input gradients go through the dequantized kernel (the int8 weights are frozen)."""
    if path not in _MATMULS:
        raise ValueError(f"int8 matmul path must be one of {INT8_PATHS}, got {path!r}")
    return _MATMULS[path](tf.convert_to_tensor(x), tf.convert_to_tensor(q), tf.cast(scale, tf.float32))


def int8_matmul_last_axis(x, q, scale):
    """``x @ (q * scale)`` contracting ``x``'s last axis with int8 ``q`` ``[in, out]`` (per-column
    float ``scale`` ``[out]``), as one 2-D product (see ``matmul_last_axis``), on the fastest path
    this TensorFlow and CPU run (``selected_int8_path``)."""
    x = tf.convert_to_tensor(x)
    y = int8_matmul(ops.reshape(x, (-1, ops.shape(x)[-1])), q, scale, selected_int8_path(x.dtype))
    return ops.reshape(y, tuple(ops.shape(x)[:-1]) + (q.shape[-1],))


# -- which path runs ----------------------------------------------------------------------------

_forced_path = []


@contextlib.contextmanager
def int8_path(path):
    """Within the block, int8 layers traced (or run eagerly) compute on ``path`` where it can run
    (``"dynamic_int8"`` cannot under XLA): for benchmarks and tests."""
    if path not in INT8_PATHS:
        raise ValueError(f"int8 matmul path must be one of {INT8_PATHS}, got {path!r}")
    _forced_path.append(path)
    try:
        yield
    finally:
        _forced_path.pop()


def selected_int8_path(dtype=tf.float32):
    """The path ``int8_matmul_last_axis`` takes for activations of ``dtype`` in the current trace:
    ``"bfloat16"`` where the CPU has bfloat16 matmuls (with XLA too: its bfloat16 dot is also faster
    than its float32 one here), else ``"float32"``; ``"dynamic_int8"`` only when asked for
    (``int8_path``) and runnable (not under XLA, oneDNN builds)."""
    if tf.as_dtype(dtype) not in (tf.float32, tf.bfloat16):
        return FLOAT32
    default = BFLOAT16 if _fast_bfloat16_matmul() else FLOAT32
    path = _forced_path[-1] if _forced_path else default
    if path == DYNAMIC_INT8 and (_in_xla_context() or not _onednn_int8_available()):
        return default
    return path


def _in_xla_context():
    """True while tracing for XLA (``jit_compile=True``)."""
    from tensorflow.python.ops import control_flow_util  # noqa: PLC0415 (TF-internal)

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


@functools.lru_cache(maxsize=None)
def _fast_bfloat16_matmul():
    """TensorFlow runs oneDNN and the CPU has bfloat16 dot instructions (AMX or AVX512-BF16); with a
    GPU the matmuls run there, where this was not measured: float32 (weight-only) as before."""
    from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415 (TF-internal)

    if not _pywrap_util_port.IsMklEnabled() or tf.config.list_physical_devices("GPU"):
        return False
    return has_bfloat16_matmul()


@functools.lru_cache(maxsize=None)
def _onednn_int8_available():
    """Whether this TensorFlow runs ``QuantizedMatMulWithBiasAndDequantize`` (oneDNN builds) and gets
    the exact integer product from it: tried once, eagerly, on a tiny input."""
    with tf.init_scope():
        x = tf.constant([[1.0, -2.0, 0.5]])
        q = tf.constant([[3, -127], [-5, 7], [127, 1]], tf.int8)
        try:
            y = _dynamic_int8_matmul(x, q, tf.ones([2]))
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            return False
        expected = tf.matmul(tf.round(x * INT8_MAX / 2.0), tf.cast(q, tf.float32)) * (2.0 / INT8_MAX)
        return bool(tf.reduce_all(tf.abs(y - expected) < 1e-4))
