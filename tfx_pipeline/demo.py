"""`python -m tfx_pipeline.demo` (`make demo`): the main job end to end, then the pushed model served over gRPC.

1. The TFX pipeline (ExampleGen ... Evaluator -> Pusher) on IMDB reviews, fine-tuning the pretrained
   all-MiniLM-L6-v2 encoder; prints the Evaluator's held-out accuracy and where the blessed model was pushed.
2. `python -m serving.server` in a fresh process on the pushed model base path (a free port), then gRPC
   Predict (raw-text signature) and Classify (tf.Examples) on real IMDB reviews that the pipeline never saw;
   prints review -> predicted label and probability, checks that both APIs agree, and stops the server.

Every pipeline flag of `python -m tfx_pipeline run` is accepted (with the demo's defaults below). Exit status:
0 when everything worked; 2 data anomalies; 3 not blessed; 1 any other failure (including serving).
The run starts from an empty `--root` (a directory this demo created earlier is wiped, any other non-empty
directory is refused) unless `--reuse`, which keeps it so that TFX's cache and the blessed baseline show.
"""

import argparse
import math
import os
import shutil
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from serving.process import ServerProcess, ServerProcessError
from tfx_pipeline.cli import (
    EXIT_FAILED,
    EXIT_OK,
    ArgumentParser,
    add_pipeline_args,
    add_runner_args,
    check_args,
    config_from_args,
    finish,
    infra_validate,
    positive_int,
    quiet_logs,
    run_and_summarise,
    runner_master,
    sample_requests,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ROOT = "artifacts/demo"
MARKER = ".tfx_pipeline_demo"  # marks a --root this demo created, so that it may wipe it
# Sized for under 5 minutes on 2 CPU cores (the Trainer is about 2/3 of it) with held-out accuracy ~0.8;
# measured: README "make demo". 1,500 rows split 2:1 into ~1,000 train / ~500 eval reviews (64 x 32 = 2 epochs).
DEMO_DEFAULTS = dict(
    encoder="minilm", rows=1500, train_steps=64, eval_steps=4, max_seq_length=128, batch_size=32,
    learning_rate=1e-4, min_accuracy=0.7, precision="auto", model_name="imdb_sentiment",
    pipeline_name="tfmodels_imdb_demo",
)
# `make demo TASK=...`: each task's demo on its packaged data, sized for about 10 minutes on 2 CPU cores
# (measured: README "make demo TASK=..."). The pipeline is `python -m tfx_pipeline run`'s; the served model
# then answers the task's request (tfx_pipeline.infra_validation).
TASK_DEMO_DEFAULTS = {
    # WNUT-16 tweets, 2:1 train/eval. The tagger sits at the all-`O` prior (entity F1 0) for the first ~500 steps
    # (measured: 150 steps of 32 and 500 of 16 gave 0.000); 900 steps of 16 leave it.
    "token_classification": dict(
        encoder="minilm", rows=3000, train_steps=900, eval_steps=4, max_seq_length=64, batch_size=16,
        learning_rate=3e-4, min_f1=0.2, precision="auto", model_name="wnut16_ner",
        pipeline_name="tfmodels_ner_demo"),
    "span_qa": dict(  # SQuAD v1.1 train questions, 2:1 train/eval
        encoder="minilm", rows=1500, train_steps=150, eval_steps=4, max_seq_length=192, batch_size=16,
        learning_rate=1e-4, min_f1=0.2, precision="auto", model_name="squad_reader",
        pipeline_name="tfmodels_squad_demo"),
    "translate": dict(  # English -> Spanish Bible verses, vocabularies learned in the run
        encoder="small", rows=12000, train_steps=1000, eval_steps=4, max_seq_length=64, batch_size=64,
        learning_rate=2e-3, min_bleu=1.0, model_name="bible_en_es", pipeline_name="tfmodels_translate_demo"),
}
IMDB_CLASS_NAMES = ["negative", "positive"]  # IMDB's label 0 and 1
SERVER_START_TIMEOUT = 300
REQUEST_TIMEOUT = 120


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


# ---- the pipeline --------------------------------------------------------------------------------------------
def prepare_root(root: str, reuse: bool) -> None:
    """Start from an empty `root`, or keep it with `reuse`; never wipes a directory the demo did not create."""
    if os.path.isdir(root) and os.listdir(root) and not reuse:
        if not os.path.exists(os.path.join(root, MARKER)):
            raise DemoError(f"{root} is not empty and was not created by the demo; pass another --root "
                            "(or --reuse to run the pipeline in it)")
        shutil.rmtree(root)
    os.makedirs(root, exist_ok=True)
    open(os.path.join(root, MARKER), "a").close()


# ---- serving -------------------------------------------------------------------------------------------------
def serve(model_base_path: str, model_name: str, log_path: str):
    """`python -m serving.server` on the pushed base path in a fresh process (`ServerProcess`:
    entering waits until the model is AVAILABLE, leaving stops it with SIGTERM, SIGKILL after 30 s)."""
    return ServerProcess([f"--model_name={model_name}", f"--model_base_path={model_base_path}"],
                         model_name=model_name, log_path=log_path, start_timeout=SERVER_START_TIMEOUT)


def query_server(port: int, model_name: str, text_feature: str, texts: Sequence[str],
                 class_names: Sequence[str]) -> Dict:
    """gRPC status, Predict (`predict_text`: raw strings) and Classify (`classify`: tf.Examples) on `texts`.

    Checks the answers (one valid probability row per text, a known label, Classify == Predict) and returns
    `{"version", "labels", "probabilities", "classify"}`.
    """
    from serving.client import GrpcClient, text_examples
    from tfmodels.export.signatures import CLASSIFY_SIGNATURE, TEXT_SIGNATURE

    with GrpcClient(f"127.0.0.1:{port}", timeout=REQUEST_TIMEOUT) as client:
        available = [s["version"] for s in client.status(model_name) if s["state"] == "AVAILABLE"]
        if not available:
            raise DemoError(f"no AVAILABLE version of {model_name}: {client.status(model_name)}")
        outputs = client.predict(model_name, {text_feature: list(texts)}, signature_name=TEXT_SIGNATURE)
        classified = client.classify(model_name, text_examples(texts, text_feature),
                                     signature_name=CLASSIFY_SIGNATURE)
    labels = [name.decode() for name in outputs["label_name"].tolist()]
    probabilities = outputs["probabilities"].tolist()
    answers = {"version": int(max(available)), "labels": labels, "probabilities": probabilities,
               "classify": [[[label.decode() if isinstance(label, bytes) else label, float(score)]
                             for label, score in row] for row in classified]}
    check_answers(answers, len(texts), class_names)
    return answers


def check_answers(answers: Dict, count: int, class_names: Sequence[str]) -> None:
    """Raises DemoError unless every text got a probability distribution, its argmax label, and the same
    class scores from Classify."""
    problems = []
    if not (len(answers["labels"]) == len(answers["probabilities"]) == len(answers["classify"]) == count):
        problems.append(f"expected {count} answers from each API, got {len(answers['labels'])} labels, "
                        f"{len(answers['probabilities'])} probability rows, "
                        f"{len(answers['classify'])} classifications")
    for i, (label, row, classes) in enumerate(zip(answers["labels"], answers["probabilities"],
                                                  answers["classify"])):
        if len(row) != len(class_names) or not all(math.isfinite(p) and 0 <= p <= 1 for p in row) \
                or abs(sum(row) - 1) > 1e-3:
            problems.append(f"text {i}: not a probability distribution over {len(class_names)} classes: {row}")
            continue
        if label != class_names[max(range(len(row)), key=row.__getitem__)]:
            problems.append(f"text {i}: label {label!r} is not the most probable class of {row}")
        if [c for c, _ in classes] != list(class_names) or \
                any(abs(score - p) > 1e-4 for (_, score), p in zip(classes, row)):
            problems.append(f"text {i}: Classify answered {classes}, Predict {row}")
    if problems:
        raise DemoError("the served model answered wrongly:\n  " + "\n  ".join(problems))


def _snippet(text: str, width: int) -> str:
    text = " ".join(text.replace("<br />", " ").split())
    return text if len(text) <= width else text[:width - 3] + "..."


def format_answers(reviews: Sequence[Tuple[str, Optional[int]]], answers: Dict,
                   class_names: Sequence[str], width: int = 72) -> str:
    lines = [f"  {'true':<9} {'predicted':<9} {'p':>5}  review"]
    for (text, truth), label, row in zip(reviews, answers["labels"], answers["probabilities"]):
        true_name = class_names[truth] if truth is not None else "?"
        lines.append(f"  {true_name:<9} {label:<9} {max(row):5.3f}  {_snippet(text, width)}")
    return "\n".join(lines)


# ---- main ----------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m tfx_pipeline.demo", description=__doc__.splitlines()[0])
    add_pipeline_args(parser)
    task = parser.parse_known_args(argv)[0].task
    parser.set_defaults(root=DEFAULT_ROOT if task == "classify" else f"{DEFAULT_ROOT}_{task}",
                        **TASK_DEMO_DEFAULTS.get(task, DEMO_DEFAULTS))
    add_runner_args(parser)
    parser.add_argument("--reviews", type=positive_int, default=4,
                        help="requests to send the served model (held-out IMDB reviews, or the task's rows)")
    parser.add_argument("--reuse", action="store_true", help="keep --root from an earlier run (TFX cache)")
    parser.add_argument("--summary-json", help="also write what the demo measured as JSON here (default: none)")
    args = check_args(parser, parser.parse_args(argv))
    if args.class_name is None and args.data_root is None and args.task == "classify":
        args.class_name = list(IMDB_CLASS_NAMES)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the demo shows TF's C++ errors only
        _quiet_python_logs()
    quiet_logs(args, argv)
    start = time.monotonic()
    root = os.path.abspath(args.root)
    result: Dict = {"root": root}
    try:
        prepare_root(root, args.reuse)
        config = config_from_args(args)
        metric, threshold = config.gate()
        print(f"== 1/2 TFX pipeline, task {config.task}: {os.path.basename(config.data_root)} "
              f"({config.data_root}), encoder {config.encoder}, {config.train_steps} steps x batch "
              f"{config.batch_size}, seq {config.max_seq_length}, lr {config.learning_rate:g}, {config.precision}; "
              f"blessing needs {metric} >= {threshold}", flush=True)
        outcome = run_and_summarise(config, args.runner, runner_master(args))
        result.update(outcome.as_dict())
        if outcome.exit_code != EXIT_OK:
            return finish(result, outcome.exit_code, args.summary_json, start)
        summary = outcome.summary
        value = summary.metrics[metric]
        auc = (f", AUC {summary.metrics.get('auc/class_1', float('nan')):.4f} (chance 0.5)"
               if config.task == "classify" else "")
        print(f"Held-out {metric} (Evaluator, {summary.metrics.get('example_count', 0):.0f} eval-split rows): "
              f"{value:.4f}{auc}", flush=True)
        print(f"\n== 2/2 Serving {config.model_base_path()} with `python -m serving.server` (a fresh process)",
              flush=True)
        if config.task == "classify":
            serve_classifier(args, config, root, result)
        else:
            code, result["answers"] = infra_validate(config, sample_requests(args, config, args.reviews))
            if code != EXIT_OK:
                return finish(result, code, args.summary_json, start)
    except (DemoError, ServerProcessError) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return finish(result, EXIT_FAILED, args.summary_json, start)
    print(f"\nDemo OK: held-out {metric} {value:.4f}, version pushed to {summary.pushed_destination} and served "
          f"over gRPC. Total time {time.monotonic() - start:.0f} s.")
    return finish(result, EXIT_OK, args.summary_json, start)


def serve_classifier(args, config, root: str, result: Dict) -> None:
    """Predict and Classify on held-out IMDB reviews (or the data's first texts) from a fresh server; checks and
    prints the answers (into `result`). Raises DemoError or ServerProcessError."""
    class_names = list(config.class_names or [str(i) for i in range(config.num_classes)])
    if args.data_root is None:
        reviews = _heldout_reviews(args.reviews, args.rows)
    else:
        from tfx_pipeline import data

        reviews = [(text, None) for text in data.sample_texts(config.data_root, config.text_features[0],
                                                              args.reviews)]
    serve_start = time.monotonic()
    with serve(config.model_base_path(), config.model_name, os.path.join(root, "server.log")) as server:
        result["server_pid"] = server.pid
        print(f"Listening on 127.0.0.1:{server.grpc_port} after {time.monotonic() - serve_start:.0f} s; "
              f"sending {len(reviews)} IMDB reviews the pipeline never saw", flush=True)
        answers = query_server(server.grpc_port, config.model_name, config.text_features[0],
                               [text for text, _ in reviews], class_names)
    result["server_exit_code"] = server.exit_code
    result["serving_seconds"] = time.monotonic() - serve_start
    result["answers"] = answers
    result["reviews"] = [{"text": text, "label": truth} for text, truth in reviews]
    print(f"gRPC Predict (signature predict_text) -> model {config.model_name}, version "
          f"{answers['version']}; Classify (signature classify) gave the same scores:")
    print(format_answers(reviews, answers, class_names))
    known = [(truth, label) for (_, truth), label in zip(reviews, answers["labels"]) if truth is not None]
    if known:
        right = sum(class_names[truth] == label for truth, label in known)
        print(f"  {right}/{len(known)} right (these few are an illustration; the accuracy above is "
              f"the measurement)")
    print(f"Server stopped (exit status {server.exit_code}).")
    if server.exit_code != 0:
        raise DemoError(f"the server exited with status {server.exit_code}; log: {server.log_path}")


def _quiet_python_logs() -> None:
    """Hide library chatter of Python's side (absl/TFX/Beam warnings, Future/Deprecation warnings); errors still
    show. TF's C++ start-up noise is `quiet_logs`'s."""
    import logging
    import warnings

    from absl import logging as absl_logging

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    absl_logging.set_verbosity(absl_logging.ERROR)  # through absl, so that its flag parsing keeps it
    for name in ("tensorflow", "apache_beam"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _heldout_reviews(count: int, skip_rows: int) -> List[Tuple[str, int]]:
    """`count` labelled IMDB reviews outside the pipeline's data, half of each label when possible."""
    from tfx_pipeline import data

    candidates = data.heldout_imdb_examples(max(count * 5, 20), skip_rows=skip_rows)
    by_label = {0: [r for r in candidates if r[1] == 0], 1: [r for r in candidates if r[1] == 1]}
    picked = [r for pair in zip(by_label[1], by_label[0]) for r in pair][:count]
    return picked if len(picked) == count else candidates[:count]


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if "tfmodels.utils.logs" in sys.modules:
        sys.modules["tfmodels.utils.logs"].stop()  # drain the stderr filter: os._exit skips atexit
    # Skip the interpreter's teardown: TensorFlow's function finalizers then print "Exception ignored in
    # AtomicFunction.__del__" tracebacks. Everything the demo writes is closed by now.
    os._exit(exit_code)
