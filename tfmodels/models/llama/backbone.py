"""DecoderBackbone: a Llama-architecture decoder-only Transformer as a Keras model."""

import keras
import tensorflow as tf
from keras import ops

from tfmodels.layers.dense import Dense
from tfmodels.layers.embedding import TokenEmbedding, embedding_table
from tfmodels.layers.masking import make_attention_mask, make_causal_mask, merge_masks
from tfmodels.layers.quantization import pop_quantized_layers, requantize, with_quantized_layers
from tfmodels.layers.rms_norm import RMSNorm
from tfmodels.models.llama.config import DecoderConfig
from tfmodels.models.llama.decoder_block import LlamaDecoderBlock
from tfmodels.utils.from_preset import FromPreset

INPUT_NAMES = ("token_ids", "padding_mask")
LORA_CONFIG_KEY = "lora"


def positions_from_padding(padding_mask):
    """RoPE positions ``[batch, length]`` counting from each row's first real token (0 on the
    left pads), so a left-padded prompt sees the positions it would have alone."""
    mask = ops.cast(padding_mask, "int32")
    return ops.maximum(ops.cumsum(mask, axis=1) - 1, 0)


def causal_attention_mask(padding_mask, query_length=None, start_index=0):
    """Boolean ``[batch, query_length, key_length]``: query ``i`` sees real keys ``<= start_index
    + i``; ``padding_mask`` ``[batch, key_length]`` marks the real keys."""
    key_length = ops.shape(padding_mask)[1]
    query_length = key_length if query_length is None else query_length
    return merge_masks(
        make_causal_mask(query_length, key_length, start_index),
        make_attention_mask(key_padding_mask=padding_mask, query_length=query_length),
    )


