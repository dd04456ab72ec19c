"""Text in, text out: a SavedModel that tokenizes, decodes with the XLA loop and detokenizes."""

import tensorflow as tf

from tfmodels.export.signatures import TRANSLATE_INPUT, TRANSLATE_OUTPUT, TRANSLATE_SIGNATURE
from tfmodels.models.transformer import text


class Translator(tf.Module):
    """``translate(texts: string [batch]) -> string [batch]`` around a ``Seq2SeqTransformer``.

    A ``tf.Module`` so that ``tf.saved_model.save`` tracks the model's variables and the
    tokenizers' lookup tables. Tokenization runs outside XLA (string ops do not compile); the
    decoding loop inside is the model's jit-compiled generate function.

    Args:
        model: a trained ``Seq2SeqTransformer``.
        source_tokenizer, target_tokenizer: ``tfmodels.text.BertTokenizer``-like.
        max_length: tokens generated at most.
        method: ``"greedy"`` or ``"beam"`` (sampling methods work too, with seed 0).
        **options: passed to the generate function (``beam_width``, ``length_penalty``, ...).

    Example:
    >>> translator = Translator(model, en_tokenizer, es_tokenizer, max_length=64)  # doctest: +SKIP
    >>> translator.translate(tf.constant(["In the beginning"]))  # doctest: +SKIP
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


def export_translator(translator, export_dir):
    """Writes ``translator`` as a SavedModel whose ``serving_default`` maps texts to translations.

    Load with ``tf.saved_model.load(export_dir).translate(texts)`` or call the signature
    (input ``texts``, output ``translations``).
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TRANSLATE_INPUT)])
    def serve(texts):
        return {TRANSLATE_OUTPUT: translator.translate(texts)}

    tf.saved_model.save(translator, export_dir, signatures={TRANSLATE_SIGNATURE: serve})
    return export_dir
