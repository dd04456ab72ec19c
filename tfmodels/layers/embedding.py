"""Input embeddings for Transformer stacks: token + optional segment + position."""

import keras
from keras import ops

from tfmodels.layers.dropout import Dropout
from tfmodels.layers.initializers import clone_initializer
from tfmodels.layers.layer_norm import LayerNorm
from tfmodels.layers.position import PositionEmbedding, SinusoidalPositionEncoding
from tfmodels.ops import embedding_lookup
from tfmodels.ops.int8 import dequantize


def embedding_table(embedding, dtype):
    """The ``[input_dim, output_dim]`` table of a ``keras.layers.Embedding`` in float ``dtype``,
    dequantized when the layer is int8 (Keras' ``embeddings`` is then the int8 table): what a tied
    output projection multiplies by."""
    if embedding.quantization_mode == "int8":
        # Keras' int8 convention: q = round(table * scale), one scale per row.
        return dequantize(embedding._embeddings, 1.0 / embedding.embeddings_scale[:, None], dtype)
    return ops.cast(embedding.embeddings, dtype)


@keras.saving.register_keras_serializable(package="tfmodels")
class TokenEmbedding(keras.layers.Embedding):
    """``keras.layers.Embedding`` (same arguments, weights and config) whose table gradient is
    dense, built once in the backward pass (see ``tfmodels.ops.embedding_lookup``): Keras' Adam and
    AdamW would otherwise densify the sparse gradient once per moment. ``quantize("int8")`` (and
    so ``keras.Model.quantize``) stores the table as int8 with one scale per row, as Keras'
    ``Embedding`` does; ``embedding_table`` reads the float table either way.

    Args:
        input_dim, output_dim, embeddings_initializer, ...: those of ``keras.layers.Embedding``.

    Example:
    >>> TokenEmbedding(10, 4)(keras.ops.ones((2, 3), "int32")).shape
    TensorShape([2, 3, 4])
    """

    def call(self, inputs):
        if getattr(self, "lora_enabled", False) or getattr(self, "quantization_mode", None):
            return super().call(inputs)
        ids = ops.cast(inputs, "int32") if inputs.dtype not in ("int32", "int64") else inputs
        return ops.cast(embedding_lookup(self.embeddings, ids), self.compute_dtype)

    def quantize(self, mode, type_check=True, config=None):
        # Keras' Embedding refuses subclasses unless told otherwise; this one keeps its variables.
        super().quantize(mode, type_check=False, config=config)


@keras.saving.register_keras_serializable(package="tfmodels")
class TransformerEmbedding(keras.layers.Layer):
    """Token, segment and position embeddings, summed, then optional LayerNorm and dropout.

    BERT uses learned positions, two segments, LayerNorm and dropout. The original Transformer uses
    sinusoidal positions, no segments, no LayerNorm, and scales token embeddings by ``sqrt(dim)``.

    Args:
        vocab_size: size of the token vocabulary.
        hidden_size: embedding width.
        max_sequence_length: largest position (learned positions only).
        type_vocab_size: number of segment types; 0 for none.
        position_encoding: ``"learned"``, ``"sinusoidal"`` or ``None``.
        scale_embeddings: multiply token embeddings by ``sqrt(hidden_size)``.
        use_layer_norm: apply LayerNorm to the sum.
        layer_norm_epsilon: LayerNorm epsilon.
        dropout: dropout rate on the output.
        initializer: initializer for the embedding tables.

    Call args:
        token_ids: ``[batch, length]`` int.
        segment_ids: ``[batch, length]`` int; required when ``type_vocab_size > 0``.
        start_index: position of the first token (cached decoding).

    Example:
    >>> layer = TransformerEmbedding(vocab_size=100, hidden_size=8, max_sequence_length=16)
    >>> layer(keras.ops.ones((2, 5), "int32")).shape
    TensorShape([2, 5, 8])
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        max_sequence_length=512,
        type_vocab_size=0,
        position_encoding="learned",
        scale_embeddings=False,
        use_layer_norm=True,
        layer_norm_epsilon=1e-12,
        dropout=0.0,
        initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if position_encoding not in ("learned", "sinusoidal", None):
            raise ValueError(
                f"position_encoding must be 'learned', 'sinusoidal' or None, got {position_encoding!r}"
            )
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_sequence_length = max_sequence_length
        self.type_vocab_size = type_vocab_size
        self.position_encoding = position_encoding
        self.scale_embeddings = scale_embeddings
        self.use_layer_norm = use_layer_norm
        self.layer_norm_epsilon = layer_norm_epsilon
        self.dropout = dropout
        self.initializer = keras.initializers.get(initializer)

        self.token_embedding = TokenEmbedding(
            vocab_size,
            hidden_size,
            embeddings_initializer=clone_initializer(self.initializer),
            name="token_embedding",
            dtype=self.dtype_policy,
        )
        self.segment_embedding = None
        if type_vocab_size:
            self.segment_embedding = keras.layers.Embedding(
                type_vocab_size,
                hidden_size,
                embeddings_initializer=clone_initializer(self.initializer),
                name="segment_embedding",
                dtype=self.dtype_policy,
            )
        self.position_layer = None
        if position_encoding == "learned":
            self.position_layer = PositionEmbedding(
                max_sequence_length,
                initializer=self.initializer,  # cloned in PositionEmbedding.build
                name="position_embedding",
                dtype=self.dtype_policy,
            )
        elif position_encoding == "sinusoidal":
            self.position_layer = SinusoidalPositionEncoding(
                name="position_encoding", dtype=self.dtype_policy
            )
        self.layer_norm = None
        if use_layer_norm:
            self.layer_norm = LayerNorm(
                epsilon=layer_norm_epsilon, name="layer_norm", dtype=self.dtype_policy
            )
        self.dropout_layer = Dropout(dropout, dtype=self.dtype_policy)

    def build(self, token_ids_shape, segment_ids_shape=None):
        self.token_embedding.build(token_ids_shape)
        embedded_shape = tuple(token_ids_shape) + (self.hidden_size,)
        if self.segment_embedding is not None:
            self.segment_embedding.build(token_ids_shape)
        if self.position_layer is not None:
            self.position_layer.build(embedded_shape)
        if self.layer_norm is not None:
            self.layer_norm.build(embedded_shape)
        self.built = True

    def call(self, token_ids, segment_ids=None, start_index=0, training=None):
        x = self.token_embedding(token_ids)
        if self.scale_embeddings:
            x = x * ops.cast(self.hidden_size**0.5, x.dtype)
        if self.segment_embedding is not None:
            if segment_ids is None:
                segment_ids = ops.zeros_like(token_ids)
            x = x + self.segment_embedding(segment_ids)
        if self.position_layer is not None:
            x = x + ops.cast(self.position_layer(x, start_index=start_index), x.dtype)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.dropout_layer(x, training=training)

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return tuple(token_ids_shape) + (self.hidden_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size,
                "max_sequence_length": self.max_sequence_length,
                "type_vocab_size": self.type_vocab_size,
                "position_encoding": self.position_encoding,
                "scale_embeddings": self.scale_embeddings,
                "use_layer_norm": self.use_layer_norm,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "dropout": self.dropout,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
