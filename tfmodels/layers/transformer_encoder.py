"""A Transformer encoder block: self-attention and feed-forward, each with a residual and LayerNorm."""

import keras

from tfmodels.layers.masking import make_attention_mask, merge_masks
from tfmodels.layers.transformer_block import TransformerBlockBase


@keras.saving.register_keras_serializable(package="tfmodels")
class TransformerEncoderBlock(TransformerBlockBase):
    """One encoder layer of BERT / "Attention is all you need".

    Post-LN (``norm_first=False``, BERT and the original paper): ``x = LN(x + drop(sublayer(x)))``.
    Pre-LN (``norm_first=True``): ``x = x + drop(sublayer(LN(x)))``, easier to train deep.

    Args:
        num_heads: attention heads; ``hidden_size`` must be divisible by it unless ``head_dim``
            is given.
        intermediate_size: feed-forward width.
        activation: feed-forward activation (``"gelu"``, ``"relu"``, ...).
        dropout: dropout on each sublayer's output.
        attention_dropout: dropout on the attention probabilities.
        norm_first: pre-LN when True, post-LN when False.
        layer_norm_epsilon: LayerNorm epsilon (1e-12 in BERT).
        kernel_initializer: initializer for all kernels.
        head_dim: size of each head (query, key and value); default ``hidden_size // num_heads``.
            Head-pruned blocks keep their original head size with fewer heads, so
            ``num_heads * head_dim`` may be less than ``hidden_size``.

    Call args:
        x: ``[batch, length, hidden]``.
        padding_mask: ``[batch, length]``, 1 for real tokens.
        attention_mask: ``[batch, length, length]``, merged with the padding mask.
        output_length: if set, only the first ``output_length`` positions are computed (they
            still attend to every position): ``[batch, output_length, hidden]``. What a pooled
            output needs from the last block, e.g. ``output_length=1`` for BERT's ``[CLS]``;
            the values are those of the full output's first positions.

    Example:
    >>> block = TransformerEncoderBlock(num_heads=2, intermediate_size=32)
    >>> block(keras.ops.ones((2, 5, 16)), padding_mask=keras.ops.ones((2, 5))).shape
    TensorShape([2, 5, 16])
    """

    DEFAULTS = {"activation": "gelu", "attention_dropout": 0.1, "layer_norm_epsilon": 1e-12}

    def __init__(self, num_heads, intermediate_size, **kwargs):
        super().__init__(num_heads, intermediate_size, **kwargs)
        self.supports_masking = True

    def build(self, x_shape):
        self.attention = self._attention("attention", x_shape[-1])
        self.attention.build(x_shape)
        self.attention_norm = self._norm("attention_norm", x_shape)
        self.feed_forward = self._feed_forward(x_shape)
        self.output_norm = self._norm("output_norm", x_shape)
        self.dropout_layer = self._dropout()
        self.built = True

    def call(self, x, padding_mask=None, attention_mask=None, training=None, output_length=None):
        if padding_mask is not None:
            attention_mask = merge_masks(
                make_attention_mask(
                    key_padding_mask=padding_mask, query_length=keras.ops.shape(x)[1]
                ),
                attention_mask,
            )
        shortcut = None
        if output_length is not None:
            # Queries, the residual and the feed-forward only for the kept positions: the rest of
            # the block's work would be thrown away.
            shortcut = x[:, :output_length]
            if attention_mask is not None:
                attention_mask = attention_mask[:, :output_length]

        def attend(h):
            query = h if output_length is None else h[:, :output_length]
            return self.attention(
                query, value=h, attention_mask=attention_mask, training=training
            )

        x = self._residual(x, attend, self.attention_norm, training, shortcut=shortcut)
        return self._residual(
            x, lambda h: self.feed_forward(h, training=training), self.output_norm, training
        )

    def compute_output_shape(self, x_shape):
        return x_shape

    def compute_output_spec(self, x, output_length=None, **kwargs):
        shape = x.shape if output_length is None else (x.shape[0], output_length, x.shape[2])
        return keras.KerasTensor(shape, dtype=self.compute_dtype)
