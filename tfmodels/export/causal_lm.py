"""Text generation as a TF Serving SavedModel: ``export_causal_lm``.

Two signatures, every input batched along its first dimension (so a server's batching can merge
requests):

- ``generate`` (greedy): ``prompt`` DT_STRING ``[batch]``, ``max_new_tokens`` DT_INT32 ``[batch]``;
- ``sample`` (temperature / nucleus sampling): the same plus ``temperature``, ``top_p`` DT_FLOAT
  ``[batch]`` and ``seed`` DT_INT64 ``[batch]``; a row's result depends only on its own inputs.

With ``example_feature``, a third, ``generate_examples`` (for TFMA's Evaluator): ``examples``
DT_STRING ``[batch]`` serialized ``tf.Example``s whose ``example_feature`` holds the prompt
(wrapped in ``prompt_prefix`` / ``prompt_suffix``), decoded greedily to the export's
``max_new_tokens``.

All return ``completion`` DT_STRING ``[batch]`` (the prompt excluded, cut before the first end
token; bytes that do not form UTF-8 -- a character cut by the token limit -- become U+FFFD) and
``num_generated_tokens`` DT_INT64 ``[batch]`` (the completion's tokens, the end token not
counted). Tokenizer (``tfmodels.text.BytePairTokenizer``, core TF ops), key/value cache and the
XLA-compiled decoding loop of ``tfmodels.generation`` are inside: the SavedModel loads where
``tensorflow_text`` cannot be imported.

Bad input is an ``INVALID_ARGUMENT`` error naming the problem: an empty prompt, a prompt that is
not valid UTF-8, a prompt longer than ``max_prompt_tokens`` tokens, ``max_new_tokens`` outside
``[1, max_new_tokens of the export]``, a ``temperature`` <= 0, a ``top_p`` outside (0, 1], or
inputs with different batch sizes.

Prompts are padded to the smallest of a few fixed widths (``prompt_buckets``, powers of two by
default), each a separate static shape: XLA then compiles one loop per width and batch size.
"""

import keras
import tensorflow as tf

from tfmodels.export.archive import write_archive
from tfmodels.export.signatures import (
    COMPLETION_OUTPUT,
    EXAMPLES_INPUT,
    GENERATE_EXAMPLES_SIGNATURE,
    GENERATE_SIGNATURE,
    MAX_NEW_TOKENS_INPUT,
    NUM_GENERATED_TOKENS_OUTPUT,
    PROMPT_INPUT,
    SAMPLE_SIGNATURE,
    SEED_INPUT,
    TEMPERATURE_INPUT,
    TOP_P_INPUT,
)
from tfmodels.export.warmup import write_prediction_logs
from tfmodels.generation import Greedy, TopP, make_decode_function


def default_prompt_buckets(max_prompt_tokens, smallest=16):
    """Powers of two from ``smallest`` up to (and ending with) ``max_prompt_tokens``."""
    buckets, width = [], smallest
    while width < max_prompt_tokens:
        buckets.append(width)
        width *= 2
    return buckets + [max_prompt_tokens]


def _check(condition, *message):
    """An ``Assert`` raising INVALID_ARGUMENT with ``message`` (strings and tensors)."""
    return tf.debugging.Assert(condition, list(message), summarize=16)


def _rows(bad):
    return tf.reshape(tf.where(bad), [-1])


