"""Tiny decodable models for the decoding-loop tests: a decoder-only LM and a Seq2SeqTransformer.

Each case gives the model, a batch of inputs and an uncached reference: ``next_logits(inputs,
generated)`` runs the model's full forward pass over the prompt/source and the tokens generated so
far and returns the last position's logits, which the tests compare the cached loop against.
"""

import dataclasses
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfmodels.layers.attention import MultiHeadAttention
from tfmodels.layers.masking import make_causal_mask
from tfmodels.models.transformer import Seq2SeqTransformer

VOCAB = 23
PAD, START, END = 0, 1, 2


class TinyDecoderLM(keras.Model):
    """Token + position embeddings, one causal self-attention layer with a real key/value cache,
    and an output projection; prompts are left-padded (``{"token_ids", "padding_mask"}``)."""

    end_token_ids = (END,)
    pad_token_id = PAD
    banned_token_ids = (PAD, START)

    def __init__(self, vocab_size=VOCAB, hidden=16, heads=2, max_positions=64, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.head_dim = heads, hidden // heads
        self.tokens = keras.layers.Embedding(vocab_size, hidden)
        self.positions = keras.layers.Embedding(max_positions, hidden)
        self.attention = MultiHeadAttention(heads, self.head_dim)
        self.output_layer = keras.layers.Dense(vocab_size)

    def _forward(self, ids, positions, attention_mask, cache=None, index=None):
        x = self.tokens(ids) + self.positions(positions)
        if cache is None:
            attended = self.attention(x, attention_mask=attention_mask)
        else:
            attended, cache = self.attention(
                x, attention_mask=attention_mask, cache=cache, cache_update_index=index
            )
        return self.output_layer(keras.activations.gelu(x + attended)), cache

    @staticmethod
    def _positions(padding_mask):
        # Each row counts positions from its first real token (left padding).
        return ops.maximum(ops.cumsum(ops.cast(padding_mask, "int32"), axis=1) - 1, 0)

    def call(self, inputs):
        ids, mask = inputs["token_ids"], ops.cast(inputs["padding_mask"], "bool")
        attention_mask = make_causal_mask(ops.shape(ids)[1]) & mask[:, None, :]
        return self._forward(ids, self._positions(mask), attention_mask)[0]

    def decoding_init(self, inputs, max_new_tokens):
        ids, mask = inputs["token_ids"], ops.cast(inputs["padding_mask"], "bool")
        batch, prompt_length = ops.shape(ids)[0], ops.shape(ids)[1]
        cache = ops.zeros((batch, 2, prompt_length + max_new_tokens, self.heads, self.head_dim))
        attention_mask = self._attention_mask(mask, cache, 0, prompt_length)
        logits, cache = self._forward(ids, self._positions(mask), attention_mask, cache, 0)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        return logits[:, -1], {"kv": cache}, {"prompt_mask": mask, "lengths": lengths}

    def decoding_step(self, token_ids, step, cache, context):
        index = ops.shape(context["prompt_mask"])[1] + step
        attention_mask = self._attention_mask(context["prompt_mask"], cache["kv"], index, 1)
        positions = (context["lengths"] + step)[:, None]
        logits, kv = self._forward(token_ids[:, None], positions, attention_mask, cache["kv"], index)
        return logits[:, 0], {"kv": kv}

    @staticmethod
    def _attention_mask(prompt_mask, cache, index, query_length):
        """Causal over the whole cache, with the prompt's left padding masked out."""
        batch, prompt_length, total = ops.shape(prompt_mask)[0], ops.shape(prompt_mask)[1], ops.shape(cache)[2]
        key_mask = ops.concatenate([prompt_mask, ops.ones((batch, total - prompt_length), "bool")], 1)
        return make_causal_mask(query_length, total, index) & key_mask[:, None, :]


@dataclasses.dataclass
class Case:
    name: str
    model: Any
    inputs: Any
    next_logits: Callable  # (generated [batch, t] int32) -> [batch, vocab] uncached logits
    batch: int

    def row(self, i):
        """The same case with only row ``i`` of the batch."""
        inputs = tf.nest.map_structure(lambda t: t[i : i + 1], self.inputs)
        return dataclasses.replace(self, inputs=inputs, batch=1)


def decoder_case():
    keras.utils.set_random_seed(3)
    model = TinyDecoderLM()
    ids = np.array([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12], [0, 0, 0, 3, 4]], "int32")
    inputs = {"token_ids": tf.constant(ids), "padding_mask": tf.constant(ids != 0)}
    model(inputs)

    def next_logits(case_inputs, generated):
        ids = tf.concat([case_inputs["token_ids"], generated], axis=1)
        mask = tf.concat([case_inputs["padding_mask"], tf.ones_like(generated, tf.bool)], axis=1)
        return model({"token_ids": ids, "padding_mask": mask})[:, -1].numpy()

    return Case("decoder_only", model, inputs, next_logits, 3)


def seq2seq_case():
    keras.utils.set_random_seed(4)
    model = Seq2SeqTransformer(
        VOCAB, hidden_size=16, num_heads=2, intermediate_size=32, num_encoder_layers=1,
        num_decoder_layers=1, dropout=0.0, max_source_length=8, max_target_length=16,
        pad_id=PAD, start_id=START, end_id=END,
    )
    model.build()
    source = tf.constant([[5, 6, 7, 8, 0], [9, 10, 11, 12, 13], [3, 4, 0, 0, 0]], tf.int32)

    def next_logits(case_inputs, generated):
        start = tf.fill([generated.shape[0], 1], START)
        target = tf.concat([start, generated], axis=1)
        return model({"source_ids": case_inputs, "target_ids": target})[:, -1].numpy()

    return Case("seq2seq", model, source, next_logits, 3)
