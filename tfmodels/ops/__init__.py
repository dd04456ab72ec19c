"""TensorFlow ops that keep XLA-on-CPU training fast without changing the math."""

from tfmodels.ops.bias import add_bias, scale_and_shift
from tfmodels.ops.dropout import dropout

__all__ = ["add_bias", "dropout", "scale_and_shift"]
