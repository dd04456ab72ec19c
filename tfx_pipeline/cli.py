"""What `python -m tfx_pipeline run|compile` and `python -m tfx_pipeline.demo` share: the pipeline flags (checked
as they are parsed, before anything slow), the flags -> `PipelineConfig` mapping, the "run, summarise, exit
code" flow and the infra-validation request.

Exit status: 0 pushed (and, for the commands that go on, served); 2 ExampleValidator found data anomalies
(nothing trained); 3 not blessed (nothing pushed); 1 anything else, a wrong flag value included.

Imports only the standard library (and the stdlib-only `tfx_pipeline.flags`, `.hparams` and `.tasks`) at module
level, so that `--help` and flag errors come before TensorFlow.
"""

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import signal
import socket
import sys
import time
from typing import Any, Dict, Optional

from tfx_pipeline import tasks
from tfx_pipeline.flags import beam_arg, directory, positive_float, positive_int
from tfx_pipeline.hparams import RUNNERS, STRATEGIES

EXIT_OK, EXIT_FAILED, EXIT_ANOMALIES, EXIT_NOT_BLESSED = 0, 1, 2, 3

DEFAULT_ROOT = "artifacts/pipeline"
SAMPLE_COUNT = 4  # requests sent to the pushed model


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: ...)" to every flag's help unless the help already says what the default is
    ("default: ...") or the flag is required."""

    def _get_help_string(self, action):
        if action.required or "default:" in (action.help or ""):
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


def add_pipeline_args(parser: argparse.ArgumentParser) -> None:
    """The flags of every pipeline command; each maps onto a `PipelineConfig` field or the task's options (see
    `config_from_args`)."""
    parser.add_argument("--data-root", type=directory,
                        help="folder of CSV files (default: the task's packaged data, prepared into "
                             "<root>/data/<name>_<rows>: IMDB, WNUT-16, SQuAD v1.1 train or Bible verse pairs)")
    parser.add_argument("--rows", "--imdb-rows", dest="rows", type=positive_int, default=2000,
                        help="rows of the packaged data to prepare when --data-root is not given")
    parser.add_argument("--input-format", choices=("csv", "tfrecord"), default="csv",
                        help="csv, or tfrecord (files of serialized tf.Example)")
    parser.add_argument("--task", choices=tasks.TASKS, default=tasks.DEFAULT_TASK,
                        help="; ".join(f"{task.name}: {task.summary}" for task in tasks.REGISTRY.values()))
    parser.add_argument("--model-name", default="text_classifier", help="served model name")
    parser.add_argument("--pipeline-name", default="tfmodels_text_classifier", help="TFX pipeline name")
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help="the folder of the pipeline root, metadata and serving dirs (each unless given) and "
                             "the prepared data; one run at a time uses it")
    parser.add_argument("--pipeline-root", help="TFX pipeline root (default: <root>/root)")
    parser.add_argument("--metadata-path", help="ML Metadata SQLite file (default: <root>/metadata.sqlite)")
    parser.add_argument("--serving-model-dir",
                        help="Pusher's destination, <dir>/<model-name>/<version> (default: <root>/serving)")
    parser.add_argument("--train-steps", type=positive_int, default=100, help="Trainer steps")
    parser.add_argument("--eval-steps", type=positive_int, default=10, help="Trainer validation steps")
    parser.add_argument("--max-seq-length", type=positive_int, default=128, help="tokens per example")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="Trainer batch size")
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="peak learning rate (default: the task's: 5e-5 for pretrained encoders, 1e-3 for "
                             "tiny, 2e-3 for translate)")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "auto"), default="float32",
                        help="Trainer's compute dtype; auto: mixed_bfloat16 when the CPU has AMX or AVX512-BF16")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="Trainer's tf.distribute strategy: default (one device), mirrored (this machine's "
                             "devices) or multi_worker (the workers in TF_CONFIG, as a cluster manager sets it)")
    parser.add_argument("--no-xla", action="store_true",
                        help="Trainer without XLA (jit_compile=False): for runs of a few steps, which the compile "
                             "would outlast (default: XLA)")
    parser.add_argument("--beam-arg", type=beam_arg, action="append", default=[],
                        help="a Beam pipeline argument, repeatable (e.g. --beam-arg=--direct_num_workers=2; "
                             "default: none)")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ logs (CUDA/XLA start-up lines included)")
    for flag in tasks.flags():  # what the tasks read: their columns, model choice, blessing threshold, ...
        flag.add_to(parser)


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
    if args.input_format == "tfrecord" and args.data_root is None:
        parser.error("argument --input-format: tfrecord needs --data-root (the default data is a CSV)")
    if (args.distill_into or args.quantize) and args.task not in tasks.COMPRESSIBLE_TASKS:
        parser.error(f"argument --distill-into/--quantize: compression applies to "
                     f"{', '.join(tasks.COMPRESSIBLE_TASKS)}, not {args.task}")
    tasks.get(args.task).check_args(parser, args)
    for flag, runner in (("flink_master", "flink"), ("spark_master", "spark")):
        if getattr(args, flag, None) and args.runner != runner:
            parser.error(f"argument --{flag.replace('_', '-')}: needs --runner {runner}, got --runner {args.runner}")
    if getattr(args, "spark_master", None) and not args.spark_master.startswith("spark://"):
        parser.error(f"argument --spark-master: a spark://host:port URL, got {args.spark_master!r}")
    return args


def config_from_args(args):
    """A PipelineConfig from the parsed flags (preparing the task's packaged data when no --data-root)."""
    from tfmodels.utils.cpu import has_bfloat16_matmul
    from tfx_pipeline.pipeline import PipelineConfig

    task = tasks.get(args.task)
    root = os.path.abspath(args.root)
    data_root = os.path.abspath(args.data_root or task.prepare_data(
        args, os.path.join(root, "data", f"{task.data_name}_{args.rows}")))
    options = task.options_from_args(args, data_root)
    precision = args.precision
    if precision == "auto":
        precision = "mixed_bfloat16" if has_bfloat16_matmul() else "float32"
    return PipelineConfig(
        data_root=data_root,
        pipeline_root=os.path.abspath(args.pipeline_root or os.path.join(root, "root")),
        metadata_path=os.path.abspath(args.metadata_path or os.path.join(root, "metadata.sqlite")),
        serving_model_dir=os.path.abspath(args.serving_model_dir or os.path.join(root, "serving")),
        pipeline_name=args.pipeline_name, model_name=args.model_name, task=task.name, options=options,
        train_steps=args.train_steps, eval_steps=args.eval_steps, max_seq_length=args.max_seq_length,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        beam_pipeline_args=list(args.beam_arg), input_format=args.input_format, precision=precision,
        strategy=args.strategy, jit_compile=not args.no_xla)


# Warnings a pipeline run logs that say nothing about this run, each with why it is harmless; `quiet_logs` drops
# exactly these (unless --verbose): any other warning still shows. (logger, text the message contains, why)
HARMLESS_WARNINGS = (
    ("absl", "ArtifactQuery.property_predicate is not supported",
     "TFX 1.16's channel resolver logs it for each input channel that carries a property predicate (about 11 "
     "per run); the channels it resolves are the ones this run produced, found by context, not by predicate."),
    ("absl", "ContextQuery.property_predicate is not supported",
     "the same resolver, for the context side of the same queries."),
    ("absl", "Tables initialized inside a tf.function",
     "tf.Transform analysing the preprocessing_fn: the tokenizer's vocabulary table lives in the analysis graph; "
     "the exported model tracks the table as a resource and initializes it once at load."),
    ("tensorflow", "SavedModel saved prior to TF 2.5 detected",
     "TFMA tries the legacy tf.keras loader on our export, which is a SavedModel of signatures (no "
     "keras_metadata.pb) by design; the Evaluator then uses the signatures, as it should."),
)


class _DropHarmlessWarnings:
    """A `logging` filter: False (drop) for a record of HARMLESS_WARNINGS."""

    def __init__(self, logger_name: str):
        self.texts = tuple(text for name, text, _ in HARMLESS_WARNINGS if name == logger_name)

    def filter(self, record) -> bool:
        message = record.getMessage()
        return not any(text in message for text in self.texts)


def filter_harmless_warnings(drop: bool = True) -> None:
    """Drop HARMLESS_WARNINGS from their loggers (one filter per logger however often it is called), or, with
    `drop` False, let them through again: the loggers are the process's, so a verbose run after a quiet one in the
    same process must remove the filter the quiet one installed."""
    import logging

    for name in {name for name, _, _ in HARMLESS_WARNINGS}:
        logger = logging.getLogger(name)
        installed = [f for f in logger.filters if isinstance(f, _DropHarmlessWarnings)]
        if drop and not installed:
            logger.addFilter(_DropHarmlessWarnings(name))
        for f in installed if not drop else ():
            logger.removeFilter(f)


def stop_cleanly_on_sigterm() -> None:
    """From the command line: SIGTERM (`kill`, a scheduler's or a CI's timeout) ends the command as Ctrl-C
    does, by an exception, so that what the run started in sessions of their own, which the signal does not
    reach (a Flink or Spark cluster, an infra-validation model server), is stopped on the way out instead of
    left running. Exit status 143 (128 + SIGTERM), as a plain kill gives."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def quiet_logs(args, argv) -> None:
    """Drop the pipeline's known-harmless warnings (HARMLESS_WARNINGS) unless --verbose; from the command line
    (`argv` None) also filter TensorFlow's start-up noise unless --verbose; in-process callers (tests) own their
    stderr and are left alone."""
    filter_harmless_warnings(drop=not args.verbose)
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


class RootInUse(RuntimeError):
    """Another run holds the ML Metadata store (and so the root) this run would use."""


@contextlib.contextmanager
def run_lock(metadata_path: str):
    """Holds `<metadata_path>.lock` (under the root) for the run: a second run on the same store is refused
    (RootInUse, naming the holder) rather than mixing its executions and reports with this one's.

    An advisory `flock`, which the kernel releases when the holder exits however it exits: a file left by a
    crashed run holds nothing. The file keeps the last holder's pid, for the message.
    """
    import fcntl

    path = metadata_path + ".lock"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = f.read().strip() or "a process"
            raise RootInUse(f"another run ({holder}) is using {metadata_path} and its pipeline root; wait for it "
                            f"to finish, or give this run another --root") from None
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def new_run_id() -> str:
    """A run id no other run has: the start time (as TFX's own run ids) and this process."""
    return f"{datetime.datetime.now().isoformat()}-{os.getpid()}"


def not_blessed_hint(config, metric: str, value: float) -> str:
    """The task's advice for a run that was not blessed with `metric` at `value` ("" when it has none)."""
    hint = tasks.get(config.task).not_blessed_hint
    return hint(config, metric, value) if hint else ""


def run_and_summarise(config, runner: str, master: Optional[str] = None) -> Outcome:
    """Runs the pipeline (`tfx_pipeline.runners.run`) under `run_lock`, prints what this run did (read back from
    ML Metadata by its run id: never another run's) and, on failure, one FAILED line."""
    from tfx_pipeline import runners
    from tfx_pipeline.data_checks import DataError

    start, run_id = time.monotonic(), new_run_id()
    failure: Optional[BaseException] = None
    try:
        with run_lock(config.metadata_path):
            runners.run(config, runner, master, run_id=run_id)
    except Exception as e:  # noqa: BLE001 - report what did run, then fail
        failure = e
    seconds = time.monotonic() - start
    summary = _summary_if_recorded(config, run_id)
    if summary is not None:  # nothing to time or show when the run stopped before any component
        print(summary.format())
        print(f"Pipeline time: {seconds:.1f} s", flush=True)
    if failure is not None:
        code, message = EXIT_FAILED, (str(failure) if isinstance(failure, (DataError, RootInUse)) else
                                      f"the pipeline raised {type(failure).__name__}: {failure}")
    elif summary is None:
        code, message = EXIT_FAILED, f"the pipeline recorded no run {run_id} in {config.metadata_path}"
    elif summary.anomalies:
        code, message = EXIT_ANOMALIES, "ExampleValidator found data anomalies; nothing was trained."
    elif not summary.blessed or not summary.pushed_destination:
        name, threshold = config.gate()
        value = summary.metrics.get(name, float("nan"))
        code, message = EXIT_NOT_BLESSED, (f"the model was not blessed ({name} {value:.4f} < {threshold} or "
                                           f"below the baseline); nothing pushed.{not_blessed_hint(config, name, value)}")
    else:
        code, message = EXIT_OK, ""
    if message:
        print(f"FAILED: {message}", file=sys.stderr, flush=True)
    return Outcome(summary, seconds, code, message)




def infra_validate(config, samples):
    """Serves the pushed model in a fresh process and sends the task's request; prints the answers.

    Returns `(exit code, answers or None)`.
    """
    from tfx_pipeline.infra_validation import InfraValidationError

    task = tasks.get(config.task)
    try:
        answers = task.query(config.model_base_path(), config.model_name, config.options, samples)
    except InfraValidationError as e:
        print(f"INFRA-VALIDATION FAILED: {e}", file=sys.stderr)
        return EXIT_FAILED, None
    print("\n".join(task.describe(samples, answers)), flush=True)
    return EXIT_OK, answers


def sample_requests(args, config, count: int = SAMPLE_COUNT) -> list:
    """The post-push requests: the task's (`--sample-text`, or rows of the data; see each task's
    `sample_requests`)."""
    return tasks.get(config.task).sample_requests(args, config, count)


def _summary_if_recorded(config, run_id: str):
    """The summary of run `run_id`; None when it failed before ML Metadata had it (no store, or no such run)."""
    from tfx_pipeline.run_summary import run_summary

    if not os.path.exists(config.metadata_path):
        return None
    try:
        return run_summary(config.metadata_path, run_id)
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
