"""What the Transformer encoder and decoder blocks share: settings, sublayer factories, residuals."""

import keras

from tfmodels.layers.activations import serialize_activation
from tfmodels.layers.attention import MultiHeadAttention
from tfmodels.layers.dropout import Dropout
from tfmodels.layers.feed_forward import FeedForward
from tfmodels.layers.layer_norm import LayerNorm


class TransformerBlockBase(keras.layers.Layer):
    """Base of :class:`TransformerEncoderBlock` and :class:`TransformerDecoderBlock`.

    Holds the settings both blocks take (their docstrings describe them), builds their
    sublayers with the block's dtype policy, and applies a sublayer with its residual
    connection: post-LN ``LN(x + drop(f(x)))`` or pre-LN ``x + drop(f(LN(x)))``. The optional
    ``head_dim`` sets the attention head size instead of ``hidden // num_heads`` (head pruning).
    """

    # The settings whose defaults differ between the blocks (BERT's encoder vs the 2017 decoder); a
    # subclass names its own, and an argument left at None takes it.
    DEFAULTS = {}

    def __init__(
        self,
        num_heads,
        intermediate_size,
        activation=None,
        dropout=0.1,
        attention_dropout=None,
        norm_first=False,
        layer_norm_epsilon=None,
        kernel_initializer="glorot_uniform",
        head_dim=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        given = {"activation": activation, "attention_dropout": attention_dropout,
                 "layer_norm_epsilon": layer_norm_epsilon}
        settings = {name: self.DEFAULTS[name] if value is None else value for name, value in given.items()}
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.activation = settings["activation"]
        self.dropout = dropout
        self.attention_dropout = settings["attention_dropout"]
        self.norm_first = norm_first
        self.layer_norm_epsilon = settings["layer_norm_epsilon"]
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.head_dim = head_dim

    def _head_dim(self, hidden):
        if self.head_dim is not None:
            return self.head_dim
        if hidden % self.num_heads:
            raise ValueError(f"hidden size {hidden} is not divisible by num_heads={self.num_heads}")
        return hidden // self.num_heads

    def _attention(self, name, hidden):
        return MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self._head_dim(hidden),
            dropout=self.attention_dropout,
            kernel_initializer=self.kernel_initializer,
            name=name,
            dtype=self.dtype_policy,
        )

    def _norm(self, name, x_shape):
        layer = LayerNorm(epsilon=self.layer_norm_epsilon, name=name, dtype=self.dtype_policy)
        layer.build(x_shape)
        return layer

    def _feed_forward(self, x_shape):
        layer = FeedForward(
            self.intermediate_size,
            activation=self.activation,
            kernel_initializer=self.kernel_initializer,
            name="feed_forward",
            dtype=self.dtype_policy,
        )
        layer.build(x_shape)
        return layer

    def _dropout(self):
        return Dropout(self.dropout, dtype=self.dtype_policy)

    def _residual(self, x, sublayer, norm, training, shortcut=None):
        """``sublayer`` sees (the normalised) ``x``; the residual adds ``shortcut`` (default ``x``)."""
        shortcut = x if shortcut is None else shortcut
        if self.norm_first:
            return shortcut + self.dropout_layer(sublayer(norm(x)), training=training)
        return norm(shortcut + self.dropout_layer(sublayer(x), training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_size": self.intermediate_size,
                "activation": serialize_activation(self.activation),
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "norm_first": self.norm_first,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "head_dim": self.head_dim,
            }
        )
        return config
