import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import Dense, Dropout, LayerNorm
from tfmodels.ops import (
    add_bias,
    dropout,
    embedding_lookup,
    gelu,
    matmul_last_axis,
    scale_and_shift,
)
from tfmodels.ops.dropout import random_bits
from tfmodels.ops.int8 import (
    DYNAMIC_INT8,
    FLOAT32,
    INT8_PATHS,
    _onednn_int8_available,
    dequantize,
    int8_matmul,
    int8_matmul_last_axis,
    int8_path,
    quantize_per_channel,
    selected_int8_path,
)


def _grads(fn, *args):
    args = [tf.convert_to_tensor(a) for a in args]
    with tf.GradientTape() as tape:
        tape.watch(args)
        y = fn(*args)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
    return y, tape.gradient(loss, args)


@pytest.mark.parametrize("jit", [False, True])
def test_add_bias_and_scale_and_shift_match_plain_math_and_gradients(jit):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4, 6)).astype("float32")
    b = rng.normal(size=(4, 6)).astype("float32")
    s = rng.normal(size=(4, 6)).astype("float32")
    wrap = tf.function(jit_compile=True) if jit else (lambda f: f)
    y, (gx, gb) = wrap(lambda x, b: _grads(add_bias, x, b))(x, b)
    y_ref, (gx_ref, gb_ref) = _grads(lambda x, b: x + b, x, b)
    np.testing.assert_allclose(y, y_ref, atol=1e-6)
    np.testing.assert_allclose(gx, gx_ref, atol=1e-5)
    np.testing.assert_allclose(gb, gb_ref, atol=1e-4)
    y, grads = wrap(lambda x, s, b: _grads(scale_and_shift, x, s, b))(x, s, b)
    y_ref, grads_ref = _grads(lambda x, s, b: x * s + b, x, s, b)
    np.testing.assert_allclose(y, y_ref, atol=1e-6)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(g, g_ref, atol=1e-4)


def test_bias_gradient_accumulates_bfloat16_in_float32():
    x = tf.ones((4096, 8), tf.bfloat16)
    b = tf.zeros((8,), tf.bfloat16)
    _, (_, gb) = _grads(add_bias, x, b)
    # 4096 * 2 is exact in float32 accumulation; bfloat16 accumulation would stall at 256.
    np.testing.assert_array_equal(tf.cast(gb, tf.float32), np.full(8, 8192.0))


@pytest.mark.parametrize("rate, shape", [(0.1, (64, 4, 64, 64)), (0.3, (500, 7)), (0.5, (1000,))])
def test_dropout_rate_scaling_and_determinism(rate, shape):
    x = tf.ones(shape)
    y = dropout(x, rate, tf.constant([7, 9]))
    dropped = float(tf.reduce_mean(tf.cast(y == 0, tf.float32)))
    n = np.prod(shape)
    assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / n) + 1e-4
    kept = tf.boolean_mask(y, y != 0)
    np.testing.assert_allclose(kept, 1.0 / (1.0 - rate), rtol=1e-6)
    np.testing.assert_array_equal(y, dropout(x, rate, tf.constant([7, 9])))
    assert not np.array_equal(y, dropout(x, rate, tf.constant([7, 10])))
    with pytest.raises(ValueError, match="rate"):
        dropout(x, 1.0, tf.constant([1, 2]))


@pytest.mark.parametrize("jit", [False, True])
def test_gelu_matches_keras_exact_gelu_and_its_gradient(jit):
    x = tf.constant(np.linspace(-6.0, 6.0, 1001, dtype="float32"))
    wrap = tf.function(jit_compile=True) if jit else (lambda f: f)
    y, (gx,) = wrap(lambda x: _grads(gelu, x))(x)
    y_ref, (gx_ref,) = _grads(lambda x: keras.activations.gelu(x, approximate=False), x)
    np.testing.assert_allclose(y, y_ref, atol=1e-6)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-5, atol=1e-5)
    half = tf.cast(x, tf.bfloat16)
    y16, (g16,) = _grads(gelu, half)
    assert y16.dtype == g16.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y16, tf.float32), y_ref, rtol=1e-2, atol=1e-2)


