"""What `python -m tfx_pipeline run|compile` and `python -m tfx_pipeline.demo` share: the pipeline flags (checked
as they are parsed, before anything slow), the flags -> `PipelineConfig` mapping, the "run, summarise, exit
code" flow and the infra-validation request.

Exit status: 0 pushed (and, for the commands that go on, served); 2 ExampleValidator found data anomalies
(nothing trained); 3 not blessed (nothing pushed); 1 anything else, a wrong flag value included.

Imports only the standard library (and the stdlib-only `tfx_pipeline.hparams`) at module level, so that `--help`
and flag errors come before TensorFlow.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Dict, Optional

from tfx_pipeline.hparams import (
    CLASSIFY,
    COMPRESSIBLE_TASKS,
    QUANTIZE_MODES,
    RUNNERS,
    SPAN_QA,
    STRATEGIES,
    TASKS,
    TOKEN_CLASSIFICATION,
    TRANSLATE,
    TRANSLATION_SIZES,
)

EXIT_OK, EXIT_FAILED, EXIT_ANOMALIES, EXIT_NOT_BLESSED = 0, 1, 2, 3

DEFAULT_ROOT = "artifacts/pipeline"
ENCODERS = ("tiny", "minilm")
SAMPLE_COUNT = 4  # requests sent to the pushed model
TASK_HELP = ("classify: text -> class id; token_classification: words -> one tag each (NER); span_qa: question + "
             "context -> answer span (SQuAD); translate: source text -> target text")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: ...)" to every flag's help unless the help already says what the default is."""

    def _get_help_string(self, action):
        if "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with our formatter, exiting 1 on a wrong flag (argparse's 2 means "data anomalies" here)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILED, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def threshold(top: float):
    """A blessing threshold in [0, top]; up to 1% above `top` is allowed: a threshold no model reaches, for
    "never bless" runs."""

    def parse(text: str) -> float:
        value = float(text)
        if not 0 <= value <= top * 1.01:
            raise argparse.ArgumentTypeError(f"must be in [0, {top:g}], got {text}")
        return value

    return parse


fraction = threshold(1.0)


def directory(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return text


def encoder(text: str) -> str:
    if text not in ENCODERS + tuple(TRANSLATION_SIZES) and not os.path.isfile(os.path.join(text, "config.json")):
        raise argparse.ArgumentTypeError(f"must be tiny, minilm or a Hugging Face BERT directory (with "
                                         f"config.json); for translate tiny or small; got {text!r}")
    return text


def vocab_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text} is not a file (a WordPiece vocabulary, one token a line)")
    return text


def beam_arg(text: str) -> str:
    if not text.startswith("--"):
        raise argparse.ArgumentTypeError(f"a Beam argument starts with --, got {text!r} "
                                         f"(write --beam-arg=--name=value)")
    return text


