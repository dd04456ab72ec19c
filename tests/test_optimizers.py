"""The fine-tuning optimizer: the warmup/decay schedule and BERT's weight-decay exclusions."""

import keras
import numpy as np
import pytest

from tfmodels.optimizers import LinearWarmupDecay, fine_tuning_optimizer


def test_schedule_rises_then_falls_linearly_and_round_trips():
    schedule = LinearWarmupDecay(2e-4, total_steps=50, warmup_steps=10)
    rates = np.array([float(schedule(step)) for step in range(0, 60)])
    np.testing.assert_allclose(rates[:11], 2e-4 * np.arange(11) / 10, rtol=1e-6)
    np.testing.assert_allclose(rates[10:51], 2e-4 * (50 - np.arange(10, 51)) / 40, rtol=1e-5, atol=1e-12)
    assert (rates[50:] == 0).all()
    restored = LinearWarmupDecay.from_config(schedule.get_config())
    assert [float(restored(s)) for s in (3, 30)] == [float(schedule(s)) for s in (3, 30)]
    assert float(LinearWarmupDecay(1e-3, total_steps=5)(0)) == pytest.approx(1e-3)  # no warmup
    with pytest.raises(ValueError, match="warmup_steps=9, total_steps=5"):
        LinearWarmupDecay(1e-3, total_steps=5, warmup_steps=9)


def test_weight_decay_spares_biases_and_norms():
    layer = keras.layers.Dense(3, bias_initializer="ones")
    norm = keras.layers.LayerNormalization()
    layer.build((None, 4))
    norm.build((None, 3))
    variables = layer.trainable_variables + norm.trainable_variables
    before = [v.numpy().copy() for v in variables]
    optimizer = fine_tuning_optimizer(0.1, total_steps=1, warmup_fraction=0.0, weight_decay=0.5)
    optimizer.apply([keras.ops.zeros_like(v) for v in variables], variables)  # zero gradients: decay only
    after = dict(zip([v.path for v in variables], [v.numpy() for v in variables]))
    changed = {path for (path, value), old in zip(after.items(), before) if not np.allclose(value, old)}
    assert changed == {layer.kernel.path}  # kernel *= 1 - lr * decay; bias, gamma, beta untouched
    np.testing.assert_allclose(after[layer.kernel.path], before[0] * (1 - 0.1 * 0.5), rtol=1e-6)
    with pytest.raises(ValueError, match="warmup_fraction"):
        fine_tuning_optimizer(1e-4, 10, warmup_fraction=1.5)
