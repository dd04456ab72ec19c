"""The encoder-decoder Transformer of "Attention is all you need" (Vaswani et al., 2017)."""

import keras
import tensorflow as tf
from keras import ops

from tfmodels import generation
from tfmodels.layers.dense import Dense
from tfmodels.layers.embedding import TransformerEmbedding, embedding_table
from tfmodels.layers.layer_norm import LayerNorm
from tfmodels.layers.transformer_decoder import TransformerDecoderBlock
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock
from tfmodels.models.transformer.config import Seq2SeqConfig


class _FunctionCache:
    """A plain holder, so TF's object tracking does not wrap the dict (whose tuple keys would
    stop ``tf.saved_model.save`` of a module that holds the model)."""

    def __init__(self):
        self.functions = {}


@keras.saving.register_keras_serializable(package="tfmodels")
class Seq2SeqTransformer(keras.Model):
    """Encoder-decoder Transformer for translation and summarization.

    Takes ``{"source_ids": [batch, source_length], "target_ids": [batch, target_length]}`` -- the
    target shifted right (starting with ``start_id``, teacher forcing) -- and returns next-token
    logits ``[batch, target_length, target_vocab_size]``. Token id ``pad_id`` marks padding on
    both sides: padded source tokens are masked out of every attention, and the decoder is causal.

    ``generate`` decodes with an XLA-compiled loop over a fixed-size key/value cache: the model
    offers ``tfmodels.generation``'s cached-step protocol (``decoding_init`` encodes the source and
    runs the start token, ``decoding_step`` runs one target position), so
    ``tfmodels.generation.generate(model, source_ids, ...)`` decodes it too, with per-row limits,
    temperatures, top-p and seeds.

    Build it from a :class:`Seq2SeqConfig` (``Seq2SeqTransformer(config)``, validated, with a
    JSON form) or from the same fields as keyword arguments; ``model.config`` holds the config.

    Args:
        source_vocab_size: source vocabulary size, or a ``Seq2SeqConfig`` (or its dict).
        target_vocab_size, hidden_size, ..., layer_norm_epsilon: the other ``Seq2SeqConfig``
            fields, with the same defaults and meanings (see there).
        config: a ``Seq2SeqConfig`` (or its dict) instead of the keyword arguments.

    Example:
    >>> model = Seq2SeqTransformer(50, hidden_size=16, num_heads=2, intermediate_size=32,
    ...                            num_encoder_layers=1, num_decoder_layers=1)
    >>> ids = keras.ops.convert_to_tensor([[5, 6, 7, 2]])
    >>> model({"source_ids": ids, "target_ids": ids}).shape
    TensorShape([1, 4, 50])
    >>> model.generate(ids, max_length=5).shape
    TensorShape([1, 5])
    >>> Seq2SeqTransformer(model.config).config == model.config
    True
    """

    def __init__(
        self,
        source_vocab_size=None,
        target_vocab_size=None,
        hidden_size=512,
        num_heads=8,
        intermediate_size=2048,
        num_encoder_layers=6,
        num_decoder_layers=6,
        dropout=0.1,
        attention_dropout=0.0,
        activation="relu",
        norm_first=False,
        position_encoding="sinusoidal",
        max_source_length=256,
        max_target_length=256,
        share_embeddings=False,
        tie_output_embeddings=True,
        pad_id=0,
        start_id=1,
        end_id=2,
        layer_norm_epsilon=1e-6,
        config=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Seq2SeqTransformer(config), Seq2SeqTransformer(config=...) or the keyword form.
        if isinstance(source_vocab_size, (Seq2SeqConfig, dict)):
            source_vocab_size, config = None, source_vocab_size
        if config is None:
            if source_vocab_size is None:
                raise ValueError("Seq2SeqTransformer needs source_vocab_size or a Seq2SeqConfig")
            config = Seq2SeqConfig(
                source_vocab_size=source_vocab_size,
                target_vocab_size=target_vocab_size,
                hidden_size=hidden_size,
                num_heads=num_heads,
                intermediate_size=intermediate_size,
                num_encoder_layers=num_encoder_layers,
                num_decoder_layers=num_decoder_layers,
                dropout=dropout,
                attention_dropout=attention_dropout,
                activation=activation,
                norm_first=norm_first,
                position_encoding=position_encoding,
                max_source_length=max_source_length,
                max_target_length=max_target_length,
                share_embeddings=share_embeddings,
                tie_output_embeddings=tie_output_embeddings,
                pad_id=pad_id,
                start_id=start_id,
                end_id=end_id,
                layer_norm_epsilon=layer_norm_epsilon,
            )
        elif isinstance(config, dict):
            config = Seq2SeqConfig.from_dict(config)
        elif source_vocab_size is not None:
            raise ValueError(
                f"pass either a config or the keyword arguments, got config and "
                f"source_vocab_size={source_vocab_size!r}"
            )
        self.config = config
        # The hyper-parameters stay attributes (model.hidden_size, model.pad_id, ...).
        for name, value in config.to_dict().items():
            setattr(self, name, value)
        # Compiled decoding functions, one per (method, length, options); see get_generate_function.
        self._generate_functions = _FunctionCache()

    @property
    def head_dim(self):
        return self.hidden_size // self.num_heads

    def _embedding(self, vocab_size, max_length, name):
        return TransformerEmbedding(
            vocab_size,
            self.hidden_size,
            max_sequence_length=max_length,
            position_encoding=self.position_encoding,
            # sqrt(d) scaling with N(0, d^-1/2) tables gives unit-scale inputs and, when tied,
            # output logits of a sensible size (as in the paper and tensor2tensor).
            scale_embeddings=True,
            use_layer_norm=False,
            dropout=self.dropout,
            initializer=keras.initializers.RandomNormal(stddev=self.hidden_size**-0.5),
            name=name,
            dtype=self.dtype_policy,
        )

    def build(self, inputs_shape=None):
        # Every shape follows from the config, so the model can be built before any call (and is
        # rebuilt the same way when loaded).
        hidden_shape = (None, None, self.hidden_size)
        if self.share_embeddings:
            self.source_embedding = self._embedding(
                self.source_vocab_size,
                max(self.max_source_length, self.max_target_length),
                "shared_embedding",
            )
            self.target_embedding = self.source_embedding
        else:
            self.source_embedding = self._embedding(
                self.source_vocab_size, self.max_source_length, "source_embedding"
            )
            self.target_embedding = self._embedding(
                self.target_vocab_size, self.max_target_length, "target_embedding"
            )
        self.source_embedding.build((None, None))
        if not self.share_embeddings:  # a shared table is one layer: building it twice fails
            self.target_embedding.build((None, None))

        block_args = dict(
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            activation=self.activation,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            norm_first=self.norm_first,
            layer_norm_epsilon=self.layer_norm_epsilon,
        )
        self.encoder_blocks = []
        for i in range(self.num_encoder_layers):
            block = TransformerEncoderBlock(
                **block_args, name=f"encoder_block_{i}", dtype=self.dtype_policy
            )
            block.build(hidden_shape)
            self.encoder_blocks.append(block)
        self.decoder_blocks = []
        for i in range(self.num_decoder_layers):
            block = TransformerDecoderBlock(
                **block_args, name=f"decoder_block_{i}", dtype=self.dtype_policy
            )
            block.build(hidden_shape, hidden_shape)
            self.decoder_blocks.append(block)

        # Pre-LN stacks leave the residual stream unnormalized; the final LayerNorm fixes that.
        self.encoder_norm = self.decoder_norm = None
        if self.norm_first:
            self.encoder_norm = LayerNorm(
                epsilon=self.layer_norm_epsilon, name="encoder_norm", dtype=self.dtype_policy
            )
            self.encoder_norm.build(hidden_shape)
            self.decoder_norm = LayerNorm(
                epsilon=self.layer_norm_epsilon, name="decoder_norm", dtype=self.dtype_policy
            )
            self.decoder_norm.build(hidden_shape)

        self.output_projection = None
        if self.tie_output_embeddings:
            self.output_bias = self.add_weight(
                name="output_bias", shape=(self.target_vocab_size,), initializer="zeros"
            )
        else:
            self.output_projection = Dense(
                self.target_vocab_size, name="output_projection", dtype=self.dtype_policy
            )
            self.output_projection.build(hidden_shape)
        self.built = True

    # -- the three pieces every decoding path shares ----------------------------------------------

    def encode(self, source_ids, training=None):
        """Returns ``(encoder_output [batch, source_length, hidden], source_padding_mask)``."""
        source_padding_mask = ops.not_equal(source_ids, self.pad_id)
        x = self.source_embedding(source_ids, training=training)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=source_padding_mask, training=training)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return x, source_padding_mask

    def _logits(self, x):
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        if self.output_projection is not None:
            return self.output_projection(x)
        table = embedding_table(self.target_embedding.token_embedding, x.dtype)
        return ops.einsum("btd,vd->btv", x, table) + ops.cast(self.output_bias, x.dtype)

    def decode(self, target_ids, encoder_output, source_padding_mask, training=None):
        """Full (uncached) decoder pass: ``[batch, target_length, target_vocab_size]`` logits."""
        x = self.target_embedding(target_ids, training=training)
        target_padding_mask = ops.not_equal(target_ids, self.pad_id)
        for block in self.decoder_blocks:
            x = block(
                x,
                encoder_output,
                decoder_padding_mask=target_padding_mask,
                encoder_padding_mask=source_padding_mask,
                training=training,
            )
        return self._logits(x)

    def call(self, inputs, training=None):
        encoder_output, source_padding_mask = self.encode(inputs["source_ids"], training=training)
        return self.decode(inputs["target_ids"], encoder_output, source_padding_mask, training)

    # -- cached incremental decoding (tfmodels.generation's protocol) -----------------------------

    @property
    def end_token_ids(self):
        return (self.end_id,)

    @property
    def pad_token_id(self):
        return self.pad_id

    @property
    def banned_token_ids(self):
        return (self.pad_id, self.start_id)

    def init_cache(self, encoder_output, max_length):
        """Fixed-size decoding caches for ``max_length`` target positions.

        Returns:
            ``(self_attention_caches, cross_attention_caches)``, one tensor per decoder layer
            each: zeros ``[batch, 2, max_length, heads, head_dim]``, and the encoder's keys/values
            ``[batch, 2, source_length, heads, head_dim]`` computed once.
        """
        batch = ops.shape(encoder_output)[0]
        shape = (batch, 2, max_length, self.num_heads, self.head_dim)
        self_caches = tuple(
            ops.zeros(shape, dtype=encoder_output.dtype) for _ in self.decoder_blocks
        )
        cross_caches = tuple(
            b.compute_cross_attention_cache(encoder_output) for b in self.decoder_blocks
        )
        return self_caches, cross_caches

    def decode_step(self, token_ids, index, self_caches, cross_caches, source_padding_mask):
        """Logits for the tokens at positions ``index...`` using and updating the cache.

        Args:
            token_ids: ``[batch, steps]`` tokens at positions ``index .. index + steps - 1``.
            index: int scalar position of ``token_ids[:, 0]``.
            self_caches, cross_caches: from ``init_cache`` (or a previous step).
            source_padding_mask: ``[batch, source_length]`` from ``encode``.

        Returns:
            ``(logits [batch, steps, target_vocab_size], updated self_caches)``.
        """
        x = self.target_embedding(token_ids, start_index=index)
        new_caches = []
        for block, self_cache, cross_cache in zip(self.decoder_blocks, self_caches, cross_caches):
            x, layer_cache = block(
                x,
                encoder_padding_mask=source_padding_mask,
                self_attention_cache=self_cache,
                self_attention_cache_update_index=index,
                cross_attention_cache=cross_cache,
            )
            new_caches.append(layer_cache)
        return self._logits(x), tuple(new_caches)

    def decoding_init(self, source_ids, max_new_tokens):
        """Encodes ``source_ids`` and runs the start token: ``(logits, cache, context)``.

        ``cache`` is the self-attention cache per layer; ``context`` the cross-attention keys and
        values per layer and the source padding mask (see ``tfmodels.generation``).
        """
        if self.position_encoding == "learned" and max_new_tokens > self.max_target_length:
            raise ValueError(
                f"max_length {max_new_tokens} > max_target_length {self.max_target_length}"
            )
        if not self.built:  # every shape follows from the config
            self.build()
        source_ids = ops.convert_to_tensor(source_ids, dtype="int32")
        encoder_output, source_mask = self.encode(source_ids)
        self_caches, cross_caches = self.init_cache(encoder_output, max_new_tokens)
        start = ops.full((ops.shape(source_ids)[0], 1), self.start_id, dtype="int32")
        logits, self_caches = self.decode_step(start, 0, self_caches, cross_caches, source_mask)
        return logits[:, 0], self_caches, (cross_caches, source_mask)

    def decoding_step(self, token_ids, step, cache, context):
        """Runs the token generated at ``step`` (target position ``step + 1``)."""
        cross_caches, source_mask = context
        logits, cache = self.decode_step(token_ids[:, None], step + 1, cache, cross_caches, source_mask)
        return logits[:, 0], cache

    # -- generation --------------------------------------------------------------------------------

    def get_generate_function(self, method="greedy", max_length=None, use_cache=True, **options):
        """The XLA-compiled decoding function ``fn(source_ids, seed) -> (tokens, scores)``.

        Built once per (method, max_length, use_cache, options) and kept, so repeated calls with
        the same input shapes neither retrace nor recompile. ``method`` is a sampler name with
        its ``options`` (``beam_width``/``width``, ``length_penalty``, ``early_stopping``;
        ``top_k``/``k``, ``top_p``/``p``, ``temperature``) or a ``tfmodels.generation`` sampler
        object. ``fn`` also takes per-row ``row_max_new_tokens``, ``temperature`` and ``top_p``
        tensors and ``[batch, 2]`` seeds: see ``tfmodels.generation.make_decode_function``.
        """
        max_length = max_length or self.max_target_length
        sampler = generation.get_sampler(method, **options)
        key = (sampler, max_length, use_cache)
        functions = self._generate_functions.functions
        if key not in functions:
            if self.position_encoding == "learned" and max_length > self.max_target_length:
                raise ValueError(
                    f"max_length {max_length} > max_target_length {self.max_target_length}"
                )
            decodable = self if use_cache else _UncachedDecoding(self)
            functions[key] = generation.make_decode_function(decodable, sampler, max_length)
        return functions[key]

    def generate(
        self,
        source_ids,
        max_length=None,
        method="greedy",
        seed=0,
        use_cache=True,
        return_scores=False,
        **options,
    ):
        """Decodes ``source_ids`` ``[batch, source_length]`` into ``[batch, max_length]`` target ids.

        The start token is not included; the end token is, followed by ``pad_id`` padding. The
        model takes token ids; raw strings in and out go through the tokenizers with
        ``tfmodels.export.Translator(model, source_tokenizer, target_tokenizer).generate(["text"])``
        (strings given here are a TypeError saying so).

        Args:
            source_ids: int ``[batch, source_length]``, padded with ``pad_id``.
            max_length: tokens to generate at most; defaults to ``max_target_length``.
            method: ``"greedy"``, ``"beam"``, ``"top_k"`` or ``"top_p"``, or a sampler object
                (``tfmodels.generation.TopP(0.9)``, ...).
            seed: int, for the sampling methods (a tensor argument: changing it does not retrace).
            use_cache: decode with the key/value cache (False re-runs the decoder on the whole
                prefix each step; for tests and benchmarks).
            return_scores: also return per-sequence scores (sum of log-probabilities, divided by
                the length penalty for beam search).
            **options: ``beam_width``, ``length_penalty``, ``early_stopping`` (beam);
                ``top_k`` (top_k), ``top_p`` (top_p), ``temperature`` (sampling). An option the
                method would ignore is a ValueError.
        """
        _check_token_ids(source_ids)
        fn = self.get_generate_function(method, max_length, use_cache, **options)
        source_ids = ops.convert_to_tensor(source_ids, dtype="int32")
        seed = ops.convert_to_tensor([seed, 0], dtype="int32")
        tokens, scores = fn(source_ids, seed)
        return (tokens, scores) if return_scores else tokens

    def get_config(self):
        # Flat keys, as before the config object: .keras files saved then still load.
        config = super().get_config()
        config.update(self.config.to_dict())
        return config