def add_pipeline_args(parser: argparse.ArgumentParser) -> None:
    """The flags of every pipeline command; each maps onto a `PipelineConfig` field (see `config_from_args`)."""
    parser.add_argument("--data-root", type=directory,
                        help="folder of CSV files (default: the task's packaged data, prepared into "
                             "<root>/data/<name>_<rows>: IMDB, WNUT-16, SQuAD v1.1 train or Bible verse pairs)")
    parser.add_argument("--rows", "--imdb-rows", dest="rows", type=positive_int, default=2000,
                        help="rows of the packaged data to prepare when --data-root is not given")
    parser.add_argument("--input-format", choices=("csv", "tfrecord"), default="csv",
                        help="csv, or tfrecord (files of serialized tf.Example)")
    parser.add_argument("--task", choices=TASKS, default=CLASSIFY, help=TASK_HELP)
    parser.add_argument("--text-feature", action="append",
                        help="text column; give it twice for text pairs (default: text)")
    parser.add_argument("--words-feature", default="tokens",
                        help="token_classification: the column of whitespace-separated words")
    parser.add_argument("--tags-feature", default="tags",
                        help="token_classification: the column of whitespace-separated tags, one per word")
    parser.add_argument("--spans-feature",
                        help="token_classification: instead of words and tags, a JSON column of character spans "
                             "[[start, end, \"type\"], ...] of the --text-feature column (default: none)")
    parser.add_argument("--tag", action="append",
                        help="token_classification: a tag of the tag set, repeatable (default: read from the data)")
    parser.add_argument("--question-feature", default="question", help="span_qa: the question column")
    parser.add_argument("--context-feature", default="context", help="span_qa: the context column")
    parser.add_argument("--answer-feature", default="answers",
                        help="span_qa: the answer column (one answer, or a JSON list of the gold answers)")
    parser.add_argument("--answer-start-feature", default="answer_start",
                        help="span_qa: the answer's first character in the context (an integer, or a JSON list "
                             "with one per answer)")
    parser.add_argument("--source-feature", default="source", help="translate: the source-text column")
    parser.add_argument("--target-feature", default="target", help="translate: the target-text column")
    parser.add_argument("--source-vocab", type=vocab_file,
                        help="translate: the source WordPiece vocabulary (uncased; default: learned from the data)")
    parser.add_argument("--target-vocab", type=vocab_file,
                        help="translate: the target WordPiece vocabulary (cased; default: learned from the data)")
    parser.add_argument("--label-feature", default="label", help="integer class-id column")
    parser.add_argument("--num-classes", type=positive_int, default=2, help="number of classes of the label")
    parser.add_argument("--class-name", action="append",
                        help="name of class 0, 1, ... in that order, repeatable (default: the class ids)")
    parser.add_argument("--model-name", default="text_classifier", help="served model name")
    parser.add_argument("--pipeline-name", default="tfmodels_text_classifier", help="TFX pipeline name")
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help="default parent of the pipeline root, metadata and serving dirs")
    parser.add_argument("--pipeline-root", help="TFX pipeline root (default: <root>/root)")
    parser.add_argument("--metadata-path", help="ML Metadata SQLite file (default: <root>/metadata.sqlite)")
    parser.add_argument("--serving-model-dir",
                        help="Pusher's destination, <dir>/<model-name>/<version> (default: <root>/serving)")
    parser.add_argument("--encoder", type=encoder, default="tiny",
                        help="tiny (random, fast), minilm (pretrained all-MiniLM-L6-v2), or a HF BERT directory")
    parser.add_argument("--train-steps", type=positive_int, default=100, help="Trainer steps")
    parser.add_argument("--eval-steps", type=positive_int, default=10, help="Trainer validation steps")
    parser.add_argument("--max-seq-length", type=positive_int, default=128, help="tokens per example")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="Trainer batch size")
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="peak learning rate (default: 5e-5 for pretrained encoders, 1e-3 for tiny, 2e-3 for "
                             "translate)")
    parser.add_argument("--min-accuracy", type=fraction, default=0.6,
                        help="value threshold for the blessing (held-out accuracy)")
    parser.add_argument("--min-f1", type=fraction, default=0.3,
                        help="token_classification and span_qa: value threshold for the blessing (held-out "
                             "entity F1, SQuAD F1; in [0, 1])")
    parser.add_argument("--min-bleu", type=threshold(100.0), default=1.0,
                        help="translate: value threshold for the blessing (held-out corpus BLEU, 0-100)")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "auto"), default="float32",
                        help="Trainer's compute dtype; auto: mixed_bfloat16 when the CPU has AMX or AVX512-BF16")
    parser.add_argument("--distill-into", type=positive_int, metavar="LAYERS",
                        help="classify, token_classification: distil the trained model into a student of LAYERS "
                             "encoder layers (started from the teacher's, evenly spaced) before export; the "
                             "Evaluator blesses the student (default: no distillation)")
    parser.add_argument("--distill-steps", type=positive_int,
                        help="distillation steps over the training split (default: --train-steps)")
    parser.add_argument("--quantize", choices=QUANTIZE_MODES,
                        help="classify, token_classification: quantize the (distilled) model before export, "
                             "int8 weights per output channel; blessed like any model (default: float)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="Trainer's tf.distribute strategy: default (one device), mirrored (this machine's "
                             "devices) or multi_worker (the workers in TF_CONFIG, as a cluster manager sets it)")
    parser.add_argument("--beam-arg", type=beam_arg, action="append", default=[],
                        help="a Beam pipeline argument, repeatable (e.g. --beam-arg=--direct_num_workers=2; "
                             "default: none)")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ logs (CUDA/XLA start-up lines included)")


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Where the pipeline runs: `--runner`, and for flink/spark the cluster (default: a local one per run)."""
    parser.add_argument("--runner", choices=RUNNERS, default="local",
                        help="LocalDagRunner (local), BeamDagRunner (beam), or the Beam components on Apache Flink "
                             "(flink) or Apache Spark (spark) through Beam's portable runner")
    parser.add_argument("--flink-master", metavar="HOST:PORT",
                        help="--runner flink: the Flink cluster's REST address (default: start a local JobManager "
                             "and 2 TaskManagers for the run)")
    parser.add_argument("--spark-master", metavar="spark://HOST:PORT",
                        help="--runner spark: the Spark master (default: start a local master and 2 workers for "
                             "the run)")


def runner_master(args: argparse.Namespace) -> Optional[str]:
    """The cluster `--flink-master` / `--spark-master` names, or None."""
    return getattr(args, "flink_master", None) or getattr(args, "spark_master", None)


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Checks across flags, before anything slow; `parser.error` (exit 1) names the flag."""
    if args.text_feature and len(args.text_feature) > 2:
        parser.error(f"argument --text-feature: one text column, or two for pairs; got {args.text_feature}")
    if args.class_name is not None and len(args.class_name) != args.num_classes:
        parser.error(f"argument --class-name: {len(args.class_name)} names {args.class_name} for "
                     f"--num-classes {args.num_classes}")
    if args.input_format == "tfrecord" and args.data_root is None:
        parser.error("argument --input-format: tfrecord needs --data-root (the default data is a CSV)")
    if args.task == TOKEN_CLASSIFICATION and args.spans_feature and not args.data_root:
        parser.error("argument --spans-feature: the default WNUT-16 data has words and tags; give --data-root")
    if args.task == TOKEN_CLASSIFICATION and args.input_format == "tfrecord" and not args.tag:
        parser.error("argument --tag: token_classification on tfrecord input needs its tag set as --tag "
                     "(it is read from the data only for CSVs)")
    if args.task == TRANSLATE:
        if args.encoder not in TRANSLATION_SIZES:
            parser.error(f"argument --encoder: translate trains a Seq2SeqTransformer of size {' or '.join(sorted(TRANSLATION_SIZES))}, "
                         f"got {args.encoder!r}")
        if bool(args.source_vocab) != bool(args.target_vocab):
            parser.error("argument --source-vocab/--target-vocab: give both vocabularies, or neither (learned)")
        if args.input_format == "tfrecord" and not args.source_vocab:
            parser.error("argument --source-vocab: translate on tfrecord input needs --source-vocab and "
                         "--target-vocab (they are learned from the data only for CSVs)")
    elif args.encoder == "small":
        parser.error("argument --encoder: small is a translate model size; BERT tasks take tiny, minilm or a directory")
    if (args.distill_into or args.quantize) and args.task not in COMPRESSIBLE_TASKS:
        parser.error(f"argument --distill-into/--quantize: compression applies to {', '.join(COMPRESSIBLE_TASKS)}, "
                     f"not {args.task}")
    if args.distill_steps and not args.distill_into:
        parser.error("argument --distill-steps: needs --distill-into")
    for flag, runner in (("flink_master", "flink"), ("spark_master", "spark")):
        if getattr(args, flag, None) and args.runner != runner:
            parser.error(f"argument --{flag.replace('_', '-')}: needs --runner {runner}, got --runner {args.runner}")
    if getattr(args, "spark_master", None) and not args.spark_master.startswith("spark://"):
        parser.error(f"argument --spark-master: a spark://host:port URL, got {args.spark_master!r}")
    return args


