"""Keras callbacks for long runs."""

import time
from typing import Callable, Optional

import keras


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressLogger(keras.callbacks.Callback):
    """Prints a progress line during `fit`: step, loss (and other metrics), steps/s, ETA.

    A line every `every_steps` steps or whenever `every_seconds` passed since the last one (at the end of a
    step), and one at the end of each epoch with its validation metrics. Use it with `fit(verbose=0)`, in place
    of Keras' per-epoch line, so a long epoch is not minutes of silence.

    Args:
        every_seconds: the longest time between two lines.
        every_steps: also print every this many steps (None: time only).
        total_steps: steps of the whole run, for the ETA (None: `fit`'s steps per epoch x epochs).
        prefix: put in front of every line, e.g. "Trainer: ".
        print_fn: where the lines go (default: `print`, flushed).

    Example:
    >>> import numpy as np
    >>> lines = []
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> _ = model.fit(np.zeros((8, 2)), np.zeros((8, 1)), batch_size=2, verbose=0,
    ...               callbacks=[ProgressLogger(every_steps=2, print_fn=lines.append)])
    >>> lines[0].startswith("step 2/4")
    True
    """

    def __init__(self, every_seconds: float = 30.0, every_steps: Optional[int] = None,
                 total_steps: Optional[int] = None, prefix: str = "",
                 print_fn: Optional[Callable[[str], None]] = None):
        super().__init__()
        if every_seconds < 0 or (every_steps is not None and every_steps < 1):
            raise ValueError(f"every_seconds must be >= 0 and every_steps >= 1 or None; got "
                             f"every_seconds={every_seconds}, every_steps={every_steps}")
        self.every_seconds, self.every_steps = every_seconds, every_steps
        self.total_steps, self.prefix = total_steps, prefix
        self.print_fn = print_fn or (lambda line: print(line, flush=True))

    def get_config(self):
        return {"every_seconds": self.every_seconds, "every_steps": self.every_steps,
                "total_steps": self.total_steps, "prefix": self.prefix}

    def on_train_begin(self, logs=None):
        params = self.params or {}
        if self.total_steps is None and params.get("steps"):
            self.total_steps = params["steps"] * params.get("epochs", 1)
        self.step = 0
        self.start = self._last_time = time.monotonic()
        self._last_step = 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        now = time.monotonic()
        due = (self.every_steps and self.step % self.every_steps == 0) or now - self._last_time >= self.every_seconds
        if due or self.step == self.total_steps:
            self._print_step(now, logs or {})

    def _print_step(self, now: float, logs) -> None:
        rate = (self.step - self._last_step) / max(now - self._last_time, 1e-9)
        total = f"/{self.total_steps}" if self.total_steps else ""
        parts = [f"step {self.step}{total}"] + [f"{name} {float(value):.4f}" for name, value in logs.items()]
        parts.append(f"{rate:.2f} steps/s")
        if self.total_steps:
            overall = self.step / max(now - self.start, 1e-9)  # includes compiling: a cautious ETA
            parts.append(f"ETA {_duration((self.total_steps - self.step) / max(overall, 1e-9))}")
        self.print_fn(self.prefix + "  ".join(parts))
        self._last_time, self._last_step = now, self.step

    def on_epoch_end(self, epoch, logs=None):
        metrics = "  ".join(f"{name} {float(value):.4f}" for name, value in (logs or {}).items())
        self.print_fn(f"{self.prefix}epoch {epoch + 1} done at step {self.step}, "
                      f"{_duration(time.monotonic() - self.start)} elapsed: {metrics}")