def test_matmul_last_axis_matches_einsum_and_its_kernel_gradient():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(3, 5, 8)).astype("float32"))
    k = tf.constant(rng.normal(size=(8, 6)).astype("float32"))
    y, (gx, gk) = _grads(matmul_last_axis, x, k)
    y_ref, (gx_ref, gk_ref) = _grads(lambda x, k: tf.einsum("btd,de->bte", x, k), x, k)
    np.testing.assert_allclose(y, y_ref, atol=1e-5)
    np.testing.assert_allclose(gx, gx_ref, atol=1e-4)
    np.testing.assert_allclose(gk, gk_ref, atol=1e-4)


@pytest.mark.parametrize("jit", [False, True])
def test_embedding_lookup_gradient_is_the_dense_row_sum(jit):
    table = tf.constant(np.random.default_rng(3).normal(size=(7, 4)).astype("float32"))
    ids = tf.constant([[1, 5, 1], [0, 1, 6]])
    wrap = tf.function(jit_compile=True) if jit else (lambda f: f)
    y, (g,) = wrap(lambda t: _grads(lambda t: embedding_lookup(t, ids), t))(table)
    y_ref, (g_ref,) = _grads(lambda t: tf.gather(t, ids), table)
    np.testing.assert_allclose(y, y_ref)
    assert isinstance(g, tf.Tensor) and g.shape == (7, 4)
    np.testing.assert_allclose(g, tf.convert_to_tensor(g_ref), rtol=1e-6)
    np.testing.assert_array_equal(g[2], 0.0)  # rows no id selects get no gradient


def test_dropout_random_bits_are_balanced_and_independent_across_seeds_and_positions():
    n = 1 << 20
    a = random_bits(tf.constant([n]), tf.constant([1, 2])).numpy().astype("int64")
    b = random_bits(tf.constant([n]), tf.constant([1, 3])).numpy().astype("int64")
    c = random_bits(tf.constant([n]), tf.constant([2, 2])).numpy().astype("int64")
    tolerance = 5 * 0.5 / np.sqrt(n)
    for bit in range(32):
        assert abs(((a >> bit) & 1).mean() - 0.5) < tolerance, bit
    for other in (b, c, np.roll(a, 1)):
        assert abs(np.corrcoef(a, other)[0, 1]) < 5 / np.sqrt(n)
    # Keep masks of two seeds agree as often as two independent Bernoulli(0.9) draws do.
    threshold = round(0.1 * 2**32)
    agree = ((a >= threshold) == (b >= threshold)).mean()
    assert abs(agree - 0.82) < 5 * np.sqrt(0.82 * 0.18 / n)
    np.testing.assert_array_equal(random_bits(tf.constant([2, 3]), tf.constant([5, 6])),
                                  random_bits(tf.constant([6]), tf.constant([5, 6])).numpy().reshape(2, 3))


def test_dropout_layer_is_identity_at_inference_and_fresh_each_step():
    layer = Dropout(0.5, seed=3)
    x = keras.ops.ones((4, 64))
    np.testing.assert_array_equal(layer(x), x)
    a, b = layer(x, training=True), layer(x, training=True)
    assert not np.array_equal(a, b)


def test_dense_and_layer_norm_match_keras_layers():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    ours, theirs = Dense(6, activation="relu"), keras.layers.Dense(6, activation="relu")
    ours.build(x.shape), theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), theirs(x), atol=1e-6)
    norm, keras_norm = LayerNorm(epsilon=1e-6), keras.layers.LayerNormalization(epsilon=1e-6)
    norm.build(x.shape), keras_norm.build(x.shape)
    weights = [rng.normal(size=8).astype("float32"), rng.normal(size=8).astype("float32")]
    norm.set_weights(weights), keras_norm.set_weights(weights)
    np.testing.assert_allclose(norm(x), keras_norm(x), atol=1e-5)
    bf16 = LayerNorm(epsilon=1e-6, dtype="mixed_bfloat16")
    bf16.build(x.shape)
    bf16.set_weights(weights)
    out = bf16(x)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    np.testing.assert_allclose(np.asarray(out, "float32"), keras_norm(x), atol=0.05)


