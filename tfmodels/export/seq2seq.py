"""Text in, text out for ``Seq2SeqTransformer``: a SavedModel that tokenizes, decodes with the XLA loop
and detokenizes (``Translator``, ``export_translator``; formerly ``tfmodels.models.transformer.export``)."""

import tensorflow as tf

from tfmodels.export.archive import SERVING_SAVE_OPTIONS
from tfmodels.export.signatures import (
    COMPLETION_OUTPUT,
    EXAMPLES_INPUT,
    GENERATE_SIGNATURE,
    MAX_NEW_TOKENS_INPUT,
    NUM_GENERATED_TOKENS_OUTPUT,
    PROMPT_INPUT,
    TRANSLATE_EXAMPLES_SIGNATURE,
    TRANSLATE_INPUT,
    TRANSLATE_OUTPUT,
    TRANSLATE_SIGNATURE,
)
from tfmodels.export.warmup import predict_warmup_log, write_prediction_logs
from tfmodels.models.transformer import text


class Translator(tf.Module):
    """``translate(texts: string [batch]) -> string [batch]`` around a ``Seq2SeqTransformer``.

    A ``tf.Module`` so that ``tf.saved_model.save`` tracks the model's variables and the
    tokenizers' lookup tables. Tokenization runs outside XLA (string ops do not compile); the
    decoding loop inside is the model's jit-compiled generate function (``tfmodels.generation``).
    ``generate`` takes raw Python strings too: ``translator.generate(["In the beginning"])``
    returns a list of Python strings.

    Args:
        model: a trained ``Seq2SeqTransformer``.
        source_tokenizer, target_tokenizer: ``tfmodels.text.BertTokenizer``-like.
        max_length: tokens generated at most.
        method: ``"greedy"`` or ``"beam"`` (sampling methods work too, with seed 0), or a
            ``tfmodels.generation`` sampler object.
        **options: the sampler's options (``beam_width``, ``length_penalty``, ...).

    Example:
    >>> translator = Translator(model, en_tokenizer, es_tokenizer, max_length=64)  # doctest: +SKIP
    >>> translator.translate(tf.constant(["In the beginning"]))  # doctest: +SKIP
    >>> translator.generate(["In the beginning", "God"])  # doctest: +SKIP
    ['En el principio', 'Dios']
    """

    def __init__(self, model, source_tokenizer, target_tokenizer, max_length=64,
                 method="greedy", **options):
        super().__init__(name="translator")
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.max_length = max_length
        self._generate = model.get_generate_function(method, max_length, **options)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def translate(self, texts):
        source_ids = text.encode_source(
            self.source_tokenizer, texts, self.model.max_source_length
        )
        tokens, _ = self._generate(source_ids, tf.zeros([2], tf.int32))
        return text.decode_target(self.target_tokenizer, tokens, self.model.end_id)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=PROMPT_INPUT),
                                  tf.TensorSpec([None], tf.int32, name=MAX_NEW_TOKENS_INPUT)])
    def complete(self, prompt, max_new_tokens):
        """The general generation contract (``tfmodels.export.signatures``): per row at most
        ``max_new_tokens`` (in ``[1, max_length]``) tokens -> ``completion`` (end token dropped)
        and ``num_generated_tokens``."""
        check = tf.debugging.Assert(
            tf.reduce_all((max_new_tokens >= 1) & (max_new_tokens <= self.max_length)),
            [f"max_new_tokens must be in [1, {self.max_length}]; got", max_new_tokens])
        with tf.control_dependencies([check]):
            source_ids = text.encode_source(self.source_tokenizer, prompt, self.model.max_source_length)
        tokens, _ = self._generate(source_ids, tf.zeros([2], tf.int32), max_new_tokens)
        # A row cut by its limit is padded, not ended: padding ends it too (pad is never generated).
        tokens = tf.where(tf.equal(tokens, self.model.pad_id), self.model.end_id, tokens)
        lengths = text.strip_after_end(tokens, self.model.end_id).row_lengths()
        return {COMPLETION_OUTPUT: text.decode_target(self.target_tokenizer, tokens, self.model.end_id),
                NUM_GENERATED_TOKENS_OUTPUT: tf.cast(lengths, tf.int64)}

    def generate(self, texts):
        """Raw strings (one ``str`` or a list) -> their translations as Python strings."""
        single = isinstance(texts, str)
        texts = tf.constant([texts] if single else list(texts), tf.string)
        outputs = [t.decode("utf-8") for t in self.translate(texts).numpy()]
        return outputs[0] if single else outputs


def export_translator(translator, export_dir, example_feature=None, warmup_texts=None, model_name=""):
    """Writes ``translator`` as a SavedModel whose ``serving_default`` maps texts to translations.

    Load with ``tf.saved_model.load(export_dir).translate(texts)`` or call the signature
    (input ``texts``, output ``translations``). The ``generate`` signature offers the general
    generation names too (``prompt``, ``max_new_tokens`` -> ``completion``,
    ``num_generated_tokens``), as ``export_causal_lm``'s does.

    Args:
        translator: a ``Translator``.
        export_dir: the SavedModel directory (e.g. ``<base>/<model>/<version>``).
        example_feature: when given, also a ``translate_examples`` signature for evaluation (TFMA):
            serialized tf.Examples (``examples``) whose ``example_feature`` holds the source text ->
            ``translations``.
        warmup_texts: when given, texts written as the warmup Predict request of ``serving_default``.
        model_name: the model name put in the warmup request's ModelSpec.
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TRANSLATE_INPUT)])
    def serve(texts):
        return {TRANSLATE_OUTPUT: translator.translate(texts)}

    signatures = {TRANSLATE_SIGNATURE: serve, GENERATE_SIGNATURE: translator.complete}
    if example_feature:
        spec = {example_feature: tf.io.FixedLenFeature([], tf.string, default_value="")}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
        def serve_examples(examples):
            return serve(tf.io.parse_example(examples, spec)[example_feature])

        signatures[TRANSLATE_EXAMPLES_SIGNATURE] = serve_examples
    tf.saved_model.save(translator, export_dir, signatures=signatures, options=SERVING_SAVE_OPTIONS)
    if warmup_texts:
        write_prediction_logs(export_dir, [predict_warmup_log(
            TRANSLATE_SIGNATURE, {TRANSLATE_INPUT: list(warmup_texts)}, model_name=model_name)])
    return export_dir
