"""Multi-head scaled dot-product attention (Vaswani et al., 2017) with an optional key/value cache."""

import keras
from keras import ops

from tfmodels.layers.initializers import clone_initializer
from tfmodels.layers.quantization import Int8Kernels
from tfmodels.ops import add_bias, dropout_with_seed_generator


@keras.saving.register_keras_serializable(package="tfmodels")
class MultiHeadAttention(Int8Kernels, keras.layers.Layer):
    """Multi-head attention with padding/causal masks and incremental decoding.

    Self-attention when ``value`` is omitted, cross-attention otherwise. Logits and softmax are
    computed in float32 so the layer is stable under mixed precision. ``quantize("int8")`` (and so
    ``keras.Model.quantize``) makes the four projection kernels int8 (``Int8Kernels``); the layer
    has no sublayers, so ``Model.quantize``, which visits leaf layers only, reaches it.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to ``key_dim``.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_dim: size of the output; defaults to the query's last dimension.
        kernel_initializer: initializer for the projection kernels.
        bias_initializer: initializer for the projection biases.

    Call args:
        query: ``[batch, query_length, dim]``.
        value: ``[batch, key_length, dim]`` for cross-attention; ``None`` for self-attention.
        attention_mask: boolean-like ``[batch, query_length, key_length]``; 1/True means
            "may attend". Build it with ``tfmodels.layers.make_attention_mask``.
        cache: optional ``[batch, 2, max_length, num_heads, head_dim]`` keys and values. With
            ``cache_update_index`` the new keys/values are written at that position (self-attention
            decoding); without it the cache is used as is (precomputed cross-attention).
        cache_update_index: int scalar, where the current ``query`` positions start.

    Returns:
        ``[batch, query_length, output_dim]``, or ``(output, cache)`` when a cache is given.

    Example:
    >>> layer = MultiHeadAttention(num_heads=2, key_dim=8)
    >>> layer(keras.ops.ones((1, 3, 16))).shape
    TensorShape([1, 3, 16])
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_dim = output_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        # A seed generator, not a Dropout sublayer: the layer must stay a leaf for Model.quantize.
        self.seed_generator = keras.random.SeedGenerator() if dropout > 0 else None

    def build(self, query_shape, value_shape=None):
        query_dim = query_shape[-1]
        value_dim_in = value_shape[-1] if value_shape is not None else query_dim
        out_dim = self.output_dim or query_dim

        def bias(name, shape):
            if not self.use_bias:
                return None
            return self.add_weight(
                name=name, shape=shape, initializer=clone_initializer(self.bias_initializer)
            )

        heads, initializer = self.num_heads, self.kernel_initializer
        self.add_kernel("query_kernel", (query_dim, heads, self.key_dim), initializer)
        self.query_bias = bias("query_bias", (heads, self.key_dim))
        self.add_kernel("key_kernel", (value_dim_in, heads, self.key_dim), initializer)
        self.key_bias = bias("key_bias", (heads, self.key_dim))
        self.add_kernel("value_kernel", (value_dim_in, heads, self.value_dim), initializer)
        self.value_bias = bias("value_bias", (heads, self.value_dim))
        self.add_kernel("output_kernel", (heads, self.value_dim, out_dim), initializer,
                        contracted_axes=2)
        self.output_bias = bias("output_bias", (out_dim,))
        self.built = True

    def _project(self, x, kernel_name, bias):
        # "btd,dnh->btnh" as [tokens, d] @ [d, heads * head_dim] (see matmul_last_axis).
        heads, head_dim = getattr(self, kernel_name).shape[1:]
        y = self.kernel_matmul(x, kernel_name)
        y = ops.reshape(y, tuple(ops.shape(x)[:-1]) + (heads, head_dim))
        return add_bias(y, bias) if bias is not None else y

    def compute_key_value(self, value):
        """Returns ``[batch, 2, length, heads, head_dim]`` keys/values, e.g. for a cross-attention cache."""
        key = self._project(value, "key_kernel", self.key_bias)
        val = self._project(value, "value_kernel", self.value_bias)
        return ops.stack([key, val], axis=1)

    def call(
        self,
        query,
        value=None,
        attention_mask=None,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        if cache_update_index is not None and cache is None:
            raise ValueError(
                f"cache_update_index={cache_update_index!r} needs a cache to write into; got "
                "cache=None (pass the [batch, 2, max_length, heads, head_dim] cache, or no index)"
            )
        # Separate q/k/v matmuls: a fused [d, 3d] projection was slower under XLA on CPU, whose
        # backward pass concatenates the three gradients (two copies of [tokens, 3d] per layer).
        q = self._project(query, "query_kernel", self.query_bias)
        if cache is None or cache_update_index is not None:
            source = query if value is None else value
            k = self._project(source, "key_kernel", self.key_bias)
            v = self._project(source, "value_kernel", self.value_bias)
        if cache is not None:
            if cache_update_index is not None:
                start = [0, 0, cache_update_index, 0, 0]
                cache = ops.slice_update(cache, start, ops.stack([k, v], axis=1))
            k, v = cache[:, 0], cache[:, 1]

        # Scale the query rather than the [T, S] logits: fewer multiplies.
        q = q * ops.cast(1.0 / (self.key_dim**0.5), q.dtype)
        logits = ops.einsum("btnh,bsnh->bnts", q, k)
        logits = ops.cast(logits, "float32")
        if attention_mask is not None:
            mask = ops.expand_dims(ops.cast(attention_mask, "bool"), axis=1)
            logits = ops.where(mask, logits, ops.full_like(logits, -1e9))
        probs = ops.softmax(logits, axis=-1)
        probs = ops.cast(probs, self.compute_dtype)
        if training and self.seed_generator is not None:
            probs = dropout_with_seed_generator(probs, self.dropout, self.seed_generator)
        context = ops.einsum("bnts,bsnh->btnh", probs, v)
        heads, head_dim, _ = self.output_kernel.shape
        context = ops.reshape(context, tuple(ops.shape(context)[:-2]) + (heads * head_dim,))
        output = self.kernel_matmul(context, "output_kernel")
        if self.output_bias is not None:
            output = add_bias(output, ops.cast(self.output_bias, output.dtype))
        if cache is not None:
            return output, cache
        return output

    def compute_output_shape(self, query_shape, value_shape=None):
        return tuple(query_shape[:-1]) + (self.output_dim or query_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config

