"""Initializers handed down to sublayers."""

import keras


def clone_initializer(initializer):
    """A new instance of ``initializer`` with the same config, for one weight.

    Keras 3 initializers draw their seed when constructed, so one unseeded instance used for two
    weights gives both the same values (every BERT block would start identical, query kernels
    equal to key kernels). Each weight gets its own clone; an explicitly seeded initializer stays
    reproducible. Strings and callables are returned as they are.

    Example:
    >>> init = keras.initializers.RandomNormal(stddev=0.02)
    >>> clone = clone_initializer(init)
    >>> clone is init, clone.get_config() == init.get_config()
    (False, True)
    """
    if not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    return initializer.__class__.from_config(initializer.get_config())
