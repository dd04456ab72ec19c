"""One Llama decoder block: pre-RMSNorm grouped-query self-attention with RoPE, then SwiGLU."""

import keras

from tfmodels.layers.attention import MultiHeadAttention
from tfmodels.layers.gated_feed_forward import GatedFeedForward
from tfmodels.layers.rms_norm import RMSNorm


@keras.saving.register_keras_serializable(package="tfmodels")
class LlamaDecoderBlock(keras.layers.Layer):
    """``x + attention(norm(x))``, then ``h + feed_forward(norm(h))`` (pre-norm, no biases).

    Args:
        num_heads: query heads.
        num_key_value_heads: key/value heads (grouped-query attention).
        head_dim: size of each head.
        intermediate_size: SwiGLU width.
        activation: gate activation (``"silu"``).
        rope_max_wavelength: RoPE base.
        rope_scaling_factor: linear RoPE scaling.
        layer_norm_epsilon: RMSNorm epsilon.
        attention_dropout: dropout on the attention probabilities.
        kernel_initializer: initializer for every kernel.

    Call args:
        x: ``[batch, length, width]``.
        attention_mask: boolean ``[batch, length, key_length]`` (causal and padding).
        positions: int ``[batch, length]`` RoPE positions.
        cache, cache_update_index: the self-attention key/value cache ``[batch, 2, max_length,
            num_key_value_heads, head_dim]`` and where ``x`` starts in it (cached decoding).

    Returns:
        ``[batch, length, width]``, or ``(output, cache)`` when a cache is given.

    Example:
    >>> block = LlamaDecoderBlock(num_heads=4, num_key_value_heads=2, head_dim=4,
    ...                           intermediate_size=32)
    >>> block(keras.ops.ones((2, 3, 16))).shape
    TensorShape([2, 3, 16])
    """

    def __init__(
        self,
        num_heads,
        num_key_value_heads,
        head_dim,
        intermediate_size,
        activation="silu",
        rope_max_wavelength=10000.0,
        rope_scaling_factor=1.0,
        layer_norm_epsilon=1e-6,
        attention_dropout=0.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.rope_max_wavelength = rope_max_wavelength
        self.rope_scaling_factor = rope_scaling_factor
        self.layer_norm_epsilon = layer_norm_epsilon
        self.attention_dropout = attention_dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, x_shape):
        policy = self.dtype_policy
        self.attention_norm = RMSNorm(self.layer_norm_epsilon, name="attention_norm", dtype=policy)
        self.attention_norm.build(x_shape)
        self.attention = MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self.head_dim,
            num_key_value_heads=self.num_key_value_heads,
            dropout=self.attention_dropout,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            rope_max_wavelength=self.rope_max_wavelength,
            rope_scaling_factor=self.rope_scaling_factor,
            name="attention",
            dtype=policy,
        )
        self.attention.build(x_shape)
        self.feed_forward_norm = RMSNorm(self.layer_norm_epsilon, name="feed_forward_norm",
                                         dtype=policy)
        self.feed_forward_norm.build(x_shape)
        self.feed_forward = GatedFeedForward(
            self.intermediate_size,
            activation=self.activation,
            kernel_initializer=self.kernel_initializer,
            name="feed_forward",
            dtype=policy,
        )
        self.feed_forward.build(x_shape)
        self.built = True

    def call(self, x, attention_mask=None, positions=None, cache=None, cache_update_index=None,
             training=None):
        attended = self.attention(
            self.attention_norm(x),
            attention_mask=attention_mask,
            cache=cache,
            cache_update_index=cache_update_index,
            positions=positions,
            training=training,
        )
        if cache is not None:
            attended, cache = attended
        x = x + attended
        x = x + self.feed_forward(self.feed_forward_norm(x))
        return x if cache is None else (x, cache)

    def compute_output_shape(self, x_shape):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_key_value_heads": self.num_key_value_heads,
                "head_dim": self.head_dim,
                "intermediate_size": self.intermediate_size,
                "activation": self.activation,
                "rope_max_wavelength": self.rope_max_wavelength,
                "rope_scaling_factor": self.rope_scaling_factor,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "attention_dropout": self.attention_dropout,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