def config_from_args(args):
    """A PipelineConfig from the parsed flags (preparing the task's packaged data when no --data-root)."""
    from tfx_pipeline import data, token_classification
    from tfx_pipeline.pipeline import PipelineConfig, cpu_has_bfloat16

    root = os.path.abspath(args.root)
    text_features, label_feature = tuple(args.text_feature or ["text"]), args.label_feature
    num_classes, class_names = args.num_classes, args.class_name
    if args.task == TOKEN_CLASSIFICATION:
        text_features, label_feature = (((text_features[0],), args.spans_feature) if args.spans_feature else
                                         ((args.words_feature,), args.tags_feature))
        prepare = lambda path: data.prepare_wnut_csv(path, args.rows, words_feature=args.words_feature,  # noqa: E731
                                                     tags_feature=args.tags_feature)
        name = "wnut"
    elif args.task == SPAN_QA:
        text_features, label_feature = (args.question_feature, args.context_feature), args.answer_feature
        prepare = lambda path: data.prepare_squad_csv(path, args.rows, columns=(  # noqa: E731
            args.question_feature, args.context_feature, args.answer_feature, args.answer_start_feature))
        name = "squad"
    elif args.task == TRANSLATE:
        text_features, label_feature = (args.source_feature,), args.target_feature
        prepare = lambda path: data.prepare_bible_csv(path, args.rows, source_feature=args.source_feature,  # noqa: E731
                                                      target_feature=args.target_feature)
        name = "bible"
    else:
        prepare, name = lambda path: data.prepare_imdb_csv(path, max_rows=args.rows), "imdb"  # noqa: E731
    data_root = args.data_root or prepare(os.path.join(root, "data", f"{name}_{args.rows}"))
    if args.task == TOKEN_CLASSIFICATION:
        class_names = (token_classification.sort_tags(args.tag) if args.tag else
                       token_classification.tags_in_csv(data_root, label_feature, bool(args.spans_feature)))
        num_classes = len(class_names)
    default_rate = 2e-3 if args.task == TRANSLATE else 1e-3 if args.encoder == "tiny" else 5e-5
    precision = args.precision
    if precision == "auto":
        precision = "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    return PipelineConfig(
        data_root=os.path.abspath(data_root),
        pipeline_root=os.path.abspath(args.pipeline_root or os.path.join(root, "root")),
        metadata_path=os.path.abspath(args.metadata_path or os.path.join(root, "metadata.sqlite")),
        serving_model_dir=os.path.abspath(args.serving_model_dir or os.path.join(root, "serving")),
        pipeline_name=args.pipeline_name, model_name=args.model_name,
        text_features=text_features, label_feature=label_feature, num_classes=num_classes, encoder=args.encoder,
        train_steps=args.train_steps, eval_steps=args.eval_steps, max_seq_length=args.max_seq_length,
        batch_size=args.batch_size, learning_rate=args.learning_rate or default_rate,
        min_accuracy=args.min_accuracy, beam_pipeline_args=list(args.beam_arg), input_format=args.input_format,
        class_names=class_names, precision=precision, task=args.task, min_f1=args.min_f1, min_bleu=args.min_bleu,
        answer_start_feature=args.answer_start_feature, entity_spans=bool(args.spans_feature),
        source_vocab_file=args.source_vocab and os.path.abspath(args.source_vocab),
        target_vocab_file=args.target_vocab and os.path.abspath(args.target_vocab),
        distill_layers=args.distill_into or 0, distill_steps=args.distill_steps, quantize=args.quantize,
        strategy=args.strategy)


