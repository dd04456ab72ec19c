"""TransformerDecoderBlock: shapes, causal and padding masks, the key/value cache, config."""

import keras
import numpy as np
import pytest

from tfmodels.layers import TransformerDecoderBlock


def _inputs(seed=0, batch=2, target=5, source=6, hidden=16):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, target, hidden)).astype("float32")
    memory = rng.normal(size=(batch, source, hidden)).astype("float32")
    return x, memory


@pytest.mark.parametrize("norm_first", [False, True])
def test_shape_and_causality(norm_first):
    block = TransformerDecoderBlock(num_heads=4, intermediate_size=32, dropout=0.0,
                                    norm_first=norm_first)
    x, memory = _inputs()
    out = keras.ops.convert_to_numpy(block(x, memory))
    assert out.shape == x.shape
    changed = x.copy()
    changed[:, 3] += 5.0  # a future position
    out2 = keras.ops.convert_to_numpy(block(changed, memory))
    np.testing.assert_allclose(out2[:, :3], out[:, :3], atol=1e-5)
    assert not np.allclose(out2[:, 3:], out[:, 3:], atol=1e-3)


def test_padded_encoder_positions_are_ignored():
    block = TransformerDecoderBlock(num_heads=2, intermediate_size=32, dropout=0.0)
    x, memory = _inputs()
    mask = np.array([[1, 1, 1, 1, 0, 0], [1] * 6])
    out = keras.ops.convert_to_numpy(block(x, memory, encoder_padding_mask=mask))
    noisy = memory.copy()
    noisy[0, 4:] = 100.0
    out2 = keras.ops.convert_to_numpy(block(x, noisy, encoder_padding_mask=mask))
    np.testing.assert_allclose(out2, out, atol=1e-5)
    unmasked = keras.ops.convert_to_numpy(block(x, noisy))
    assert not np.allclose(unmasked[0], out[0], atol=1e-3)


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_steps_match_full_pass(norm_first):
    block = TransformerDecoderBlock(num_heads=2, intermediate_size=32, dropout=0.0,
                                    norm_first=norm_first)
    x, memory = _inputs(seed=1)
    mask = np.array([[1, 1, 1, 0, 0, 0], [1] * 6])
    full = keras.ops.convert_to_numpy(block(x, memory, encoder_padding_mask=mask))
    cache = np.zeros((2, 2, 7, 2, 8), "float32")  # room for more positions than used
    cross = block.compute_cross_attention_cache(memory)
    steps = []
    for i in range(x.shape[1]):
        out, cache = block(
            x[:, i : i + 1], encoder_padding_mask=mask, self_attention_cache=cache,
            self_attention_cache_update_index=i, cross_attention_cache=cross,
        )
        steps.append(keras.ops.convert_to_numpy(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)
    assert not np.any(keras.ops.convert_to_numpy(cache)[:, :, 5:])  # unused slots stay empty


def test_needs_memory_or_cache_and_config_round_trip():
    block = TransformerDecoderBlock(num_heads=2, intermediate_size=32, norm_first=True)
    x, _ = _inputs()
    with pytest.raises(ValueError, match="encoder_output or cross_attention_cache"):
        block(x)
    clone = TransformerDecoderBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    with pytest.raises(ValueError, match="divisible"):
        TransformerDecoderBlock(num_heads=3, intermediate_size=8).build((1, 2, 16))
