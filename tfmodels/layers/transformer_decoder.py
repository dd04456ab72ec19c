"""A Transformer decoder block: causal self-attention, cross-attention and feed-forward."""

import keras
from keras import ops

from tfmodels.layers.masking import make_attention_mask, make_causal_mask, merge_masks
from tfmodels.layers.transformer_block import TransformerBlockBase


@keras.saving.register_keras_serializable(package="tfmodels")
class TransformerDecoderBlock(TransformerBlockBase):
    """One decoder layer of "Attention is all you need", with a key/value cache for decoding.

    Three sublayers, each with a residual connection and LayerNorm: causal self-attention over the
    target, cross-attention from the target to the encoder output, and a position-wise
    feed-forward network. Post-LN (``norm_first=False``, the paper): ``x = LN(x + drop(f(x)))``;
    pre-LN (``norm_first=True``): ``x = x + drop(f(LN(x)))``.

    For incremental decoding pass ``self_attention_cache`` (``[batch, 2, max_length, heads,
    head_dim]``, zeros at first) with ``self_attention_cache_update_index`` (the position of the
    first query token), and ``cross_attention_cache`` from ``compute_cross_attention_cache``; the
    encoder output is then not needed. Each step then costs one query position, not the prefix.

    Args:
        num_heads: attention heads; the hidden size must be divisible by it.
        intermediate_size: feed-forward width.
        activation: feed-forward activation (``"relu"`` in the paper).
        dropout: dropout on each sublayer's output.
        attention_dropout: dropout on the attention probabilities.
        norm_first: pre-LN when True, post-LN when False.
        layer_norm_epsilon: LayerNorm epsilon.
        kernel_initializer: initializer for all kernels.

    Call args:
        x: ``[batch, target_length, hidden]``.
        encoder_output: ``[batch, source_length, hidden]``; may be omitted when
            ``cross_attention_cache`` is given.
        decoder_padding_mask: ``[batch, target_length]``, 1 for real target tokens (uncached only).
        encoder_padding_mask: ``[batch, source_length]``, 1 for real source tokens.
        self_attention_cache: optional self-attention keys/values, see above.
        self_attention_cache_update_index: int scalar, position of ``x[:, 0]``.
        cross_attention_cache: optional precomputed cross-attention keys/values.

    Returns:
        ``[batch, target_length, hidden]``, or ``(output, self_attention_cache)`` when a
        self-attention cache is given.

    Example:
    >>> block = TransformerDecoderBlock(num_heads=2, intermediate_size=32)
    >>> block(keras.ops.ones((2, 4, 16)), keras.ops.ones((2, 6, 16))).shape
    TensorShape([2, 4, 16])
    """

    DEFAULTS = {"activation": "relu", "attention_dropout": 0.0, "layer_norm_epsilon": 1e-6}

    def build(self, x_shape, encoder_output_shape=None):
        hidden = x_shape[-1]
        # The encoder output has the decoder's width in every model we build; a cached call may
        # omit it, so fall back to the decoder's own shape.
        encoder_output_shape = encoder_output_shape or (x_shape[0], None, hidden)
        self.self_attention = self._attention("self_attention", hidden)
        self.self_attention.build(x_shape)
        self.self_attention_norm = self._norm("self_attention_norm", x_shape)
        self.cross_attention = self._attention("cross_attention", hidden)
        self.cross_attention.build(x_shape, encoder_output_shape)
        self.cross_attention_norm = self._norm("cross_attention_norm", x_shape)
        self.feed_forward = self._feed_forward(x_shape)
        self.output_norm = self._norm("output_norm", x_shape)
        self.dropout_layer = self._dropout()
        self.built = True

    def compute_cross_attention_cache(self, encoder_output):
        """Cross-attention keys/values of ``encoder_output``, computed once per source."""
        return self.cross_attention.compute_key_value(encoder_output)

    def call(
        self,
        x,
        encoder_output=None,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        training=None,
    ):
        if encoder_output is None and cross_attention_cache is None:
            raise ValueError(
                "TransformerDecoderBlock needs encoder_output or cross_attention_cache; got neither"
            )
        if self_attention_cache is None and self_attention_cache_update_index is not None:
            raise ValueError(
                "self_attention_cache_update_index="
                f"{self_attention_cache_update_index!r} needs a self_attention_cache; got None"
            )
        if self_attention_cache is not None and decoder_padding_mask is not None:
            raise ValueError(
                "decoder_padding_mask is for the uncached pass only (cached steps mask by "
                "position); got it with a self_attention_cache"
            )
        query_length = ops.shape(x)[1]
        if self_attention_cache is not None:
            # Keys are the whole fixed-size cache; positions not written yet are masked as future.
            start = self_attention_cache_update_index
            if start is None:
                raise ValueError("self_attention_cache needs self_attention_cache_update_index.")
            self_mask = make_causal_mask(query_length, ops.shape(self_attention_cache)[2], start)
        else:
            self_mask = make_causal_mask(query_length)
            if decoder_padding_mask is not None:
                self_mask = merge_masks(
                    self_mask,
                    make_attention_mask(key_padding_mask=decoder_padding_mask, query_length=query_length),
                )
        cross_mask = None
        if encoder_padding_mask is not None:
            cross_mask = make_attention_mask(
                key_padding_mask=encoder_padding_mask, query_length=query_length
            )

        new_cache = None

        def self_attend(h):
            nonlocal new_cache
            if self_attention_cache is None:
                return self.self_attention(h, attention_mask=self_mask, training=training)
            out, new_cache = self.self_attention(
                h,
                attention_mask=self_mask,
                cache=self_attention_cache,
                cache_update_index=self_attention_cache_update_index,
                training=training,
            )
            return out

        def cross_attend(h):
            if cross_attention_cache is None:
                return self.cross_attention(
                    h, encoder_output, attention_mask=cross_mask, training=training
                )
            out, _ = self.cross_attention(
                h, attention_mask=cross_mask, cache=cross_attention_cache, training=training
            )
            return out

        x = self._residual(x, self_attend, self.self_attention_norm, training)
        x = self._residual(x, cross_attend, self.cross_attention_norm, training)
        x = self._residual(
            x, lambda h: self.feed_forward(h, training=training), self.output_norm, training
        )
        if self_attention_cache is not None:
            return x, new_cache
        return x

    def compute_output_shape(self, x_shape, encoder_output_shape=None):
        return x_shape
