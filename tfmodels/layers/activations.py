"""Activation names used by Google / Hugging Face BERT configs, mapped to Keras."""

import keras

from tfmodels.ops import gelu


def get_activation(name):
    """Maps activation names used by Google/HF BERT configs to Keras activations.

    ``"gelu"`` is the exact erf form (BERT, HF ``gelu``; ``tfmodels.ops.gelu``, whose gradient is
    one elementwise pass); ``"gelu_approximate"`` / HF ``gelu_new`` /
    ``gelu_pytorch_tanh`` are the tanh approximation.
    """
    if callable(name):
        return name
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
