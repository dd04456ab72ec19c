"""Activation names used by Google / Hugging Face BERT configs, mapped to Keras."""

import keras

from tfmodels.ops import gelu


def serialize_activation(activation):
    """What ``get_config`` stores for an activation: the name as given, or a callable serialized.

    ``get_activation`` reads both back, so every layer here round-trips activations the same way.
    """
    if activation is None or isinstance(activation, str):
        return activation
    return keras.saving.serialize_keras_object(activation)


def get_activation(name):
    """Maps activation names used by Google/HF BERT configs to Keras activations.

    ``"gelu"`` is the exact erf form (BERT, HF ``gelu``; ``tfmodels.ops.gelu``, whose gradient is
    one elementwise pass); ``"gelu_approximate"`` / HF ``gelu_new`` /
    ``gelu_pytorch_tanh`` are the tanh approximation.

    Example:
    >>> float(get_activation("relu")(keras.ops.convert_to_tensor(-1.0)))
    0.0
    """
    if callable(name):
        return name
    if isinstance(name, dict):  # a serialized callable, see serialize_activation
        return keras.saving.deserialize_keras_object(name)
    aliases = {
        "gelu": gelu,
        "gelu_approximate": lambda x: keras.activations.gelu(x, approximate=True),
        "gelu_new": lambda x: keras.activations.gelu(x, approximate=True),
        "gelu_pytorch_tanh": lambda x: keras.activations.gelu(x, approximate=True),
        "gelu_fast": lambda x: keras.activations.gelu(x, approximate=True),
        "swish": keras.activations.silu,
        "silu": keras.activations.silu,
    }
    if name in aliases:
        return aliases[name]
    return keras.activations.get(name)
