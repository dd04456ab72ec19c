"""Dropout that draws raw random bits (cheaper under XLA on CPU than Keras' float draws)."""

import keras

from tfmodels.ops import dropout_with_seed_generator


@keras.saving.register_keras_serializable(package="tfmodels")
class Dropout(keras.layers.Layer):
    """Same contract as ``keras.layers.Dropout``: active only when ``training`` is true.

    Args:
        rate: fraction of units to drop, in [0, 1).
        seed: optional int seed for reproducible masks.

    Example:
    >>> x = keras.ops.ones((2, 1000))
    >>> y = Dropout(0.5, seed=1)(x, training=True)
    >>> 0.4 < float(keras.ops.mean(keras.ops.cast(y == 0, "float32"))) < 0.6
    True
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if rate > 0 else None
        self.built = True

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        return dropout_with_seed_generator(x, self.rate, self.seed_generator)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
