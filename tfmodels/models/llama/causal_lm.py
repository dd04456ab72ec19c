"""CausalLM: next-token prediction, fine-tuning (raw text or prompt/response pairs, LoRA) and
generation with the one decoding loop of ``tfmodels.generation``."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfmodels import generation
from tfmodels.models.bert.task import RawInputTask, is_token_ids, unpack_raw_element
from tfmodels.models.llama.backbone import (
    causal_attention_mask,
    positions_from_padding,
)


@keras.saving.register_keras_serializable(package="tfmodels")
class CausalLM(RawInputTask, keras.Model):
    """A decoder-only language model: ``DecoderBackbone`` plus its output projection.

    Calling it on ``{"token_ids", "padding_mask"}`` gives float32 next-token logits ``[batch,
    length, vocab_size]``. With a ``CausalLMPreprocessor``, ``fit`` / ``evaluate`` take raw
    strings (loss on every token) or prompt/response pairs (``fit(prompts, responses)`` or
    ``{"prompts", "responses"}``: loss on the response tokens only), as lists or ``tf.data``
    datasets (the raw-input plumbing of ``RawInputTask``); ``generate`` returns completions as strings.

    Generation implements the cached-decoding protocol of ``tfmodels.generation``:
    ``decoding_init`` left-aligns the prompts (each row's last token at the same place), runs them
    in one call (prefill) into per-block key/value caches of ``prompt_length + max_new_tokens``
    positions, and ``decoding_step`` runs one token per row against the caches, so the one
    XLA-compiled loop (greedy, top-k, top-p, beam search) decodes it.

    LoRA: ``enable_lora(rank)`` adds adapters to the attention (optionally MLP) projections and
    freezes everything else, also on int8 weights (``quantize("int8")`` first);
    ``save_lora_weights`` / ``load_lora_weights`` keep the adapters alone; ``merge_lora`` folds
    them into the kernels for export.

    Args:
        backbone: a ``DecoderBackbone``.
        preprocessor: a ``CausalLMPreprocessor``, or ``None`` (token ids only).

    Example:
    >>> import numpy as np
    >>> from tfmodels.models.llama import DecoderBackbone, DecoderConfig
    >>> backbone = DecoderBackbone(DecoderConfig(
    ...     vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    ...     num_attention_heads=2, tie_word_embeddings=True))
    >>> model = CausalLM(backbone)
    >>> model({"token_ids": np.ones((2, 5), "int32"),
    ...        "padding_mask": np.ones((2, 5), "int32")}).shape
    TensorShape([2, 5, 50])
    """

    def __init__(self, backbone, preprocessor=None, **kwargs):
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        super().__init__(**kwargs)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.built = True  # the backbone builds itself

    def call(self, inputs, training=None):
        return self.backbone.token_logits(self.backbone(inputs, training=training))

    def compute_output_spec(self, inputs, training=None):
        shape = tuple(inputs["token_ids"].shape) + (self.backbone.config.vocab_size,)
        return keras.KerasTensor(shape, dtype="float32")

    # -- training on raw inputs (RawInputTask's plumbing) ---------------------------------------------

    def default_loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_weighted_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def preprocess_arrays(self, x, y=None, sample_weight=None):
        features, labels, weights = self.preprocessor(x, y, sample_weight)
        return ({name: np.asarray(value) for name, value in features.items()}, np.asarray(labels),
                np.asarray(weights))

    def preprocess_dataset(self, dataset):
        return dataset.map(lambda *element: self.preprocessor(*unpack_raw_element(element)),
                           num_parallel_calls=tf.data.AUTOTUNE)

    # -- the cached-decoding protocol -------------------------------------------------------------

    @property
    def end_token_ids(self):
        return self.preprocessor.end_token_ids if self.preprocessor is not None else ()

    @property
    def pad_token_id(self):
        return self.preprocessor.pad_token_id if self.preprocessor is not None else 0

    @property
    def banned_token_ids(self):
        if self.preprocessor is None:
            return ()
        ids = (self.preprocessor.pad_token_id, self.preprocessor.start_token_id)
        return tuple(sorted({i for i in ids if i is not None and i not in self.end_token_ids}))

    def decoding_init(self, inputs, max_new_tokens):
        """Prefill: ``(logits [batch, vocab] of the first new token, caches, context)``."""
        token_ids = tf.cast(inputs["token_ids"], tf.int32)
        padding_mask = tf.cast(inputs["padding_mask"], tf.int32)
        # Left-align: pads first, real tokens in order, so every row's last token is the last.
        order = tf.argsort(padding_mask, axis=1, stable=True)
        token_ids = tf.gather(token_ids, order, batch_dims=1)
        padding_mask = tf.gather(padding_mask, order, batch_dims=1)
        batch = tf.shape(token_ids)[0]
        # Static under XLA (the cache's size); a traced length for graphs without a fixed one.
        prompt_length = token_ids.shape[1] or tf.shape(token_ids)[1]
        key_mask = tf.concat([padding_mask, tf.ones([batch, max_new_tokens], tf.int32)], axis=1)
        caches = self.backbone.empty_cache(batch, prompt_length + max_new_tokens)
        hidden, caches = self.backbone.call_with_cache(
            token_ids, positions_from_padding(padding_mask),
            causal_attention_mask(key_mask, query_length=prompt_length), caches, 0)
        context = {
            "key_mask": key_mask,
            "prompt_lengths": tf.reduce_sum(padding_mask, axis=1),
            # Per row (the protocol's context is batched); every row holds the same value.
            "cache_start": tf.fill([batch], prompt_length),
        }
        return self.backbone.token_logits(hidden[:, -1]), caches, context

    def decoding_step(self, token_ids, step, cache, context):
        """One token per row at cache position ``prompt_length + step``."""
        index = context["cache_start"][0] + step
        positions = (context["prompt_lengths"] + step)[:, None]
        mask = causal_attention_mask(context["key_mask"], query_length=1, start_index=index)
        hidden, cache = self.backbone.call_with_cache(
            tf.cast(token_ids, tf.int32)[:, None], positions, mask, cache, index)
        return self.backbone.token_logits(hidden[:, 0]), cache

    def generate(self, prompts, max_new_tokens=32, sampler="greedy", stop_strings=None, **options):
        """Completions of ``prompts`` (the prompt excluded), cut at an end token or stop string.

        Args:
            prompts: a string, a list / array / ``tf.string`` tensor of strings, or a token-id
                dict ``{"token_ids", "padding_mask"}`` (then the generated ids are returned).
            max_new_tokens: tokens generated at most per prompt.
            sampler: ``"greedy"``, ``"top_k"``, ``"top_p"``, ``"beam"`` or a sampler object of
                ``tfmodels.generation``.
            stop_strings: strings that end a completion (it is cut before them).
            **options: ``seed``, ``temperature``, ``top_p``, ``row_max_new_tokens`` and the
                sampler's own options (``k``, ``p``, ``width``...), see
                ``tfmodels.generation.generate``.

        Returns:
            A list of strings (one string for one string prompt); ids ``[batch, max_new_tokens]``
            for a token-id dict.
        """
        if is_token_ids(prompts):
            return generation.generate(self, prompts, sampler, max_new_tokens, **options).numpy()
        if self.preprocessor is None:
            raise ValueError("generate on strings needs a preprocessor (CausalLM(backbone, "
                             "preprocessor=...)); or pass {'token_ids', 'padding_mask'}")
        single = isinstance(prompts, (str, bytes))
        inputs = self.preprocessor.generate_preprocess(prompts)
        tokens = generation.generate(self, inputs, sampler, max_new_tokens, **options)
        texts = self.preprocessor.generate_postprocess(tokens, stop_strings)
        return texts[0] if single else texts

    def apply_chat_template(self, messages, add_generation_prompt=True):
        """``messages`` rendered with the model's chat template (see the preprocessor)."""
        if self.preprocessor is None:
            raise ValueError("apply_chat_template needs a preprocessor with a chat_template")
        return self.preprocessor.apply_chat_template(messages, add_generation_prompt)

    # -- LoRA -------------------------------------------------------------------------------------

    def enable_lora(self, rank, alpha=None, feed_forward=False):
        """See ``DecoderBackbone.enable_lora``: only the adapters train afterwards."""
        self.backbone.enable_lora(rank, alpha, feed_forward)
        generation.forget_decode_functions(self)  # traced before: without the adapters

    def merge_lora(self):
        """Folds the adapters into the kernels (``DecoderBackbone.merge_lora``)."""
        self.backbone.merge_lora()
        generation.forget_decode_functions(self)

    def save_lora_weights(self, path):
        """Writes the adapters alone (an ``.npz`` file, kilobytes to megabytes)."""
        adapters = self.backbone.lora_weights()
        if not adapters:
            raise ValueError("no LoRA adapters to save: call enable_lora(rank) first")
        with open(path, "wb") as f:
            np.savez(f, **{name: ops.convert_to_numpy(v) for name, v in adapters.items()})

    def load_lora_weights(self, path):
        """Reads adapters written by ``save_lora_weights`` into this model (enable LoRA with the
        same rank first); every adapter must be in the file with its shape."""
        adapters = self.backbone.lora_weights()
        if not adapters:
            raise ValueError("enable_lora(rank) before load_lora_weights")
        with np.load(path) as stored:
            problems = [f"{name}: missing" for name in adapters if name not in stored]
            problems += [f"{name}: not an adapter of this model" for name in stored.files
                         if name not in adapters]
            problems += [f"{name}: shape {stored[name].shape}, the model's is "
                         f"{tuple(v.shape)}" for name, v in adapters.items()
                         if name in stored and stored[name].shape != tuple(v.shape)]
            if problems:
                raise ValueError(f"{path} does not fit this model's adapters: {problems[:5]}")
            for name, variable in adapters.items():
                variable.assign(stored[name])

    # -- config -----------------------------------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