def quiet_logs(args, argv) -> None:
    """From the command line (`argv` None), filter TensorFlow's start-up noise unless --verbose; in-process
    callers (tests) own their stderr and are left alone."""
    if argv is not None:
        return
    if args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")  # before tfmodels imports TF: no filtering
    from tfmodels.utils import logs

    logs.quiet(verbose=args.verbose)


@dataclasses.dataclass
class Outcome:
    """One pipeline run as the commands report it."""

    summary: Any  # run_summary.RunSummary, or None when the run failed before ML Metadata recorded it
    seconds: float
    exit_code: int
    message: str  # why it failed ("" on success)

    def as_dict(self) -> Dict[str, Any]:
        summary = self.summary
        return {"pipeline_seconds": self.seconds,
                "metrics": summary.metrics if summary else {},
                "blessed": summary.blessed if summary else None,
                "pushed": summary.pushed_destination if summary else None,
                "components": summary.components if summary else {}}


def run_and_summarise(config, runner: str, master: Optional[str] = None) -> Outcome:
    """Runs the pipeline (`tfx_pipeline.runners.run`), prints what ran (read back from ML Metadata) and, on
    failure, one FAILED line."""
    from tfx_pipeline import runners
    from tfx_pipeline.data_checks import DataError

    start = time.monotonic()
    failure: Optional[BaseException] = None
    try:
        runners.run(config, runner, master)
    except Exception as e:  # noqa: BLE001 - report what did run, then fail
        failure = e
    seconds = time.monotonic() - start
    summary = _summary_if_recorded(config)
    if summary is not None:
        print(summary.format())
    print(f"Pipeline time: {seconds:.1f} s", flush=True)
    if failure is not None:
        code, message = EXIT_FAILED, (str(failure) if isinstance(failure, DataError) else
                                      f"the pipeline raised {type(failure).__name__}: {failure}")
    elif summary is None:
        code, message = EXIT_FAILED, f"the pipeline recorded no run in {config.metadata_path}"
    elif summary.anomalies:
        code, message = EXIT_ANOMALIES, "ExampleValidator found data anomalies; nothing was trained."
    elif not summary.blessed or not summary.pushed_destination:
        name, threshold = config.gate()
        value = summary.metrics.get(name, float("nan"))
        code, message = EXIT_NOT_BLESSED, (f"the model was not blessed ({name} {value:.4f} < {threshold} or "
                                           f"below the baseline); nothing pushed.")
    else:
        code, message = EXIT_OK, ""
    if message:
        print(f"FAILED: {message}", file=sys.stderr, flush=True)
    return Outcome(summary, seconds, code, message)


