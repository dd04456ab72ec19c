"""LoRA adapters on our Dense and MultiHeadAttention, float and int8 (QLoRA-style)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from testlib import run_layer_test

from tfmodels.layers import Dense, MultiHeadAttention

RNG = np.random.default_rng(0)


def _normal(*shape):
    return RNG.normal(size=shape).astype("float32")


def _train(layer, x, steps=3):
    """A few Adam steps on a random regression target; returns the trained variables' paths."""
    target = _normal(*layer(x).shape)
    optimizer = keras.optimizers.Adam(1e-2)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x) - target))
        optimizer.apply(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables)
    return [v.path for v in layer.trainable_variables]


def _snapshot(layer):
    return {v.path: v.numpy().copy() for v in layer.weights}


def test_lora_dense_starts_as_identity_trains_only_adapters_and_merges_exactly():
    layer = Dense(6)
    x = _normal(4, 5)
    before_out = layer(x).numpy()
    layer.enable_lora(2, alpha=4)
    np.testing.assert_allclose(layer(x), before_out, atol=1e-6)  # B starts at zero
    assert sorted(v.name for v in layer.trainable_variables) == ["bias", "kernel_lora_a",
                                                                 "kernel_lora_b"]
    layer.bias.trainable = False  # a model's enable_lora freezes every non-adapter weight
    before = _snapshot(layer)
    _train(layer, x)
    after = _snapshot(layer)
    changed = sorted(p.split("/")[-1] for p in before if not np.array_equal(before[p], after[p]))
    assert changed == ["kernel_lora_a", "kernel_lora_b"]
    adapted = layer(x).numpy()
    assert np.abs(adapted - before_out).max() > 1e-3
    expected_kernel = before[layer.kernel.path] + after[layer.kernel_lora_a.path] @ after[
        layer.kernel_lora_b.path] * 2.0
    layer.merge_lora()
    assert layer.lora_rank is None and not layer.lora_weights() and len(layer.weights) == 2
    np.testing.assert_allclose(layer.kernel.numpy(), expected_kernel, atol=1e-6)
    np.testing.assert_allclose(layer(x), adapted, atol=1e-5)
    assert layer.kernel.trainable


def test_lora_layer_config_and_keras_file_round_trip():
    # The harness' one-step training check does not apply: with B = 0, A's first gradient is 0.
    run_layer_test(Dense, {"units": 4, "lora_rank": 2}, _normal(2, 3, 8),
                   expected_output_shape=(2, 3, 4), expected_num_trainable_weights=3,
                   run_training_check=False)
    layer = run_layer_test(MultiHeadAttention, {"num_heads": 2, "key_dim": 4, "lora_rank": 2},
                           _normal(2, 3, 8), expected_output_shape=(2, 3, 8),
                           expected_num_trainable_weights=10, run_training_check=False, atol=1e-5)
    assert sorted(layer.lora_weights()) == ["query_kernel_lora_a", "query_kernel_lora_b",
                                            "value_kernel_lora_a", "value_kernel_lora_b"]


def test_qlora_int8_attention_trains_only_adapters_and_merge_requantizes():
    layer = MultiHeadAttention(num_heads=2, key_dim=4, use_bias=False)
    x = _normal(2, 5, 8)
    layer(x)
    layer.quantize("int8")
    int8_out = layer(x).numpy()
    layer.enable_lora(4, kernels=["query_kernel", "key_kernel", "value_kernel", "output_kernel"])
    assert all("lora" in v.name for v in layer.trainable_variables)
    assert len(layer.trainable_variables) == 8
    before = _snapshot(layer)
    _train(layer, x)
    after = _snapshot(layer)
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    assert changed == {v.path for v in layer.trainable_variables}  # int8 kernels and scales fixed
    adapted = layer(x).numpy()
    assert np.abs(adapted - int8_out).max() > 1e-3
    layer.merge_lora()
    assert layer.query_kernel.dtype == "int8" and not layer.lora_weights()
    merged = layer(x).numpy()
    # Requantizing moves the result by the rounding only.
    assert np.abs(merged - adapted).max() < 0.05 * np.abs(adapted).max()


def test_lora_rejects_bad_arguments():
    layer = Dense(3)
    with pytest.raises(ValueError, match="build the layer"):
        layer.enable_lora(2)
    layer.build((None, 4))
    with pytest.raises(ValueError, match="positive integer"):
        layer.enable_lora(0)
    with pytest.raises(ValueError, match="no kernels"):
        layer.enable_lora(2, kernels=["query_kernel"])
    layer = Dense(3)
    layer.build((None, 4))
    layer.enable_lora(2)
    with pytest.raises(ValueError, match="already enabled"):
        layer.enable_lora(2)