@keras.saving.register_keras_serializable(package="tfmodels")
class DecoderBackbone(FromPreset, keras.Model):
    """Token embedding, ``num_hidden_layers`` Llama blocks and the final RMSNorm.

    The output projection to the vocabulary (``token_logits``) is the token embedding when
    ``config.tie_word_embeddings`` (SmolLM2) and the ``lm_head`` layer otherwise; ``CausalLM``
    applies it. ``call_with_cache`` runs the same layers with per-block key/value caches (cached
    decoding); ``assign_hf_llama_weights`` loads Hugging Face Llama weights.

    Args:
        config: a ``DecoderConfig`` (or its dict).
        dtype: a dtype or ``keras.DTypePolicy`` (e.g. ``"mixed_bfloat16"``).

    Inputs:
        dict of int32 ``[batch, length]``: ``token_ids`` and ``padding_mask`` (1 for real tokens).
        Rows may be left- or right-padded: positions count from each row's first real token.

    Outputs:
        ``[batch, length, hidden_size]`` final-normed hidden states.

    Example:
    >>> import numpy as np
    >>> config = DecoderConfig(vocab_size=50, hidden_size=16, intermediate_size=32,
    ...                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    >>> backbone = DecoderBackbone(config)
    >>> backbone({"token_ids": np.ones((2, 5), "int32"),
    ...           "padding_mask": np.ones((2, 5), "int32")}).shape
    TensorShape([2, 5, 16])
    """

    def __init__(self, config, dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        if isinstance(config, dict):
            config = DecoderConfig.from_dict(config)
        self.config = config
        initializer = keras.initializers.RandomNormal(stddev=config.initializer_range)
        policy = self.dtype_policy
        self.token_embedding = TokenEmbedding(
            config.vocab_size, config.hidden_size, embeddings_initializer=initializer,
            name="token_embedding", dtype=policy,
        )
        self.decoder_blocks = [
            LlamaDecoderBlock(
                num_heads=config.num_attention_heads,
                num_key_value_heads=config.num_key_value_heads,
                head_dim=config.head_dim,
                intermediate_size=config.intermediate_size,
                activation=config.hidden_act,
                rope_max_wavelength=config.rope_theta,
                rope_scaling_factor=config.rope_scaling_factor,
                layer_norm_epsilon=config.rms_norm_eps,
                attention_dropout=config.attention_dropout,
                kernel_initializer=initializer,
                name=f"decoder_block_{i}",
                dtype=policy,
            )
            for i in range(config.num_hidden_layers)
        ]
        self.final_norm = RMSNorm(config.rms_norm_eps, name="final_norm", dtype=policy)
        self.lm_head = None
        if not config.tie_word_embeddings:
            self.lm_head = Dense(config.vocab_size, use_bias=False, kernel_initializer=initializer,
                                 name="lm_head", dtype=policy)
        self.lora = None  # {"rank", "alpha", "feed_forward"} once enable_lora ran
        self.build()

    def build(self, inputs_shape=None):
        if self.built:
            return
        width = self.config.hidden_size
        hidden_shape = (None, None, width)
        self.token_embedding.build((None, None))
        for block in self.decoder_blocks:
            block.build(hidden_shape)
        self.final_norm.build(hidden_shape)
        if self.lm_head is not None:
            self.lm_head.build(hidden_shape)
        self.built = True

    def call(self, inputs, training=None):
        padding_mask = inputs["padding_mask"]
        x = self.token_embedding(inputs["token_ids"])
        mask = causal_attention_mask(padding_mask)
        positions = positions_from_padding(padding_mask)
        for block in self.decoder_blocks:
            x = block(x, attention_mask=mask, positions=positions, training=training)
        return self.final_norm(x)

    def compute_output_spec(self, inputs, training=None):
        shape = tuple(inputs["token_ids"].shape) + (self.config.hidden_size,)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    # -- cached decoding ------------------------------------------------------------------------

    def empty_cache(self, batch_size, max_length):
        """One zero ``[batch, 2, max_length, kv_heads, head_dim]`` key/value cache per block."""
        shape = (batch_size, 2, max_length, self.config.num_key_value_heads, self.config.head_dim)
        return tuple(ops.zeros(shape, self.compute_dtype) for _ in self.decoder_blocks)

    def call_with_cache(self, token_ids, positions, attention_mask, caches, cache_update_index):
        """Runs ``token_ids`` ``[batch, length]`` written at ``cache_update_index`` of every
        block's cache; ``attention_mask`` ``[batch, length, max_length]`` says which cache
        positions each query sees. Returns ``(hidden states, new caches)``."""
        x = self.token_embedding(token_ids)
        new_caches = []
        for block, cache in zip(self.decoder_blocks, caches):
            x, cache = block(x, attention_mask=attention_mask, positions=positions, cache=cache,
                             cache_update_index=cache_update_index)
            new_caches.append(cache)
        return self.final_norm(x), tuple(new_caches)

    def token_logits(self, hidden):
        """Float32 next-token logits ``[..., vocab_size]`` of hidden states ``[..., width]``."""
        if self.lm_head is not None:
            return ops.cast(self.lm_head(hidden), "float32")
        table = embedding_table(self.token_embedding, hidden.dtype)
        flat = ops.reshape(hidden, (-1, self.config.hidden_size))
        # transpose_b: no [vocab, width] transposed copy of the table per call.
        logits = tf.matmul(flat, table, transpose_b=True)
        return ops.cast(ops.reshape(logits, tuple(ops.shape(hidden)[:-1]) + (-1,)), "float32")

    # -- LoRA -----------------------------------------------------------------------------------

    def lora_layers(self, feed_forward=False):
        """``{key: layer}`` of the layers that get adapters: every block's attention (query and
        value kernels), and the SwiGLU projections when ``feed_forward``."""
        layers = {}
        for block in self.decoder_blocks:
            layers[f"{block.name}/attention"] = block.attention
            if feed_forward:
                for dense in (block.feed_forward.gate_dense, block.feed_forward.up_dense,
                              block.feed_forward.down_dense):
                    layers[f"{block.name}/feed_forward/{dense.name}"] = dense
        return layers

    def enable_lora(self, rank, alpha=None, feed_forward=False):
        """Adds rank-``rank`` adapters (see ``tfmodels.layers.LoraKernels``) to the attention (and
        with ``feed_forward`` the MLP) projections and freezes every other weight: only the
        adapters train. Works on int8 weights (``quantize("int8")`` first: QLoRA)."""
        if self.lora is not None:
            raise ValueError(f"LoRA is already enabled on {self.name}: {self.lora}")
        for layer in self.lora_layers(feed_forward).values():
            layer.enable_lora(rank, alpha)
        adapters = {id(v) for v in self.lora_weights(feed_forward).values()}
        for variable in self.weights:
            if id(variable) not in adapters:
                variable.trainable = False
        self.lora = {"rank": rank, "alpha": alpha, "feed_forward": feed_forward}

    def lora_weights(self, feed_forward=None):
        """``{"decoder_block_0/attention/query_kernel_lora_a": variable, ...}``: every adapter,
        keyed by its place in the backbone (the keys of ``CausalLM.save_lora_weights``)."""
        if feed_forward is None:
            if self.lora is None:
                return {}
            feed_forward = self.lora["feed_forward"]
        return {f"{key}/{name}": variable
                for key, layer in self.lora_layers(feed_forward).items()
                for name, variable in layer.lora_weights().items()}

    def merge_lora(self):
        """Folds the adapters into the kernels (for export) and makes the weights trainable again
        (int8 kernels stay frozen)."""
        if self.lora is None:
            return
        for layer in self.lora_layers(self.lora["feed_forward"]).values():
            layer.merge_lora()
        for variable in self.weights:  # int8 kernels and their scales never train
            variable.trainable = (keras.backend.is_float_dtype(variable.dtype)
                                  and not variable.name.endswith("_scale"))
        self.lora = None

    # -- Hugging Face weights -------------------------------------------------------------------

    def hf_llama_variable_map(self):
        """``[(variable, WeightSource)]``: which Hugging Face Llama tensor fills each variable."""
        from tfmodels.checkpoints.weight_mapping import (
            WeightSource,
            from_heads,
            to_heads,
            transpose,
        )

        config = self.config
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        mapping = [(self.token_embedding.embeddings, WeightSource("model.embed_tokens.weight")),
                   (self.final_norm.scale, WeightSource("model.norm.weight"))]
        for i, block in enumerate(self.decoder_blocks):
            p, attention, ff = f"model.layers.{i}.", block.attention, block.feed_forward
            mapping += [
                (block.attention_norm.scale, WeightSource(p + "input_layernorm.weight")),
                (attention.query_kernel, WeightSource(p + "self_attn.q_proj.weight",
                                                      to_heads(heads, True))),
                (attention.key_kernel, WeightSource(p + "self_attn.k_proj.weight",
                                                    to_heads(kv_heads, True))),
                (attention.value_kernel, WeightSource(p + "self_attn.v_proj.weight",
                                                      to_heads(kv_heads, True))),
                (attention.output_kernel, WeightSource(p + "self_attn.o_proj.weight",
                                                       from_heads(heads, True))),
                (block.feed_forward_norm.scale, WeightSource(p + "post_attention_layernorm.weight")),
                (ff.gate_dense.kernel, WeightSource(p + "mlp.gate_proj.weight", transpose())),
                (ff.up_dense.kernel, WeightSource(p + "mlp.up_proj.weight", transpose())),
                (ff.down_dense.kernel, WeightSource(p + "mlp.down_proj.weight", transpose())),
            ]
        if self.lm_head is not None:
            mapping.append((self.lm_head.kernel, WeightSource("lm_head.weight", transpose())))
        return mapping

    def assign_hf_llama_weights(self, weights):
        """Loads ``{hf_name: np.ndarray}`` in Hugging Face Llama names and layouts (``[out, in]``
        projections). Raises a ``ValueError`` (``CheckpointMismatchError``) naming every missing
        tensor, wrong shape or unexpected tensor, before assigning anything."""
        from tfmodels.checkpoints.weight_mapping import CheckpointMismatchError, assign_weights

        if any(layer.quantization_mode for layer in self._flatten_layers()):
            raise ValueError("assign_hf_llama_weights needs a float model: assign the weights, "
                             "then quantize")
        mapping = self.hf_llama_variable_map()
        expected = {source.name for _, source in mapping}
        unexpected = sorted(name for name in weights if name not in expected
                            and not name.endswith("rotary_emb.inv_freq"))
        if self.lm_head is None and "lm_head.weight" in unexpected:
            unexpected.remove("lm_head.weight")  # tied: some checkpoints store the copy anyway
        if unexpected:
            raise CheckpointMismatchError(
                f"weights not part of this decoder ({self.config.num_hidden_layers} blocks, "
                f"tie_word_embeddings={self.config.tie_word_embeddings}): {unexpected[:10]}"
            )
        assign_weights(mapping, weights.get, "the Hugging Face Llama weights")

    # -- config ---------------------------------------------------------------------------------

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "config": self.config.to_dict(),
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
        }
        if self.lora is not None:
            config[LORA_CONFIG_KEY] = dict(self.lora)
        return with_quantized_layers(config, self)

    @classmethod
    def from_config(cls, config):
        config, quantized = pop_quantized_layers(config)
        lora = config.pop(LORA_CONFIG_KEY, None)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        backbone = requantize(cls(**config), quantized)
        if lora is not None:
            backbone.enable_lora(**lora)
        return backbone
