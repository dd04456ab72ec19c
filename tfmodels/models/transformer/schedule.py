"""The learning-rate schedule of "Attention is all you need"."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class InverseSqrtWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``scale * d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5)``.

    Linear warmup for ``warmup_steps`` to a peak of ``scale * (d_model * warmup_steps)^-0.5``,
    then decay with the inverse square root of the step (Vaswani et al., 2017, section 5.3).
    Steps count from 1 so that step 0 gets a small positive rate rather than zero.

    Args:
        hidden_size: ``d_model``.
        warmup_steps: steps of linear warmup (4000 in the paper).
        scale: multiplier on the whole schedule (1.0 in the paper).

    Example:
    >>> schedule = InverseSqrtWarmup(hidden_size=512, warmup_steps=4000)
    >>> round(float(schedule(3999)), 6)  # the peak
    0.000699
    """

    def __init__(self, hidden_size, warmup_steps=4000, scale=1.0):
        self.hidden_size = hidden_size
        self.warmup_steps = warmup_steps
        self.scale = scale

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        warmup = ops.cast(self.warmup_steps, "float32")
        rate = ops.minimum(ops.rsqrt(step), step * warmup**-1.5)
        return self.scale * self.hidden_size**-0.5 * rate

    def get_config(self):
        return {
            "hidden_size": self.hidden_size,
            "warmup_steps": self.warmup_steps,
            "scale": self.scale,
        }
