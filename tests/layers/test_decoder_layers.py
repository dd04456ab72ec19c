"""The Llama-family layers: RMSNorm, rotary positions, grouped-query attention, SwiGLU."""

import numpy as np
import pytest
from testlib import run_layer_test

from tfmodels import layers as L
from tfmodels.layers import make_attention_mask, make_causal_mask, merge_masks

RNG = np.random.default_rng(0)


def _normal(*shape):
    return RNG.normal(size=shape).astype("float32")


def _numpy_rotary(x, positions, base):
    """Hugging Face Llama's rotate_half RoPE, written out for one [batch, length, heads, dim]."""
    dim = x.shape[-1]
    inv = 1.0 / base ** (np.arange(0, dim, 2) / dim)
    angles = np.asarray(positions, "float64")[..., None] * inv
    angles = np.concatenate([angles, angles], -1)[:, :, None, :]
    rotated = np.concatenate([-x[..., dim // 2:], x[..., : dim // 2]], -1)
    return x * np.cos(angles) + rotated * np.sin(angles)


def _numpy_gqa(layer, x, mask, positions):
    """Grouped-query attention the Hugging Face way: repeat each key/value head (repeat_kv)."""
    q = np.einsum("btd,dnh->btnh", x, layer.query_kernel.numpy())
    k = np.einsum("btd,dnh->btnh", x, layer.key_kernel.numpy())
    v = np.einsum("btd,dnh->btnh", x, layer.value_kernel.numpy())
    if layer.rope_max_wavelength is not None:
        q = _numpy_rotary(q, positions, layer.rope_max_wavelength)
        k = _numpy_rotary(k, positions, layer.rope_max_wavelength)
    groups = layer.num_heads // layer.num_key_value_heads
    k, v = np.repeat(k, groups, axis=2), np.repeat(v, groups, axis=2)
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(layer.key_dim)
    logits = np.where(mask[:, None], logits, -1e9)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = np.einsum("bnts,bsnh->btnh", probs, v)
    return np.einsum("btnh,nhd->btd", context, layer.output_kernel.numpy())


def test_rms_norm_matches_formula_and_harness():
    x = _normal(2, 3, 8)
    layer = run_layer_test(L.RMSNorm, {"epsilon": 1e-5}, x, expected_output_shape=(2, 3, 8),
                           expected_num_trainable_weights=1)
    layer.scale.assign(np.arange(1, 9, dtype="float32"))
    expected = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-5) * np.arange(1, 9)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_rotary_matches_hugging_face_rotate_half_and_keeps_norms():
    x = _normal(2, 5, 3, 8)
    positions = np.array([[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]])
    out = run_layer_test(L.RotaryEmbedding, {"max_wavelength": 100.0}, x,
                         expected_output_shape=(2, 5, 3, 8), run_training_check=False)  # no weights
    rotated = np.asarray(out(x, positions=positions))
    np.testing.assert_allclose(rotated, _numpy_rotary(x, positions, 100.0), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    # Linear scaling: position p with factor 2 is position p / 2 unscaled.
    scaled = L.apply_rotary(x, np.arange(5) * 2, 100.0, scaling_factor=2.0)
    np.testing.assert_allclose(scaled, L.apply_rotary(x, np.arange(5), 100.0), atol=1e-5)
    # Default positions continue from start_index.
    np.testing.assert_allclose(out(x[:, 2:], start_index=2), np.asarray(out(x))[:, 2:], atol=1e-5)
    with pytest.raises(ValueError, match="scaling_factor"):
        L.RotaryEmbedding(scaling_factor=0)


def test_rotary_scores_depend_only_on_relative_position():
    q, k = _normal(1, 1, 1, 8), _normal(1, 1, 1, 8)

    def score(i, j):
        return float(np.sum(L.apply_rotary(q, [i], 1e4) * L.apply_rotary(k, [j], 1e4)))

    assert score(3, 1) == pytest.approx(score(10, 8), abs=1e-4)
    assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-3)


def test_gated_feed_forward_is_swiglu():
    x = _normal(2, 4, 8)
    layer = run_layer_test(L.GatedFeedForward, {"intermediate_size": 16}, x,
                           expected_output_shape=(2, 4, 8), expected_num_trainable_weights=3)
    gate, up = x @ layer.gate_dense.kernel.numpy(), x @ layer.up_dense.kernel.numpy()
    expected = (gate / (1 + np.exp(-gate)) * up) @ layer.down_dense.kernel.numpy()
    np.testing.assert_allclose(layer(x), expected, rtol=1e-4, atol=1e-5)


GQA = {"num_heads": 4, "key_dim": 8, "num_key_value_heads": 2, "use_bias": False,
       "rope_max_wavelength": 10000.0}


def test_grouped_query_attention_harness():
    x = _normal(2, 5, 16)
    layer = run_layer_test(L.MultiHeadAttention, GQA, x, expected_output_shape=(2, 5, 16),
                           expected_num_trainable_weights=4, atol=1e-5)
    assert layer.key_kernel.shape == (16, 2, 8) and layer.query_kernel.shape == (16, 4, 8)


@pytest.mark.parametrize("kv_heads, rope", [(2, 10000.0), (1, None), (4, 500.0)])
def test_grouped_query_attention_matches_repeated_key_value_reference(kv_heads, rope):
    layer = L.MultiHeadAttention(num_heads=4, key_dim=8, num_key_value_heads=kv_heads,
                                 use_bias=False, rope_max_wavelength=rope)
    x = _normal(2, 6, 16)
    padding = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])  # row 0 left-padded
    positions = np.maximum(np.cumsum(padding, axis=1) - 1, 0)
    mask = np.asarray(merge_masks(make_causal_mask(6), make_attention_mask(
        key_padding_mask=padding, query_length=6)))
    out = np.asarray(layer(x, attention_mask=mask, positions=positions))
    reference = _numpy_gqa(layer, x, mask, positions)
    np.testing.assert_allclose(out[0, 2:], reference[0, 2:], atol=1e-5)
    np.testing.assert_allclose(out[1], reference[1], atol=1e-5)


def test_grouped_query_cache_holds_key_value_heads_and_decodes_like_the_full_pass():
    layer = L.MultiHeadAttention(**GQA)
    x = _normal(2, 5, 16)
    full = np.asarray(layer(x, attention_mask=make_causal_mask(5)))
    # Prefill 3 positions in one call, then one position per call.
    cache = np.zeros((2, 2, 5, 2, 8), "float32")
    out, cache = layer(x[:, :3], attention_mask=make_causal_mask(3, 5), cache=cache,
                       cache_update_index=0)
    steps = [np.asarray(out)]
    for t in (3, 4):
        out, cache = layer(x[:, t:t + 1], attention_mask=make_causal_mask(1, 5, start_index=t),
                           cache=cache, cache_update_index=t)
        steps.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_grouped_query_attention_config_checks():
    with pytest.raises(ValueError, match="multiple of num_key_value_heads"):
        L.MultiHeadAttention(num_heads=4, key_dim=8, num_key_value_heads=3)
    with pytest.raises(ValueError, match="even key_dim"):
        L.MultiHeadAttention(num_heads=2, key_dim=7, rope_max_wavelength=1e4)
    plain = L.MultiHeadAttention(num_heads=2, key_dim=8).get_config()
    assert "num_key_value_heads" not in plain and "rope_max_wavelength" not in plain