class _CausalLMServer:
    """The graph the signatures run: validation, tokenization, the decoding loop, detokenization."""

    def __init__(self, model, max_prompt_tokens, max_new_tokens, prompt_buckets, jit_compile):
        self.model = model
        self.preprocessor = model.preprocessor
        self.tokenizer = model.preprocessor.tokenizer
        self.max_prompt_tokens = max_prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.buckets = sorted(prompt_buckets)
        self.greedy = make_decode_function(model, Greedy(), max_new_tokens, jit_compile)
        self.sample = make_decode_function(model, TopP(), max_new_tokens, jit_compile)

    def _validate(self, prompt, max_new_tokens, extra=()):
        batch = tf.shape(prompt)[0]
        checks = [
            _check(tf.reduce_all(tf.strings.length(prompt) > 0),
                   "prompt must not be empty; empty rows:", _rows(tf.strings.length(prompt) == 0)),
            _check(tf.reduce_all(self._valid_utf8(prompt)),
                   "prompt is not valid UTF-8; rows:", _rows(~self._valid_utf8(prompt))),
            _check(tf.equal(tf.shape(max_new_tokens)[0], batch),
                   "max_new_tokens needs one value per prompt; prompts:", batch,
                   "max_new_tokens:", tf.shape(max_new_tokens)[0]),
            _check(tf.reduce_all((max_new_tokens >= 1) & (max_new_tokens <= self.max_new_tokens)),
                   f"max_new_tokens must be in [1, {self.max_new_tokens}]; got", max_new_tokens),
        ]
        for name, values, ok, allowed in extra:
            checks.append(_check(tf.equal(tf.shape(values)[0], batch),
                                 f"{name} needs one value per prompt; prompts:", batch,
                                 f"{name}:", tf.shape(values)[0]))
            if ok is not None:
                checks.append(_check(tf.reduce_all(ok), f"{name} must be {allowed}; got", values))
        return checks

    @staticmethod
    def _valid_utf8(prompt):
        # Invalid bytes become U+FFFD; a valid string (U+FFFD included) is unchanged.
        return tf.equal(tf.strings.unicode_transcode(prompt, "UTF-8", "UTF-8", errors="replace"),
                        prompt)

    def _token_ids(self, prompt):
        ids = tf.cast(self.tokenizer.tokenize(prompt), tf.int32)
        start = self.preprocessor.start_token_id
        if start is not None:
            ids = tf.concat([tf.fill([ids.nrows(), 1], tf.constant(start, tf.int32)), ids], axis=1)
        lengths = ids.row_lengths()
        too_long = lengths > self.max_prompt_tokens
        check = _check(~tf.reduce_any(too_long),
                       f"prompt is longer than the context of {self.max_prompt_tokens} tokens; "
                       "rows:", _rows(too_long), "tokens:", tf.boolean_mask(lengths, too_long))
        return ids, check

    def run(self, decode, prompt, max_new_tokens, *options, extra=()):
        with tf.control_dependencies(self._validate(prompt, max_new_tokens, extra)):
            ids, length_check = self._token_ids(prompt)
        with tf.control_dependencies([length_check]):
            longest = tf.reduce_max(tf.concat([ids.row_lengths(), [1]], 0))
        buckets = tf.constant(self.buckets, tf.int64)
        index = tf.cast(tf.argmax(tf.cast(buckets >= longest, tf.int32)), tf.int32)

        def decode_width(width):
            def branch():
                inputs = {
                    "token_ids": ids.to_tensor(self.preprocessor.pad_token_id, shape=[None, width]),
                    "padding_mask": tf.ones_like(ids).to_tensor(0, shape=[None, width]),
                }
                tokens, _ = decode(inputs, *options)
                return tokens
            return branch

        tokens = tf.switch_case(index, [decode_width(w) for w in self.buckets])
        tokens.set_shape([None, self.max_new_tokens])
        return self._completion(tokens)

    def _completion(self, tokens):
        # Padding follows the end token, or a row's token limit (pad is never generated otherwise).
        ends = tf.constant(list(self.model.end_token_ids) + [self.model.pad_token_id], tf.int32)
        is_end = tf.reduce_any(tf.equal(tokens[..., None], ends), axis=-1)
        # Tokens before the first end token (the rest is the end token and padding).
        kept = tf.equal(tf.cumsum(tf.cast(is_end, tf.int32), axis=1), 0)
        lengths = tf.reduce_sum(tf.cast(kept, tf.int64), axis=1)
        ragged = tf.RaggedTensor.from_tensor(tokens, lengths=lengths)
        text = self.tokenizer.detokenize(ragged)
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
        return {COMPLETION_OUTPUT: text, NUM_GENERATED_TOKENS_OUTPUT: lengths}

    def serve_generate(self, prompt, max_new_tokens):
        return self.run(self.greedy, prompt, max_new_tokens,
                        tf.zeros([2], tf.int32), max_new_tokens)

    def serve_sample(self, prompt, max_new_tokens, temperature, top_p, seed):
        extra = (
            ("temperature", temperature, temperature > 0, "> 0"),
            ("top_p", top_p, (top_p > 0) & (top_p <= 1), "in (0, 1]"),
            ("seed", seed, None, None),
        )
        return self.run(self.sample, prompt, max_new_tokens, seed, max_new_tokens, temperature,
                        top_p, extra=extra)

    def examples_function(self, feature, prefix, suffix):
        """``examples`` -> greedy completions of the prompts in ``feature`` (wrapped), all at the
        export's ``max_new_tokens``."""
        spec = {feature: tf.io.FixedLenFeature([], tf.string, default_value="")}

        def serve_examples(examples):
            prompt = tf.io.parse_example(examples, spec)[feature]
            prompt = tf.strings.join([prefix, prompt, suffix])
            return self.serve_generate(prompt, tf.fill(tf.shape(prompt), self.max_new_tokens))

        return serve_examples


def _spec(dtype, name):
    return tf.TensorSpec([None], dtype, name=name)


