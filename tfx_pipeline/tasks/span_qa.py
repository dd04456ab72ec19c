"""The span question-answering (SQuAD) task of the pipeline: its row check, Transform, Trainer and Evaluator config.

Input, as SQuAD: a question column (`--question-feature`, default `question`), a context column
(`--context-feature`, `context`), the answer text (`--answer-feature`, `answers`: one answer, or a JSON list of
the gold answers) and the answer's first character in the context (`--answer-start-feature`, `answer_start`:
an integer, or a JSON list with one start per answer). Transform tokenizes with tfmodels' core-op tokenizer into
`run_squad` windows (`SpanQAPreprocessor`) and keeps one window per question: the first that holds the first
answer whole, or the first window, pointing at `[CLS]`, when none does. Trainer fine-tunes a `BertSpanQA`; the
export serves `answer_question` = `serving_default` (raw question and context in, the answer out, every window
of a long context searched) and, for the Evaluator, `answer_examples` (tf.Example in, the same outputs). The Evaluator scores SQuAD
exact match and F1 (`tfx_pipeline.metrics.SquadScores`, in [0, 1]) against every gold answer and blesses on
`squad_f1 >= --min-f1` and not below the baseline.
"""

import dataclasses
import re
from typing import Dict, List, Sequence

from tfx_pipeline.flags import flag, fraction
from tfx_pipeline.tasks import bert
from tfx_pipeline.tasks.base import GATE, Demo, Task, served_header

NAME = "span_qa"
START_POSITION, END_POSITION = "start_position", "end_position"  # Transform's targets (int64 [batch])


@dataclasses.dataclass(frozen=True)
class SpanQAOptions(bert.BertOptions):
    """The SQuAD columns: question, context, the answer text (or a JSON list of gold answers) and its first
    character in the context (an int, or a JSON list with one per answer)."""

    question_feature: str = "question"
    context_feature: str = "context"
    answer_feature: str = "answers"
    answer_start_feature: str = "answer_start"
    min_f1: float = dataclasses.field(default=0.5, metadata=GATE)


QUESTION_FEATURE = flag("--question-feature", default="question", help="the question column")
CONTEXT_FEATURE = flag("--context-feature", default="context", help="the context column")
ANSWER_FEATURE = flag("--answer-feature", default="answers",
                      help="the answer column (one answer, or a JSON list of the gold answers)")
ANSWER_START_FEATURE = flag("--answer-start-feature", default="answer_start",
                            help="the answer's first character in the context (an integer, or a JSON list with "
                                 "one per answer)")
# token_classification's --min-f1 too (the registry joins the two declarations' help texts).
MIN_F1 = flag("--min-f1", type=fraction, default=0.3,
              help="value threshold for the blessing (held-out SQuAD F1; in [0, 1])")


def check_args(parser, args) -> None:
    bert.check_encoder(parser, args)


def options_from_args(args, data_root: str) -> SpanQAOptions:
    return SpanQAOptions(question_feature=args.question_feature, context_feature=args.context_feature,
                         answer_feature=args.answer_feature, answer_start_feature=args.answer_start_feature,
                         min_f1=args.min_f1, encoder=bert.encoder_from_args(args))


def prepare_data(args, directory: str) -> str:
    from tfx_pipeline import data

    return data.prepare_squad_csv(directory, args.rows, columns=(
        args.question_feature, args.context_feature, args.answer_feature, args.answer_start_feature))


def schema(options: SpanQAOptions, columns):
    """Question, context and answers as text; the answer start an integer column, or a string one holding JSON
    lists (several gold answers)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    from tfx_pipeline.tasks.base import declared_schema

    start = options.answer_start_feature
    return declared_schema((options.question_feature, options.context_feature, options.answer_feature), columns,
                           required={start: columns.get(start, schema_pb2.INT)})


def row_check(options: SpanQAOptions) -> Dict:
    """ExampleValidator's row check (`tfx_pipeline.row_checks.span_qa_check`)."""
    return {"check": "span_qa_check", "feature": options.answer_feature,
            "question_feature": options.question_feature, "context_feature": options.context_feature,
            "answer_feature": options.answer_feature, "answer_start_feature": options.answer_start_feature}


def preprocessor(hparams):
    """`run_squad`'s windows at `max_seq_length`: questions cut at a quarter of it (at most 64 tokens, as
    run_squad), windows starting every half of the room left for the context (at most 128 tokens)."""
    from tfmodels.models.bert.span_qa_reader import SpanQAPreprocessor

    tokenizer = bert.tokenizer(hparams)
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


def preprocessing_fn(inputs, hparams):
    """Raw SQuAD rows -> encoder inputs (int64 [batch, T]) of one window per question and its `start_position`
    / `end_position` (int64 [batch]). Only training reads this graph: the export windows with the same
    preprocessor (tokenizer, vocabulary, length, stride) inside the model and searches every window."""
    import tensorflow as tf

    from tfmodels.models.bert.span_qa_reader import windows_with_targets
    from tfx_pipeline.tasks.base import dense_1d

    options = hparams.options
    questions = dense_1d(inputs[options.question_feature], b"")
    contexts = dense_1d(inputs[options.context_feature], b"")
    answers = _first_answer(dense_1d(inputs[options.answer_feature], b""))
    start_default = b"-1" if inputs[options.answer_start_feature].dtype == tf.string else -1
    starts = _first_start(dense_1d(inputs[options.answer_start_feature], start_default))
    windows = windows_with_targets(preprocessor(hparams), questions, contexts, answers, starts)
    # One window per question: the first holding the answer, else the first (window starts grow in a question).
    key = tf.where(windows["holds_answer"], 0, 1 << 30) + windows["window_start"]
    chosen = tf.equal(key, tf.gather(tf.math.unsorted_segment_min(key, windows["example"], tf.size(questions)),
                                     windows["example"]))
    outputs = {name: tf.cast(tf.boolean_mask(windows[name], chosen), tf.int64) for name in bert.MODEL_INPUTS}
    for name in (START_POSITION, END_POSITION):
        outputs[name] = tf.cast(tf.boolean_mask(windows[name], chosen), tf.int64)
    return outputs


