"""Export a span-QA model, tokenizer, windows and decoding included, as a TF Serving SavedModel.

The `answer_question` signature (names in `tfmodels.export.signatures`) takes `question` and `context`
(DT_STRING [batch]) and returns `answer_text` (DT_STRING [batch]), `answer_start` / `answer_end` (DT_INT64
[batch], Unicode character offsets into the context, so `context[start:end] == answer_text` in Python) and
`score` (DT_FLOAT [batch]). The graph is the same code as `BertSpanQA.answer`
(`tfmodels.models.bert.span_qa_reader`) in core TF ops only: it loads where `tensorflow_text` cannot be
imported. Every non-empty context gets its best valid span (as `run_squad` for SQuAD v1.1); an empty context
gives `""`, -1, -1, 0; a question longer than the preprocessor's `max_query_length` tokens is truncated to its
first tokens. A question or context over `max_text_chars` characters, or a request over `max_windows`
windows, fails with INVALID_ARGUMENT before the model runs, which runs `window_chunk` windows at a time.
"""

from typing import Optional, Sequence, Tuple

import keras
import tensorflow as tf

from tfmodels.export.archive import write_archive
from tfmodels.export.signatures import (
    ANSWER_END_OUTPUT,
    ANSWER_EXAMPLES_SIGNATURE,
    ANSWER_SCORE_OUTPUT,
    ANSWER_SIGNATURE,
    ANSWER_START_OUTPUT,
    ANSWER_TEXT_OUTPUT,
    CONTEXT_INPUT,
    DEFAULT_SIGNATURE,
    EXAMPLES_INPUT,
    QUESTION_INPUT,
)
from tfmodels.export.token_classifier import (
    DEFAULT_MAX_TEXT_CHARS,
    DEFAULT_MAX_WINDOWS,
    DEFAULT_WINDOW_CHUNK,
)
from tfmodels.export.warmup import predict_warmup_log, write_prediction_logs
from tfmodels.models.bert.span_qa_reader import answer_batch

_OUTPUT_KEYS = {"answer_text": ANSWER_TEXT_OUTPUT, "answer_start": ANSWER_START_OUTPUT,
                "answer_end": ANSWER_END_OUTPUT, "score": ANSWER_SCORE_OUTPUT}


def export_span_qa(
    export_dir: str,
    model: keras.Model,
    *,
    max_answer_length: int = 30,
    n_best: int = 20,
    warmup: Optional[Sequence[Tuple[str, str]]] = None,
    model_name: str = "",
    example_features: Optional[Tuple[str, str]] = None,
    max_text_chars: Optional[int] = DEFAULT_MAX_TEXT_CHARS,
    max_windows: Optional[int] = DEFAULT_MAX_WINDOWS,
    window_chunk: int = DEFAULT_WINDOW_CHUNK,
) -> str:
    """Write `model` (a `BertSpanQA` with a `SpanQAPreprocessor`) as a SavedModel at `export_dir`.

    Args:
        export_dir: the SavedModel directory (e.g. `<base>/<model>/<version>`).
        model: the trained `BertSpanQA`; its `preprocessor` sets window length, doc stride and question limit.
        max_answer_length: most tokens in an answer.
        n_best: highest start and end logits searched per window.
        warmup: when given, `(question, context)` pairs written as the warmup Predict request.
        model_name: the model name put in the warmup request's ModelSpec.
        example_features: when given, `(question_feature, context_feature)`: an `answer_examples`
            signature for evaluation (TFMA) as well, that takes serialized tf.Examples (`examples`) holding these two
            string features and returns the same outputs as `answer_question`.
        max_text_chars: longest question or context (Unicode characters) a request may hold; longer fails
            with INVALID_ARGUMENT before any work (None: no limit).
        max_windows: most windows one request may make (all its contexts together); more fail with
            INVALID_ARGUMENT before the model runs (None: no limit).
        window_chunk: windows the model runs on at once (memory holds one chunk's activations).

    Returns:
        `export_dir`.
    """
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        raise ValueError("export_span_qa needs a BertSpanQA built with preprocessor=SpanQAPreprocessor(...)")

    def answer_question(question, context):
        answers = answer_batch(model, preprocessor, question, context, max_answer_length, n_best,
                               max_text_chars=max_text_chars, max_windows=max_windows, window_chunk=window_chunk)
        return {key: answers[name] for name, key in _OUTPUT_KEYS.items()}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(preprocessor)
    answers = archive.add_endpoint(ANSWER_SIGNATURE, answer_question, input_signature=[
        tf.TensorSpec([None], tf.string, name=QUESTION_INPUT),
        tf.TensorSpec([None], tf.string, name=CONTEXT_INPUT)])
    answers.get_concrete_function()  # raw text in, as every task's serving_default; one graph for both names
    archive.add_endpoint(DEFAULT_SIGNATURE, answers)
    if example_features:
        question_feature, context_feature = example_features
        spec = {name: tf.io.FixedLenFeature([], tf.string, default_value="") for name in example_features}

        def answer_examples(examples):
            features = tf.io.parse_example(examples, spec)
            return answer_question(features[question_feature], features[context_feature])

        archive.add_endpoint(ANSWER_EXAMPLES_SIGNATURE, answer_examples,
                             input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    write_archive(archive, export_dir)
    if warmup:
        questions, contexts = zip(*warmup)
        write_prediction_logs(export_dir, [predict_warmup_log(
            ANSWER_SIGNATURE, {QUESTION_INPUT: questions, CONTEXT_INPUT: contexts}, model_name=model_name)])
    return export_dir


__all__ = ["export_span_qa"]
