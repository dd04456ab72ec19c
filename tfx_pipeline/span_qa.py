"""The span question-answering (SQuAD) task of the pipeline: its row check, Transform, Trainer and Evaluator config.

Input, as SQuAD: a question column (`--question-feature`, default `question`), a context column
(`--context-feature`, `context`), the answer text (`--answer-feature`, `answers`: one answer, or a JSON list of
the gold answers) and the answer's first character in the context (`--answer-start-feature`, `answer_start`:
an integer, or a JSON list with one start per answer). Transform tokenizes with tfmodels' core-op tokenizer into
`run_squad` windows (`SpanQAPreprocessor`) and keeps one window per question: the first that holds the first
answer whole, or the first window, pointing at `[CLS]`, when none does. Trainer fine-tunes a `BertSpanQA`; the
export serves `answer_question` (raw question and context in, the answer out, every window of a long context
searched) and, for the Evaluator, `serving_default` (tf.Example in, the same outputs). The Evaluator scores SQuAD
exact match and F1 (`tfx_pipeline.metrics.SquadScores`, in [0, 1]) against every gold answer and blesses on
`squad_f1 >= --min-f1` and not below the baseline.
"""

import re
from typing import Dict

from tfx_pipeline.hparams import SPAN_QA as TASK

START_POSITION, END_POSITION = "start_position", "end_position"  # Transform's targets (int64 [batch])


def row_check(question_feature: str, context_feature: str, answer_feature: str,
              answer_start_feature: str) -> Dict:
    """ExampleValidator's row check (`tfx_pipeline.row_checks.span_qa_check`)."""
    return {"task": TASK, "feature": answer_feature, "question_feature": question_feature,
            "context_feature": context_feature, "answer_feature": answer_feature,
            "answer_start_feature": answer_start_feature}


def preprocessor(hparams):
    """`run_squad`'s windows at `max_seq_length`: questions cut at a quarter of it (at most 64 tokens, as
    run_squad), windows starting every half of the room left for the context (at most 128 tokens)."""
    from tfmodels.models.bert.span_qa_reader import SpanQAPreprocessor
    from tfmodels.text import BertTokenizer

    tokenizer = BertTokenizer.from_vocab_file(hparams.vocab_file, lowercase=True)
    max_query_length = min(64, hparams.max_seq_length // 4)
    doc_stride = min(128, max(1, (hparams.max_seq_length - 3 - max_query_length) // 2))
    return SpanQAPreprocessor(tokenizer, sequence_length=hparams.max_seq_length, doc_stride=doc_stride,
                              max_query_length=max_query_length)


def _first_answer(cells):
    """Transform's reading of the answer cells (`tfx_pipeline.row_checks.first_answer_as_transform_reads`)."""
    import tensorflow as tf

    from tfx_pipeline.row_checks import FIRST_JSON_STRING, JSON_UNESCAPES

    listed = tf.strings.regex_full_match(cells, FIRST_JSON_STRING)
    first = tf.strings.regex_replace(cells, FIRST_JSON_STRING, r"\1")
    for escaped, plain in JSON_UNESCAPES:
        first = tf.strings.regex_replace(first, re.escape(escaped), plain.replace("\\", "\\\\"))
    return tf.where(listed, first, cells)


def _first_start(starts):
    """The first answer's start: an int64 feature as it is, a string one (a JSON list) by its first integer."""
    import tensorflow as tf

    from tfx_pipeline.row_checks import FIRST_INTEGER

    if starts.dtype != tf.string:
        return tf.cast(starts, tf.int32)
    return tf.strings.to_number(tf.strings.regex_replace(starts, FIRST_INTEGER, r"\1"), tf.int32)


def preprocessing_fn(inputs, hparams, dense_1d):
    """Raw SQuAD rows -> encoder inputs (int64 [batch, T]) of one window per question and its `start_position`
    / `end_position` (int64 [batch]). Only training reads this graph: the export windows with the same
    preprocessor (tokenizer, vocabulary, length, stride) inside the model and searches every window."""
    import tensorflow as tf

    from tfmodels.models.bert.span_qa_reader import windows_with_targets
    from tfx_pipeline.hparams import MODEL_INPUTS

    question_feature, context_feature = hparams.text_features
    questions, contexts = dense_1d(inputs[question_feature], b""), dense_1d(inputs[context_feature], b"")
    answers = _first_answer(dense_1d(inputs[hparams.label_feature], b""))
    start_default = b"-1" if inputs[hparams.answer_start_feature].dtype == tf.string else -1
    starts = _first_start(dense_1d(inputs[hparams.answer_start_feature], start_default))
    windows = windows_with_targets(preprocessor(hparams), questions, contexts, answers, starts)
    # One window per question: the first holding the answer, else the first (window starts grow in a question).
    key = tf.where(windows["holds_answer"], 0, 1 << 30) + windows["window_start"]
    chosen = tf.equal(key, tf.gather(tf.math.unsorted_segment_min(key, windows["example"], tf.size(questions)),
                                     windows["example"]))
    outputs = {name: tf.cast(tf.boolean_mask(windows[name], chosen), tf.int64) for name in MODEL_INPUTS}
    for name in (START_POSITION, END_POSITION):
        outputs[name] = tf.cast(tf.boolean_mask(windows[name], chosen), tf.int64)
    return outputs


def train_and_export(fn_args, hparams, tf_transform_output, encoder, callbacks):
    """Fine-tunes a `BertSpanQA` on Transform's windows and exports `answer_question` + the Evaluator's
    `serving_default` to `fn_args.serving_model_dir`."""
    import tensorflow as tf

    from tfmodels.export import export_span_qa
    from tfmodels.models.bert.span_qa import BertSpanQA
    from tfx_pipeline.hparams import MODEL_INPUTS
    from tfx_pipeline.training import fine_tune, transformed_dataset

    def dataset(files, shuffle):
        return transformed_dataset(fn_args, files, tf_transform_output, hparams.batch_size, shuffle).map(
            lambda f: ({name: tf.cast(f[name], tf.int32) for name in MODEL_INPUTS},
                       {"start_logits": tf.cast(f[START_POSITION], tf.int32),
                        "end_logits": tf.cast(f[END_POSITION], tf.int32)}))

    model = BertSpanQA(encoder, preprocessor=preprocessor(hparams))
    fine_tune(model, fn_args, hparams, dataset, callbacks)
    export_span_qa(fn_args.serving_model_dir, model, model_name=hparams.model_name,
                   warmup=[("What is this?", "This is a warmup request.")],
                   example_features=tuple(hparams.text_features))


def eval_config(answer_feature: str, min_f1: float):
    """SQuAD exact match and F1 of `answer_text` against the answers column; gated on `squad_f1`."""
    from tfmodels.export.signatures import ANSWER_TEXT_OUTPUT, DEFAULT_SIGNATURE
    from tfx_pipeline.metrics import SquadScores, task_eval_config

    return task_eval_config(DEFAULT_SIGNATURE, answer_feature, ANSWER_TEXT_OUTPUT, SquadScores.__name__, min_f1)