def infra_validate(config, samples):
    """Serves the pushed model in a fresh process and sends the task's request; prints the answers.

    Returns `(exit code, answers or None)`.
    """
    from tfx_pipeline.infra_validation import InfraValidationError, describe, query_pushed

    try:
        answers = query_pushed(config, samples)
    except InfraValidationError as e:
        print(f"INFRA-VALIDATION FAILED: {e}", file=sys.stderr)
        return EXIT_FAILED, None
    print("\n".join(describe(config, samples, answers)), flush=True)
    return EXIT_OK, answers


def sample_requests(args, config, count: int = SAMPLE_COUNT) -> list:
    """The post-push requests: `--sample-text`, else unseen IMDB reviews for the default classifier data,
    else the first rows of the data (a tagger's words joined by spaces, rows with entities first; a reader's
    (question, context))."""
    from tfx_pipeline import data

    if config.task == SPAN_QA:
        return data.sample_rows(config.data_root, config.text_features, count)
    if config.task == TOKEN_CLASSIFICATION and not getattr(args, "sample_text", None):
        # Rows with an entity in their gold tags (most tweets have none), else the first rows.
        rows = data.sample_rows(config.data_root, (config.text_features[0], config.label_feature), count * 50)
        tagged = [words for words, tags in rows if set(tags.split()) - {"O"}]
        return (tagged + [words for words, _ in rows])[:count]
    if getattr(args, "sample_text", None):
        return list(args.sample_text)
    if args.data_root is None and config.task == CLASSIFY:
        return data.heldout_imdb_reviews(count, skip_rows=args.rows)
    return data.sample_texts(config.data_root, config.text_features[0], count)


def _summary_if_recorded(config):
    """The latest run's summary; None when the run failed before ML Metadata had it (no store, or no run)."""
    from tfx_pipeline.run_summary import latest_run_summary

    if not os.path.exists(config.metadata_path):
        return None
    try:
        return latest_run_summary(config.metadata_path, config.pipeline_name)
    except LookupError:
        return None


def finish(result: Dict[str, Any], code: int, summary_json: Optional[str], start: float) -> int:
    """Records the exit code and total time in `result`, writes it to `summary_json` (if given); returns `code`."""
    result["exit_code"] = code
    result["seconds"] = time.monotonic() - start
    if summary_json:
        with open(summary_json, "w") as f:
            json.dump(result, f, indent=1)
    return code