def _check_token_ids(source_ids):
    """Strings are the common mistake (the model holds no tokenizer): say what to call instead."""
    if isinstance(source_ids, (tf.Tensor, tf.RaggedTensor)):
        is_text = source_ids.dtype == tf.string
    elif hasattr(source_ids, "dtype"):  # numpy
        is_text = source_ids.dtype.kind in ("U", "S") or (
            source_ids.dtype.kind == "O" and any(isinstance(v, (str, bytes)) for v in source_ids.flat))
    else:
        is_text = any(isinstance(value, (str, bytes)) for value in tf.nest.flatten(source_ids))
    if is_text:
        raise TypeError(
            "Seq2SeqTransformer.generate takes token ids [batch, source_length], got strings. For raw "
            "text use tfmodels.export.Translator(model, source_tokenizer, target_tokenizer).generate("
            "['text', ...]): it tokenizes, decodes and detokenizes (and exports as a SavedModel).")


class _UncachedDecoding:
    """The decoding protocol without a cache: each step re-runs the decoder over the whole
    fixed-length prefix (the slow baseline, for tests and ``bench/generate.py``)."""

    def __init__(self, model):
        self.model = model
        self.end_token_ids = model.end_token_ids
        self.pad_token_id = model.pad_token_id
        self.banned_token_ids = model.banned_token_ids

    def decoding_init(self, source_ids, max_new_tokens):
        encoder_output, source_mask = self.model.encode(tf.cast(source_ids, tf.int32))
        batch = tf.shape(source_ids)[0]
        prefix = tf.concat(
            [tf.fill([batch, 1], self.model.start_id),
             tf.fill([batch, max_new_tokens - 1], self.model.pad_id)], axis=1)
        logits = self.model.decode(prefix, encoder_output, source_mask)[:, 0]
        return logits, prefix, (encoder_output, source_mask)

    def decoding_step(self, token_ids, step, prefix, context):
        # Positions after step + 1 hold padding; the causal mask keeps them from mattering.
        prefix = generation.write_column(prefix, step + 1, token_ids)
        logits = self.model.decode(prefix, *context)
        return tf.gather(logits, step + 1, axis=1), prefix