def _int8_case():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 96)).astype("float32")
    x[1] *= 50.0  # rows of very different range: per-row activation scales
    x[2] = 0.0
    q, scale = quantize_per_channel(rng.normal(size=(96, 10)).astype("float32"))
    return x, q, scale


def _activation_rounding_bound(path, x, q, scale):
    """The largest ``|int8_matmul - x @ dequantized|`` each path's rounding of the activations allows."""
    kernel_abs = np.abs(dequantize(q, scale).numpy()).astype("float64")
    float_rounding = 1e-5 * (np.abs(x) @ kernel_abs) + 1e-6
    if path == FLOAT32:
        return float_rounding
    if path == DYNAMIC_INT8:  # each row rounded to steps of its abs-max / 127: half a step per element
        step = np.abs(x).max(axis=1, keepdims=True) / 127
        return step / 2 * kernel_abs.sum(axis=0, keepdims=True) + float_rounding
    # bfloat16: the activations and the product rounded to 8 significant bits (2^-8 relative each).
    return 2.0**-7 * (np.abs(x) @ kernel_abs) + float_rounding


@pytest.mark.parametrize("path", INT8_PATHS)
def test_int8_matmul_paths_stay_within_their_activation_rounding_and_pass_input_gradients(path):
    if path == DYNAMIC_INT8 and not _onednn_int8_available():
        pytest.skip("this TensorFlow has no oneDNN int8 inner product")
    x, q, scale = _int8_case()
    dequantized = dequantize(q, scale).numpy()
    y, (gx,) = _grads(lambda x: int8_matmul(x, q, scale, path), x)
    assert y.dtype == tf.float32 and y.shape == (6, 10)
    error = np.abs(y.numpy() - x.astype("float64") @ dequantized)
    assert np.all(error <= _activation_rounding_bound(path, x, q, scale))
    np.testing.assert_array_equal(y[2], 0.0)
    if path != FLOAT32:  # it really rounds the activations
        assert np.abs(y - int8_matmul(x, q, scale, FLOAT32)).max() > 1e-3
    # Input gradients through the dequantized kernel, whatever the forward path (the int8 is frozen).
    np.testing.assert_allclose(gx, (2 * y.numpy()) @ dequantized.T, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("jit", [False, True])
def test_int8_matmul_last_axis_runs_the_selected_path_with_and_without_xla(jit):
    x, q, scale = _int8_case()
    exact = x.astype("float64") @ dequantize(q, scale).numpy()
    default = selected_int8_path()
    for asked in (default, DYNAMIC_INT8):
        with int8_path(asked):  # read while tracing
            y = tf.function(lambda x: int8_matmul_last_axis(x, q, scale), jit_compile=jit)(x.reshape(2, 3, 96))
        assert y.shape == (2, 3, 10)
        y = y.numpy().reshape(6, 10)
        # XLA has no kernel for the oneDNN op: dynamic int8 gives way to the default path there.
        path = DYNAMIC_INT8 if asked == DYNAMIC_INT8 and not jit and _onednn_int8_available() else default
        assert np.all(np.abs(y - exact) <= _activation_rounding_bound(path, x, q, scale))
        if path == DYNAMIC_INT8:
            np.testing.assert_allclose(y, int8_matmul(x, q, scale, DYNAMIC_INT8), atol=1e-4)
    assert selected_int8_path(tf.float16) == FLOAT32


def test_int8_paths_reject_unknown_names():
    x, q, scale = _int8_case()
    with pytest.raises(ValueError, match="int8 matmul path must be one of"):
        int8_matmul(x, q, scale, "int4")
    with pytest.raises(ValueError, match="int8 matmul path must be one of"):
        with int8_path("fp8"):
            pass
