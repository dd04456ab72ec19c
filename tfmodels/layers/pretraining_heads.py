"""BERT pretraining heads: masked language model (tied to the token embedding) and next sentence."""

import keras
from keras import ops

from tfmodels.layers.activations import get_activation
from tfmodels.layers.dense import Dense
from tfmodels.layers.embedding import embedding_table
from tfmodels.layers.layer_norm import LayerNorm


@keras.saving.register_keras_serializable(package="tfmodels")
class MaskedLMHead(keras.layers.Layer):
    """Predicts the tokens at masked positions: gather, dense + activation + LayerNorm, then a
    projection onto the vocabulary that reuses the token embedding matrix (weight tying).

    Args:
        token_embedding: the ``keras.layers.Embedding`` whose matrix is tied to the output
            projection. Not serialized: the owning model passes it again when rebuilt.
        activation: activation of the transform layer (``"gelu"`` in BERT).
        layer_norm_epsilon: LayerNorm epsilon.
        kernel_initializer: initializer for the transform kernel.

    Call args:
        sequence_output: ``[batch, length, hidden]``.
        masked_positions: ``[batch, num_predictions]`` int positions to predict.

    Returns:
        ``[batch, num_predictions, vocab_size]`` logits (float32).

    Example:
    >>> emb = keras.layers.Embedding(50, 8); emb.build((None,))
    >>> head = MaskedLMHead(emb)
    >>> head(keras.ops.ones((2, 5, 8)), keras.ops.zeros((2, 3), "int32")).shape
    TensorShape([2, 3, 50])
    """

    def __init__(
        self,
        token_embedding=None,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.token_embedding = token_embedding
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, sequence_output_shape, masked_positions_shape=None):
        if self.token_embedding is None:
            raise ValueError(
                "MaskedLMHead needs the token_embedding layer whose weights it ties to."
            )
        hidden = sequence_output_shape[-1]
        self.transform = Dense(
            hidden,
            activation=get_activation(self.activation),
            kernel_initializer=self.kernel_initializer,
            name="transform",
            dtype=self.dtype_policy,
        )
        self.transform.build((None, None, hidden))
        self.layer_norm = LayerNorm(
            epsilon=self.layer_norm_epsilon, name="layer_norm", dtype=self.dtype_policy
        )
        self.layer_norm.build((None, None, hidden))
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.token_embedding.input_dim,), initializer="zeros"
        )
        self.built = True

    def call(self, sequence_output, masked_positions):
        gathered = ops.take_along_axis(
            sequence_output, ops.cast(masked_positions, "int32")[:, :, None], axis=1
        )
        h = self.layer_norm(self.transform(gathered))
        table = embedding_table(self.token_embedding, h.dtype)
        logits = ops.einsum("bph,vh->bpv", h, table)
        return ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")

    def compute_output_shape(self, sequence_output_shape, masked_positions_shape):
        return tuple(masked_positions_shape) + (self.token_embedding.input_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tfmodels")
class NextSentenceHead(keras.layers.Layer):
    """Two-way logits "B follows A" / "B is random" from the pooled output.

    Args:
        kernel_initializer: initializer for the kernel.

    Example:
    >>> NextSentenceHead()(keras.ops.ones((2, 8))).shape
    TensorShape([2, 2])
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, pooled_shape):
        self.dense = Dense(
            2, kernel_initializer=self.kernel_initializer, name="dense", dtype=self.dtype_policy
        )
        self.dense.build(pooled_shape)
        self.built = True

    def call(self, pooled_output):
        return ops.cast(self.dense(pooled_output), "float32")

    def compute_output_shape(self, pooled_shape):
        return (pooled_shape[0], 2)

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        return config