def train_and_export(fn_args, hparams, tf_transform_output, callbacks):
    """Fine-tunes a `BertSpanQA` on Transform's windows and exports `answer_question` (also
    `serving_default`) + the Evaluator's `answer_examples` to `fn_args.serving_model_dir`."""
    import tensorflow as tf

    from tfmodels.export import export_span_qa
    from tfmodels.models.bert.span_qa import BertSpanQA
    from tfx_pipeline.training import fine_tune, transformed_dataset

    def dataset(files, shuffle):
        return transformed_dataset(fn_args, files, tf_transform_output, hparams.batch_size, shuffle).map(
            lambda f: (bert.int32_inputs(f),
                       {"start_logits": tf.cast(f[START_POSITION], tf.int32),
                        "end_logits": tf.cast(f[END_POSITION], tf.int32)}))

    model = BertSpanQA(bert.build_encoder(hparams), preprocessor=preprocessor(hparams))
    fine_tune(model, fn_args, hparams, dataset, callbacks)
    export_span_qa(fn_args.serving_model_dir, model, model_name=hparams.model_name,
                   warmup=[("What is this?", "This is a warmup request.")],
                   example_features=(hparams.options.question_feature, hparams.options.context_feature))


def eval_config(options: SpanQAOptions):
    """SQuAD exact match and F1 of `answer_text` against the answers column; gated on `squad_f1 >= min_f1`."""
    from tfmodels.export.signatures import ANSWER_EXAMPLES_SIGNATURE, ANSWER_TEXT_OUTPUT
    from tfx_pipeline.metrics import SquadScores, task_eval_config

    return task_eval_config(ANSWER_EXAMPLES_SIGNATURE, options.answer_feature, ANSWER_TEXT_OUTPUT, SquadScores.__name__,
                            options.min_f1)


# ---- after the push --------------------------------------------------------------------------------------------
def sample_requests(args, config, count: int) -> list:
    """The data's first (question, context) pairs."""
    from tfx_pipeline import data

    options = config.options
    return data.sample_rows(config.data_root, (options.question_feature, options.context_feature), count)


def query(model_base_path: str, model_name: str, options, samples: Sequence) -> Dict:
    """One Predict on `answer_question`: `{"version", "answers"}` (per question, `{text, start, end, score}`:
    character offsets into its context)."""
    from tfmodels.export import signatures as sig
    from tfx_pipeline.infra_validation import ask_fresh_server

    inputs = {sig.QUESTION_INPUT: [q for q, _ in samples], sig.CONTEXT_INPUT: [c for _, c in samples]}
    version, outputs = ask_fresh_server(model_base_path, model_name, lambda client: client.predict(
        model_name, inputs, signature_name=sig.ANSWER_SIGNATURE))
    answers = [{"text": text.decode(), "start": int(start), "end": int(end), "score": float(score)}
               for text, start, end, score in zip(*(outputs[key].tolist() for key in (
                   sig.ANSWER_TEXT_OUTPUT, sig.ANSWER_START_OUTPUT, sig.ANSWER_END_OUTPUT, sig.ANSWER_SCORE_OUTPUT)))]
    return {"version": version, "answers": answers}


def describe(samples: Sequence, answers: Dict) -> List[str]:
    from tfmodels.export.signatures import ANSWER_SIGNATURE

    lines = [served_header(answers, ANSWER_SIGNATURE, len(samples), "questions")]
    for (question, _), answer in zip(samples, answers["answers"]):
        lines.append(f"  {question[:70]!r} -> {answer['text']!r} (p={answer['score']:.2f})")
    return lines


TASK = Task(
    name=NAME, summary="question + context -> answer span (SQuAD)", options=SpanQAOptions,
    flags=(QUESTION_FEATURE, CONTEXT_FEATURE, ANSWER_FEATURE, ANSWER_START_FEATURE, bert.ENCODER, MIN_F1),
    check_args=check_args, options_from_args=options_from_args, data_name="squad", prepare_data=prepare_data,
    learning_rate=bert.learning_rate, schema=schema, row_check=row_check, eval_config=eval_config,
    preprocessing_fn=preprocessing_fn, train_and_export=train_and_export, sample_requests=sample_requests,
    query=query, describe=describe, prepare=bert.prepare,
    demo=Demo(defaults=dict(  # SQuAD v1.1 train questions, 2:1 train/eval
        encoder="minilm", rows=1500, train_steps=150, eval_steps=4, max_seq_length=192, batch_size=16,
        learning_rate=1e-4, min_f1=0.2, precision="auto", model_name="squad_reader",
        pipeline_name="tfmodels_squad_demo"), root="artifacts/demo_span_qa"))
