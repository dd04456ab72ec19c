"""TensorFlow ops that keep XLA-on-CPU training fast without changing the math."""

from tfmodels.ops.bias import add_bias, scale_and_shift
from tfmodels.ops.dropout import dropout, dropout_with_seed_generator
from tfmodels.ops.embedding import embedding_lookup
from tfmodels.ops.gelu import gelu
from tfmodels.ops.matmul import matmul_last_axis

__all__ = ["add_bias", "dropout", "dropout_with_seed_generator", "embedding_lookup", "gelu", "matmul_last_axis", "scale_and_shift"]
