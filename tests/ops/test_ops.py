import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import Dense, Dropout, LayerNorm
from tfmodels.ops import add_bias, dropout, scale_and_shift


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
