"""Export a token classifier (NER), tokenizer, windows and entity decoding included, as a TF Serving SavedModel.

The `extract_entities` signature (names in `tfmodels.export.signatures`) takes `text` (DT_STRING [batch]) and
returns, per text, its entities padded to the batch's largest count: `entity_text`, `entity_type` (DT_STRING
[batch, n], padded with ""), `entity_start`, `entity_end` (DT_INT64 [batch, n], Unicode character offsets into
the text, so `text[start:end] == entity_text` in Python; padded with -1), `entity_score` (DT_FLOAT [batch, n],
padded with 0) and `num_entities` (DT_INT64 [batch]). A text over `max_text_chars` characters, or a request over
`max_windows` windows, fails with INVALID_ARGUMENT before the model runs; the model runs `window_chunk` windows
at a time, so cost grows linearly with the request and memory holds one chunk's activations. The graph runs the same code as
`BertTokenClassifier.predict_entities` (`tfmodels.text.alignment`) in core TF ops only, so it loads where
`tensorflow_text` cannot be imported. An empty or whitespace-only text has no entities (`num_entities` 0).
"""

from typing import Callable, Mapping, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from tfmodels.export.archive import write_archive
from tfmodels.export.signatures import (
    DEFAULT_SIGNATURE,
    ENTITIES_SIGNATURE,
    ENTITIES_TEXT_INPUT,
    ENTITY_END_OUTPUT,
    ENTITY_SCORE_OUTPUT,
    ENTITY_START_OUTPUT,
    ENTITY_TEXT_OUTPUT,
    ENTITY_TYPE_OUTPUT,
    EXAMPLES_INPUT,
    NUM_ENTITIES_OUTPUT,
    PREDICTED_TAGS_OUTPUT,
    TAG_EXAMPLES_SIGNATURE,
)
from tfmodels.export.warmup import predict_warmup_log, write_prediction_logs
from tfmodels.text import alignment
from tfmodels.text.windows import after_checks, check_text_chars, check_windows, run_in_chunks

# Request limits of the exported signatures (export options): a 100,000-character text is ~40 pages.
DEFAULT_MAX_TEXT_CHARS = 100_000
DEFAULT_MAX_WINDOWS = 1024
DEFAULT_WINDOW_CHUNK = 16

# Output key -> (decode_entities key, padding value).
_OUTPUTS = {
    ENTITY_TEXT_OUTPUT: ("text", ""),
    ENTITY_TYPE_OUTPUT: ("type", ""),
    ENTITY_START_OUTPUT: ("start", -1),
    ENTITY_END_OUTPUT: ("end", -1),
    ENTITY_SCORE_OUTPUT: ("score", 0.0),
}


def export_token_classifier(
    export_dir: str,
    model: keras.Model,
    *,
    warmup_texts: Optional[Sequence[str]] = None,
    model_name: str = "",
    words_feature: Optional[str] = None,
    extra_endpoints: Optional[Mapping[str, Tuple[Callable, Sequence[tf.TensorSpec]]]] = None,
    max_text_chars: Optional[int] = DEFAULT_MAX_TEXT_CHARS,
    max_windows: Optional[int] = DEFAULT_MAX_WINDOWS,
    window_chunk: int = DEFAULT_WINDOW_CHUNK,
) -> str:
    """Write `model` (a `BertTokenClassifier` with a `TokenClassifierPreprocessor`) as a SavedModel.

    Args:
        export_dir: the SavedModel directory (e.g. `<base>/<model>/<version>`).
        model: the trained `BertTokenClassifier`; its preprocessor sets the tag set, window length and stride.
        warmup_texts: when given, texts written as the warmup Predict request of `extract_entities`.
        model_name: the model name put in the warmup request's ModelSpec.
        words_feature: when given, a `tag_examples` signature for word-level evaluation (TFMA) as well:
            serialized tf.Examples (`examples`) whose `words_feature` holds whitespace-separated words ->
            `predicted_tags` (DT_STRING [batch], one BIO tag per word joined by spaces), from the entities
            `extract_entities` finds on the words joined by single spaces. A text column works too: its
            words are what whitespace separates.
        extra_endpoints: more signatures, name -> `(function, input_signature)` (e.g. an evaluation
            preprocessing function).
        max_text_chars: longest text (Unicode characters) a request may hold; a longer one fails with
            INVALID_ARGUMENT before any work (None: no limit).
        max_windows: most windows one request may make (all its texts together); more fail with
            INVALID_ARGUMENT before the model runs (None: no limit).
        window_chunk: windows the model runs on at once: memory holds one chunk's activations however long
            the request, and a cancelled request stops between chunks.

    Returns:
        `export_dir`.
    """
    if getattr(model, "preprocessor", None) is None:
        raise ValueError("export_token_classifier needs a BertTokenClassifier built with "
                         "preprocessor=TokenClassifierPreprocessor(...)")

    pre = model.preprocessor

    def entity_tensors(text):
        """`model.entity_tensors` under the limits, the model run in chunks of windows."""
        text = after_checks(text, check_text_chars(text, max_text_chars))
        # One empty text more, dropped from the answer: a batch of none answers with nothing (the decoding
        # graph needs a row to work on).
        found = _entity_tensors(tf.concat([text, [""]], 0))
        return {key: value[:-1] for key, value in found.items()}

    def _entity_tensors(text):
        x, window_text, pieces = pre.windows(text)
        # The padding text added by entity_tensors makes exactly one window of its own: not the client's.
        x = after_checks(x, check_windows(tf.size(window_text) - 1, max_windows))
        logits = run_in_chunks(lambda rows: model(rows, training=False), x, window_chunk)
        return alignment.decode_entities(text, pieces, logits, window_text, pre.sequence_length, pre.stride,
                                         pre.tags)

    def extract_entities(text):
        found = entity_tensors(text)
        outputs = {key: found[name].to_tensor(pad) for key, (name, pad) in _OUTPUTS.items()}
        outputs[NUM_ENTITIES_OUTPUT] = found["text"].row_lengths()
        return outputs

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(model.preprocessor)
    entities = archive.add_endpoint(ENTITIES_SIGNATURE, extract_entities,
                                    input_signature=[tf.TensorSpec([None], tf.string, name=ENTITIES_TEXT_INPUT)])
    entities.get_concrete_function()  # raw text in, as every task's serving_default; one graph for both names
    archive.add_endpoint(DEFAULT_SIGNATURE, entities)
    if words_feature:
        spec = {words_feature: tf.io.FixedLenFeature([], tf.string, default_value="")}

        def predicted_tags(examples):
            words = tf.strings.split(tf.io.parse_example(examples, spec)[words_feature])
            found = entity_tensors(tf.strings.reduce_join(words, axis=1, separator=" "))
            tags = alignment.word_tags_from_entities(words, found["start"], found["end"], found["type"])
            return {PREDICTED_TAGS_OUTPUT: tf.strings.reduce_join(tags, axis=1, separator=" ")}

        archive.add_endpoint(TAG_EXAMPLES_SIGNATURE, predicted_tags,
                             input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    for name, (function, input_signature) in (extra_endpoints or {}).items():
        archive.add_endpoint(name, function, input_signature=list(input_signature))
    write_archive(archive, export_dir)
    if warmup_texts:
        write_prediction_logs(export_dir, [predict_warmup_log(
            ENTITIES_SIGNATURE, {ENTITIES_TEXT_INPUT: list(warmup_texts)}, model_name=model_name)])
    return export_dir


__all__ = ["export_token_classifier"]
