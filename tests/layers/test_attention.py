import keras
import numpy as np
import pytest

from tfmodels.layers import MultiHeadAttention, make_attention_mask, make_causal_mask, merge_masks


def _x(batch=2, length=6, dim=16, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, dim)).astype("float32")


def _reference_attention(layer, query, value, mask):
    """Plain numpy multi-head attention with the layer's weights."""

    def proj(x, kernel, bias):
        return np.einsum("btd,dnh->btnh", x, kernel) + bias

    q = proj(query, layer.query_kernel.numpy(), layer.query_bias.numpy())
    k = proj(value, layer.key_kernel.numpy(), layer.key_bias.numpy())
    v = proj(value, layer.value_kernel.numpy(), layer.value_bias.numpy())
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(layer.key_dim)
    if mask is not None:
        logits = np.where(mask[:, None].astype(bool), logits, -1e9)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    ctx = np.einsum("bnts,bsnh->btnh", probs, v)
    return np.einsum("btnh,nhd->btd", ctx, layer.output_kernel.numpy()) + layer.output_bias.numpy()


def test_self_attention_matches_numpy_reference():
    layer = MultiHeadAttention(num_heads=4, key_dim=4)
    x = _x()
    mask = np.asarray(
        make_attention_mask(
            key_padding_mask=np.array([[1] * 6, [1, 1, 1, 0, 0, 0]]), query_length=6
        )
    )
    out = layer(x, attention_mask=mask)
    np.testing.assert_allclose(out, _reference_attention(layer, x, x, mask), atol=1e-5)


def test_cross_attention_matches_numpy_reference():
    layer = MultiHeadAttention(num_heads=2, key_dim=8, output_dim=12)
    q, v = _x(length=3), _x(length=5, seed=1)
    out = layer(q, v)
    assert out.shape == (2, 3, 12)
    np.testing.assert_allclose(out, _reference_attention(layer, q, v, None), atol=1e-5)


def test_padded_keys_do_not_change_outputs():
    layer = MultiHeadAttention(num_heads=2, key_dim=8)
    x = _x()
    pad = np.array([[1, 1, 1, 1, 0, 0], [1] * 6])
    mask = make_attention_mask(key_padding_mask=pad, query_length=6)
    changed = x.copy()
    changed[0, 4:] = 100.0  # garbage in padded positions
    a, b = layer(x, attention_mask=mask), layer(changed, attention_mask=mask)
    np.testing.assert_allclose(np.asarray(a)[0, :4], np.asarray(b)[0, :4], atol=1e-5)
    # And the mask matters: without it the real positions change.
    c, d = layer(x), layer(changed)
    assert np.abs(np.asarray(c)[0, :4] - np.asarray(d)[0, :4]).max() > 1e-2


def test_causal_mask_blocks_future_positions():
    layer = MultiHeadAttention(num_heads=2, key_dim=8)
    x = _x()
    mask = make_causal_mask(6)
    base = np.asarray(layer(x, attention_mask=mask))
    changed = x.copy()
    changed[:, 4:] = -50.0
    after = np.asarray(layer(changed, attention_mask=mask))
    np.testing.assert_allclose(base[:, :4], after[:, :4], atol=1e-5)
    assert np.abs(base[:, 4:] - after[:, 4:]).max() > 1e-2


def test_incremental_decoding_with_cache_equals_full_causal_attention():
    layer = MultiHeadAttention(num_heads=2, key_dim=8)
    x = _x(length=5)
    full = np.asarray(layer(x, attention_mask=make_causal_mask(5)))
    cache = np.zeros((2, 2, 5, 2, 8), "float32")
    steps = []
    for t in range(5):
        step_mask = make_causal_mask(1, 5, start_index=t)
        out, cache = layer(
            x[:, t : t + 1], attention_mask=step_mask, cache=cache, cache_update_index=t
        )
        steps.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_precomputed_cross_attention_cache():
    layer = MultiHeadAttention(num_heads=2, key_dim=8)
    q, v = _x(length=2), _x(length=4, seed=3)
    direct = np.asarray(layer(q, v))
    cache = layer.compute_key_value(v)
    cached, same_cache = layer(q, cache=cache)
    np.testing.assert_allclose(np.asarray(cached), direct, atol=1e-5)
    assert same_cache is cache


def test_merge_masks_and_config_round_trip():
    mask = merge_masks(make_causal_mask(3), None, np.array([[[1, 1, 0]] * 3]))
    np.testing.assert_array_equal(np.asarray(mask)[0], [[1, 0, 0], [1, 1, 0], [1, 1, 0]])
    layer = MultiHeadAttention(num_heads=3, key_dim=5, value_dim=7, dropout=0.2, use_bias=False)
    clone = MultiHeadAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_attention_is_finite(policy):
    layer = MultiHeadAttention(num_heads=2, key_dim=8, dtype=policy)
    out = layer(_x(), attention_mask=make_causal_mask(6))
    assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]
    assert np.isfinite(np.asarray(out, dtype="float32")).all()
