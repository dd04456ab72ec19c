"""CausalLMPreprocessor: strings (or prompt/response pairs) -> decoder inputs, labels and weights."""

import keras
import numpy as np
import tensorflow as tf

from tfmodels.text.byte_pair import BytePairTokenizer  # noqa: F401 (registered before deserializing)
from tfmodels.text.preprocessing import TokenizingLayer

PROMPTS, RESPONSES = "prompts", "responses"


def _strings(x):
    """A str, list / array of str or bytes, or string tensor -> 1-D ``tf.string`` tensor."""
    if isinstance(x, str):
        x = [x]
    x = tf.convert_to_tensor(x, tf.string)
    return tf.reshape(x, [-1])


def _right_pad(ragged, length, value):
    return ragged.to_tensor(default_value=value, shape=[None, length])


@keras.saving.register_keras_serializable(package="tfmodels")
class CausalLMPreprocessor(TokenizingLayer):
    """Tokenizes text for a ``CausalLM``: training examples (next-token labels and weights) and
    generation prompts. Core TensorFlow ops, so it maps ``tf.data`` datasets.

    Training (``preprocessor(x, y=None)``), with ``L = sequence_length``:

    - raw strings ``x``: ``[start] + tokens + [end]`` cut to ``L + 1`` tokens; features are the
      first ``L``, labels the last ``L`` (shifted by one); every real label has weight 1;
    - prompt/response pairs (``x`` prompts and ``y`` responses, or ``x = {"prompts": ...,
      "responses": ...}``): ``[start] + prompt + response + [end]``; only the response tokens and
      the end token are labels with weight 1 (the loss ignores the prompt).

    Returns ``({"token_ids", "padding_mask"}, labels, sample_weight)``, right-padded with
    ``pad_token_id``; ``CausalLM.fit`` / ``evaluate`` call it on raw inputs.

    Generation (``generate_preprocess``): prompt tokens after the start token, no end token,
    right-padded to a power of two (few distinct shapes: few XLA compilations); the longest
    prompts keep their last ``sequence_length`` tokens. ``CausalLM.decoding_init`` left-aligns them.

    Args:
        tokenizer: a ``tfmodels.text.BytePairTokenizer`` (or any tokenizer with ``tokenize`` /
            ``detokenize`` / ``token_to_id``).
        sequence_length: training length ``L`` and the longest generation prompt.
        end_token_ids: ids that end a sequence (generation stops at any of them); the first is
            appended to training examples. SmolLM2: ``[2]`` (``<|im_end|>``).
        start_token_id: id prepended to every sequence, or ``None`` (SmolLM2: no start token).
        pad_token_id: id written after the end of a sequence; defaults to the first end id.
        add_end_token: append the end token to training examples.
        chat_template: a Jinja chat template (Hugging Face / GGUF ``tokenizer.chat_template``)
            for ``apply_chat_template``; ``None`` if the model has none.

    Example:
    >>> from tfmodels.text.byte_pair import BytePairTokenizer, bytes_to_unicode
    >>> tokenizer = BytePairTokenizer(list(bytes_to_unicode().values()) + ["<e>"],
    ...                               [], special_tokens=["<e>"])
    >>> preprocessor = CausalLMPreprocessor(tokenizer, sequence_length=4, end_token_ids=[256])
    >>> x, labels, weights = preprocessor(["hi"])
    >>> x["token_ids"].numpy().tolist(), labels.numpy().tolist(), weights.numpy().tolist()
    ([[71, 72, 256, 256]], [[72, 256, 256, 256]], [[1.0, 1.0, 0.0, 0.0]])
    """

    def __init__(self, tokenizer, sequence_length=1024, end_token_ids=(), start_token_id=None,
                 pad_token_id=None, add_end_token=True, chat_template=None, **kwargs):
        super().__init__(tokenizer, sequence_length, **kwargs)
        self.end_token_ids = tuple(int(i) for i in end_token_ids)
        if add_end_token and not self.end_token_ids:
            raise ValueError("add_end_token=True needs end_token_ids")
        self.start_token_id = start_token_id
        if pad_token_id is None:
            pad_token_id = self.end_token_ids[0] if self.end_token_ids else 0
        self.pad_token_id = int(pad_token_id)
        self.add_end_token = add_end_token
        self.chat_template = chat_template

    # -- training ---------------------------------------------------------------------------------

    def _segments(self, texts, weight):
        ids = tf.cast(self.tokenizer.tokenize(_strings(texts)), tf.int32)
        return ids, tf.ones_like(ids, tf.float32) * weight

    def _constant_column(self, like, value, weight):
        column = tf.fill([like.nrows(), 1], tf.constant(value, tf.int32))
        column = tf.RaggedTensor.from_tensor(column)
        return column, tf.ones_like(column, tf.float32) * weight

    def call(self, x, y=None, sample_weight=None):
        if isinstance(x, dict):
            if set(x) != {PROMPTS, RESPONSES}:
                raise ValueError(f"a dict input needs exactly the keys {PROMPTS!r} and "
                                 f"{RESPONSES!r}; got {sorted(x)}")
            if y is not None:
                raise ValueError("pass responses in the dict or as y, not both")
            x, y = x[PROMPTS], x[RESPONSES]
        # Raw text: every token is a label; pairs: only the response (and the end token).
        parts = [self._segments(x, 0.0 if y is not None else 1.0)]
        if y is not None:
            parts.append(self._segments(y, 1.0))
        if self.start_token_id is not None:
            parts.insert(0, self._constant_column(parts[0][0], self.start_token_id, 0.0))
        if self.add_end_token:
            parts.append(self._constant_column(parts[0][0], self.end_token_ids[0], 1.0))
        ids = tf.concat([ids for ids, _ in parts], axis=1)
        weights = tf.concat([w for _, w in parts], axis=1)
        length = self.sequence_length + 1
        ids, weights = ids[:, :length], weights[:, :length]
        mask = _right_pad(tf.ones_like(ids), length, 0)
        ids = _right_pad(ids, length, self.pad_token_id)
        weights = _right_pad(weights, length, 0.0)
        features = {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}
        labels, label_weights = ids[:, 1:], weights[:, 1:] * tf.cast(mask[:, 1:], tf.float32)
        if sample_weight is not None:
            label_weights *= tf.cast(tf.reshape(sample_weight, [-1, 1]), tf.float32)
        return features, labels, label_weights

    # -- generation -------------------------------------------------------------------------------

    def generate_preprocess(self, prompts):
        """Prompt strings -> right-padded ``{"token_ids", "padding_mask"}`` (numpy int32)."""
        ids = tf.cast(self.tokenizer.tokenize(_strings(prompts)), tf.int32)
        if self.start_token_id is not None:
            ids = tf.concat([self._constant_column(ids, self.start_token_id, 0.0)[0], ids], axis=1)
        lengths = ids.row_lengths()
        # Too long: keep the end of the prompt, which the continuation follows.
        ids = tf.ragged.boolean_mask(
            ids, tf.ragged.range(lengths) >= tf.expand_dims(lengths - self.sequence_length, 1))
        longest = max(1, int(tf.reduce_max(ids.row_lengths())))
        width = min(max(16, 1 << (longest - 1).bit_length()), max(longest, self.sequence_length))
        mask = _right_pad(tf.ones_like(ids), width, 0)
        return {"token_ids": _right_pad(ids, width, self.pad_token_id).numpy(),
                "padding_mask": mask.numpy()}

    def generate_postprocess(self, token_ids, stop_strings=None):
        """Generated ids ``[batch, n]`` -> strings, cut before the first end token and before the
        first of ``stop_strings``."""
        token_ids = np.asarray(token_ids)
        is_end = np.isin(token_ids, self.end_token_ids) if self.end_token_ids else \
            np.zeros(token_ids.shape, bool)
        lengths = np.where(is_end.any(1), is_end.argmax(1), token_ids.shape[1])
        ragged = tf.RaggedTensor.from_tensor(token_ids.astype("int32"), lengths=lengths)
        texts = [t.decode("utf-8", errors="replace")
                 for t in self.tokenizer.detokenize(ragged).numpy().tolist()]
        for stop in stop_strings or ():
            texts = [t.split(stop, 1)[0] for t in texts]
        return texts

    # -- chat -------------------------------------------------------------------------------------

    def apply_chat_template(self, messages, add_generation_prompt=True):
        """Renders ``messages`` (``[{"role": ..., "content": ...}, ...]``) with the model's own
        Jinja chat template, as Hugging Face's ``apply_chat_template`` does (sandboxed Jinja)."""
        if self.chat_template is None:
            raise ValueError("this preprocessor has no chat_template (the model file had none); "
                             "pass chat_template=... to CausalLMPreprocessor")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not {"role", "content"} <= set(message):
                raise ValueError(f"message {i} must be a dict with 'role' and 'content', "
                                 f"got {message!r}")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message):
            raise ValueError(f"chat template: {message}")

        environment.globals["raise_exception"] = raise_exception
        template = environment.from_string(self.chat_template)
        return template.render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                               bos_token="", eos_token="")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "end_token_ids": list(self.end_token_ids),
                "start_token_id": self.start_token_id,
                "pad_token_id": self.pad_token_id,
                "add_end_token": self.add_end_token,
                "chat_template": self.chat_template,
            }
        )
        return config
