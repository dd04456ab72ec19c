"""tfmodels.callbacks.ProgressLogger: progress lines during fit, by steps and by time."""

import re

import keras
import numpy as np
import pytest

from tfmodels.callbacks import ProgressLogger

LINE = re.compile(r"step (\d+)/(\d+)  loss (\S+)  (\S+) steps/s  ETA (\d+:\d\d)$")


def _fit(callback, steps=6, epochs=1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = np.random.default_rng(0).normal(size=(steps * 2, 3)).astype("float32")
    return model.fit(x, x.sum(axis=1, keepdims=True), batch_size=2, epochs=epochs, verbose=0,
                     callbacks=[callback])


def test_lines_every_n_steps_with_loss_rate_and_eta():
    lines = []
    history = _fit(ProgressLogger(every_seconds=3600, every_steps=2, print_fn=lines.append), steps=6, epochs=2)
    steps = [LINE.match(line) for line in lines if line.startswith("step")]
    assert all(steps), lines
    assert [int(m.group(1)) for m in steps] == [2, 4, 6, 8, 10, 12]
    assert {int(m.group(2)) for m in steps} == {12}
    assert all(float(m.group(4)) > 0 for m in steps)
    assert steps[-1].group(5) == "0:00"
    # The last line of each epoch carries the epoch's loss as fit reports it.
    epoch_lines = [line for line in lines if line.startswith("epoch")]
    assert len(epoch_lines) == 2 and "done at step 12" in epoch_lines[1]
    assert float(steps[-1].group(3)) == pytest.approx(history.history["loss"][-1], rel=1e-3)


def test_time_based_lines_when_steps_are_slow():
    lines = []
    _fit(ProgressLogger(every_seconds=0, print_fn=lines.append), steps=3)
    assert [line.split()[1] for line in lines if line.startswith("step")] == ["1/3", "2/3", "3/3"]


def test_only_the_last_step_when_nothing_is_due_and_bad_arguments():
    lines = []
    _fit(ProgressLogger(every_seconds=3600, prefix="Trainer: ", print_fn=lines.append), steps=4)
    assert [line for line in lines if "step 4/4" in line][0].startswith("Trainer: step 4/4")
    assert len(lines) == 2  # the last step and the epoch
    with pytest.raises(ValueError, match="every_steps=0"):
        ProgressLogger(every_steps=0)
