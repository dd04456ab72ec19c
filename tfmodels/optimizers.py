"""The fine-tuning optimizer of BERT: AdamW with linear warmup, linear decay and no decay on norms/biases."""

import keras
from keras import ops

# BERT's AdamWeightDecay leaves LayerNorm parameters and biases out of the weight decay
# (google-research/bert optimization.py); Keras matches these substrings against variable names.
NO_WEIGHT_DECAY = ("gamma", "beta", "bias")


@keras.saving.register_keras_serializable(package="tfmodels")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly from 0 to ``learning_rate`` over ``warmup_steps``, then falls linearly to 0 at
    ``total_steps`` (the schedule of BERT's ``run_classifier.py`` / ``run_squad.py``).

    Without the warmup, post-LN encoders fine-tuned at 1e-4 and above often stall on the label prior
    (a tagger that predicts ``O`` everywhere) or diverge.

    Args:
        learning_rate: the peak rate, reached at ``warmup_steps``.
        total_steps: the step where the rate reaches 0 (it stays 0 after).
        warmup_steps: steps of linear warmup.

    Example:
    >>> schedule = LinearWarmupDecay(1e-4, total_steps=100, warmup_steps=10)
    >>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 55, 100, 150)]
    [0.0, 5e-05, 0.0001, 5e-05, 0.0, 0.0]
    """

    def __init__(self, learning_rate, total_steps, warmup_steps=0):
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, got "
                             f"warmup_steps={warmup_steps}, total_steps={total_steps}")
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        rising = step / warmup
        falling = (self.total_steps - step) / float(max(self.total_steps - self.warmup_steps, 1))
        fraction = ops.where(step < self.warmup_steps, rising, falling)
        return self.learning_rate * ops.clip(fraction, 0.0, 1.0)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def fine_tuning_optimizer(learning_rate, total_steps, warmup_fraction=0.1, weight_decay=0.01):
    """AdamW on ``LinearWarmupDecay`` (warmup over ``warmup_fraction`` of the steps), weight decay
    on kernels and embeddings only, as BERT fine-tunes.

    Args:
        learning_rate: peak learning rate.
        total_steps: optimizer steps of the whole run (epochs x batches per epoch).
        warmup_fraction: share of the steps spent warming up.
        weight_decay: decoupled weight decay (AdamW).

    Example:
    >>> optimizer = fine_tuning_optimizer(5e-5, total_steps=1000)
    >>> float(optimizer.learning_rate)  # step 0: the warmup starts from zero
    0.0
    """
    if not 0.0 <= warmup_fraction <= 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1], got {warmup_fraction}")
    total_steps = max(int(total_steps), 1)
    schedule = LinearWarmupDecay(learning_rate, total_steps, int(total_steps * warmup_fraction))
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer
