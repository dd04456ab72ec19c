"""Multi-head scaled dot-product attention (Vaswani et al., 2017) with an optional key/value cache,
grouped-query attention (Ainslie et al., 2023) and rotary positions (Su et al., 2021)."""

import keras
from keras import ops

from tfmodels.layers.initializers import clone_initializer
from tfmodels.layers.lora import LoraKernels
from tfmodels.layers.quantization import Int8Kernels
from tfmodels.layers.rotary import apply_rotary
from tfmodels.ops import add_bias, dropout_with_seed_generator


@keras.saving.register_keras_serializable(package="tfmodels")
class MultiHeadAttention(LoraKernels, Int8Kernels, keras.layers.Layer):
    """Multi-head attention with padding/causal masks and incremental decoding.

    Self-attention when ``value`` is omitted, cross-attention otherwise. Logits and softmax are
    computed in float32 so the layer is stable under mixed precision. ``quantize("int8")`` (and so
    ``keras.Model.quantize``) makes the four projection kernels int8 (``Int8Kernels``); the layer
    has no sublayers, so ``Model.quantize``, which visits leaf layers only, reaches it.
    ``enable_lora(rank)`` adds low-rank adapters to the query and value kernels (``LoraKernels``),
    on float or int8 kernels.

    Grouped-query attention (``num_key_value_heads < num_heads``, as in Llama 2/3 and SmolLM2):
    each key/value head serves ``num_heads // num_key_value_heads`` consecutive query heads. The
    query heads are grouped as ``[key_value_heads, group]`` instead of repeating the keys and
    values, so a cache holds (and a decoding step reads) only the key/value heads.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to ``key_dim``.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_dim: size of the output; defaults to the query's last dimension.
        kernel_initializer: initializer for the projection kernels.
        bias_initializer: initializer for the projection biases.
        num_key_value_heads: key/value heads (grouped-query attention); defaults to ``num_heads``.
            ``num_heads`` must be a multiple of it.
        rope_max_wavelength: if set, queries and keys are rotated by their positions (RoPE, see
            ``tfmodels.layers.apply_rotary``) with this base; ``None`` for no rotary positions.
        rope_scaling_factor: linear RoPE position scaling (1 for none).
        lora_rank, lora_alpha, lora_kernels: LoRA adapters (see ``LoraKernels.enable_lora``);
            ``None`` for none.

    Call args:
        query: ``[batch, query_length, dim]``.
        value: ``[batch, key_length, dim]`` for cross-attention; ``None`` for self-attention.
        attention_mask: boolean-like ``[batch, query_length, key_length]``; 1/True means
            "may attend". Build it with ``tfmodels.layers.make_attention_mask``.
        cache: optional ``[batch, 2, max_length, num_key_value_heads, head_dim]`` keys and values
            (rotated when RoPE is on). With
            ``cache_update_index`` the new keys/values are written at that position (self-attention
            decoding); without it the cache is used as is (precomputed cross-attention).
        cache_update_index: int scalar, where the current ``query`` positions start.
        positions: RoPE positions of the query (and self-attention key) tokens, int
            ``[batch, query_length]`` or ``[query_length]``; defaults to
            ``cache_update_index + arange(query_length)``. Per-row positions let left-padded rows
            count from their first real token.

    Returns:
        ``[batch, query_length, output_dim]``, or ``(output, cache)`` when a cache is given.

    Example:
    >>> layer = MultiHeadAttention(num_heads=2, key_dim=8)
    >>> layer(keras.ops.ones((1, 3, 16))).shape
    TensorShape([1, 3, 16])
    """

    DEFAULT_LORA_KERNELS = ("query_kernel", "value_kernel")  # as in the LoRA paper and PEFT

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
        num_key_value_heads=None,
        rope_max_wavelength=None,
        rope_scaling_factor=1.0,
        lora_rank=None,
        lora_alpha=None,
        lora_kernels=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        num_key_value_heads = num_key_value_heads or num_heads
        if num_heads % num_key_value_heads:
            raise ValueError(
                f"num_heads ({num_heads}) must be a multiple of num_key_value_heads "
                f"({num_key_value_heads}) for grouped-query attention"
            )
        if rope_max_wavelength is not None and key_dim % 2:
            raise ValueError(f"rotary positions need an even key_dim, got {key_dim}")
        self.num_key_value_heads = num_key_value_heads
        self.rope_max_wavelength = rope_max_wavelength
        self.rope_scaling_factor = rope_scaling_factor
        self.init_lora(lora_rank, lora_alpha, lora_kernels)
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

        heads, kv_heads, initializer = self.num_heads, self.num_key_value_heads, self.kernel_initializer
        self.add_kernel("query_kernel", (query_dim, heads, self.key_dim), initializer)
        self.query_bias = bias("query_bias", (heads, self.key_dim))
        self.add_kernel("key_kernel", (value_dim_in, kv_heads, self.key_dim), initializer)
        self.key_bias = bias("key_bias", (kv_heads, self.key_dim))
        self.add_kernel("value_kernel", (value_dim_in, kv_heads, self.value_dim), initializer)
        self.value_bias = bias("value_bias", (kv_heads, self.value_dim))
        self.add_kernel("output_kernel", (heads, self.value_dim, out_dim), initializer,
                        contracted_axes=2)
        self.output_bias = bias("output_bias", (out_dim,))
        self.build_lora()
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
        positions=None,
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
        if self.rope_max_wavelength is not None:
            if positions is None:
                start = 0 if cache_update_index is None else cache_update_index
                positions = ops.arange(ops.shape(query)[1]) + start
            q = self._rotate(q, positions)
            if value is None and (cache is None or cache_update_index is not None):
                k = self._rotate(k, positions)  # self-attention keys sit at the query positions
        if cache is not None:
            if cache_update_index is not None:
                start = [0, 0, cache_update_index, 0, 0]
                cache = ops.slice_update(cache, start, ops.stack([k, v], axis=1))
            k, v = cache[:, 0], cache[:, 1]

        # Scale the query rather than the [T, S] logits: fewer multiplies.
        q = q * ops.cast(1.0 / (self.key_dim**0.5), q.dtype)
        groups = self.num_heads // self.num_key_value_heads
        if groups > 1:
            # Query head n = kv * groups + g reads key/value head kv: [b, t, kv, g, h].
            q = ops.reshape(q, tuple(ops.shape(q)[:2]) + (self.num_key_value_heads, groups, self.key_dim))
            logits = ops.einsum("btkgh,bskh->bkgts", q, k)
            logits = ops.reshape(logits, (ops.shape(q)[0], self.num_heads) + tuple(ops.shape(logits)[3:]))
        else:
            logits = ops.einsum("btnh,bsnh->bnts", q, k)
        logits = ops.cast(logits, "float32")
        if attention_mask is not None:
            mask = ops.expand_dims(ops.cast(attention_mask, "bool"), axis=1)
            logits = ops.where(mask, logits, ops.full_like(logits, -1e9))
        probs = ops.softmax(logits, axis=-1)
        probs = ops.cast(probs, self.compute_dtype)
        if training and self.seed_generator is not None:
            probs = dropout_with_seed_generator(probs, self.dropout, self.seed_generator)
        if groups > 1:
            probs = ops.reshape(probs, (ops.shape(probs)[0], self.num_key_value_heads, groups)
                                + tuple(ops.shape(probs)[2:]))
            context = ops.einsum("bkgts,bskh->btkgh", probs, v)
            context = ops.reshape(context, tuple(ops.shape(context)[:2]) + (self.num_heads, -1))
        else:
            context = ops.einsum("bnts,bsnh->btnh", probs, v)
        heads, head_dim, _ = self.output_kernel.shape
        context = ops.reshape(context, tuple(ops.shape(context)[:-2]) + (heads * head_dim,))
        output = self.kernel_matmul(context, "output_kernel")
        if self.output_bias is not None:
            output = add_bias(output, ops.cast(self.output_bias, output.dtype))
        if cache is not None:
            return output, cache
        return output

    def _rotate(self, x, positions):
        return apply_rotary(x, positions, self.rope_max_wavelength, self.rope_scaling_factor)

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
        # Only when used, so the configs of plain multi-head attention read as before.
        if self.num_key_value_heads != self.num_heads:
            config["num_key_value_heads"] = self.num_key_value_heads
        if self.rope_max_wavelength is not None:
            config["rope_max_wavelength"] = self.rope_max_wavelength
            config["rope_scaling_factor"] = self.rope_scaling_factor
        return {**config, **self.lora_config()}