def export_causal_lm(model, export_dir, *, max_new_tokens=64, max_prompt_tokens=None,
                     prompt_buckets=None, warmup_prompts=("Hello",), model_name="",
                     jit_compile=True, example_feature=None, prompt_prefix="", prompt_suffix=""):
    """Writes ``model`` as a SavedModel with ``generate`` and ``sample`` signatures (see module).

    For int8 weights quantize first (``model.quantize("int8")``); the export keeps the weights as
    they are, each stored once.

    Args:
        model: a ``tfmodels.CausalLM`` with a ``CausalLMPreprocessor`` (its tokenizer goes inside).
        export_dir: the SavedModel directory (e.g. ``<base>/<model>/<version>``).
        max_new_tokens: the most tokens a request may ask for (sizes the cache and the loop).
        max_prompt_tokens: the longest prompt in tokens; defaults to the preprocessor's
            ``sequence_length``. With ``max_new_tokens`` it must fit the model's context
            (``max_position_embeddings``).
        prompt_buckets: prompt widths compiled for; defaults to powers of two from 16.
        warmup_prompts: prompts written as warmup requests of both signatures (TF Serving replays
            them when it loads the version); empty for none.
        model_name: the model name put in the warmup requests' ModelSpec.
        jit_compile: compile the decoding loop with XLA.
        example_feature: the prompt feature of the ``generate_examples`` signature (serialized
            ``tf.Example``s in); ``None``: no such signature.
        prompt_prefix, prompt_suffix: text around each ``generate_examples`` prompt (e.g. a chat
            template's); the other signatures take prompts as they are.

    Returns:
        ``export_dir``.

    Example:
    >>> export_causal_lm(model, "/tmp/smollm2/1", max_new_tokens=128)  # doctest: +SKIP
    >>> loaded = tf.saved_model.load("/tmp/smollm2/1")  # doctest: +SKIP
    >>> loaded.signatures["generate"](prompt=tf.constant(["Hi"]),
    ...                               max_new_tokens=tf.constant([8]))  # doctest: +SKIP
    """
    if getattr(model, "preprocessor", None) is None:
        raise ValueError("export_causal_lm needs a CausalLM with a preprocessor (the tokenizer "
                         "goes inside the SavedModel)")
    max_prompt_tokens = max_prompt_tokens or model.preprocessor.sequence_length
    for name, value in (("max_new_tokens", max_new_tokens), ("max_prompt_tokens", max_prompt_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    context = getattr(getattr(getattr(model, "backbone", None), "config", None),
                      "max_position_embeddings", None)
    if context is not None and max_prompt_tokens + max_new_tokens > context:
        raise ValueError(f"max_prompt_tokens + max_new_tokens = {max_prompt_tokens + max_new_tokens}"
                         f" exceeds the model's context of {context} positions")
    prompt_buckets = list(prompt_buckets or default_prompt_buckets(max_prompt_tokens))
    if max(prompt_buckets) != max_prompt_tokens or min(prompt_buckets) < 1:
        raise ValueError(f"prompt_buckets must be >= 1 and end at max_prompt_tokens="
                         f"{max_prompt_tokens}; got {prompt_buckets}")
    server = _CausalLMServer(model, max_prompt_tokens, max_new_tokens, prompt_buckets, jit_compile)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(server.tokenizer)
    prompt_specs = [_spec(tf.string, PROMPT_INPUT), _spec(tf.int32, MAX_NEW_TOKENS_INPUT)]
    archive.add_endpoint(GENERATE_SIGNATURE, server.serve_generate, input_signature=prompt_specs)
    archive.add_endpoint(SAMPLE_SIGNATURE, server.serve_sample, input_signature=prompt_specs + [
        _spec(tf.float32, TEMPERATURE_INPUT), _spec(tf.float32, TOP_P_INPUT),
        _spec(tf.int64, SEED_INPUT)])
    if example_feature:
        archive.add_endpoint(GENERATE_EXAMPLES_SIGNATURE,
                             server.examples_function(example_feature, prompt_prefix, prompt_suffix),
                             input_signature=[_spec(tf.string, EXAMPLES_INPUT)])
    write_archive(archive, export_dir)
    if warmup_prompts:
        _write_warmup(export_dir, list(warmup_prompts), min(max_new_tokens, 4), model_name)
    return export_dir


def _write_warmup(export_dir, prompts, new_tokens, model_name):
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    n = len(prompts)
    inputs = {
        GENERATE_SIGNATURE: {PROMPT_INPUT: (prompts, tf.string),
                             MAX_NEW_TOKENS_INPUT: ([new_tokens] * n, tf.int32)},
    }
    inputs[SAMPLE_SIGNATURE] = dict(inputs[GENERATE_SIGNATURE], **{
        TEMPERATURE_INPUT: ([1.0] * n, tf.float32), TOP_P_INPUT: ([0.9] * n, tf.float32),
        SEED_INPUT: (list(range(n)), tf.int64)})
    logs = []
    for signature, tensors in inputs.items():
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
        for name, (values, dtype) in tensors.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)))
    write_prediction_logs(export_dir, logs)
