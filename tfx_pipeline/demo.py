"""`python -m tfx_pipeline.demo` (`make demo`): the main job end to end, then the pushed model served over gRPC.

1. The TFX pipeline (ExampleGen ... Evaluator -> Pusher) on IMDB reviews, fine-tuning the pretrained
   all-MiniLM-L6-v2 encoder; prints the Evaluator's held-out accuracy and where the blessed model was pushed.
2. `python -m serving.server` in a fresh process on the pushed model base path (a free port), then gRPC
   Predict (raw-text signature) and Classify (tf.Examples) on real IMDB reviews that the pipeline never saw;
   prints review -> predicted label and probability, checks that both APIs agree, and stops the server.

Every pipeline flag of `python -m tfx_pipeline run` is accepted (defaults: the task's `Task.demo`). Exit status:
0 when everything worked; 2 data anomalies; 3 not blessed; 1 any other failure (including serving).
The run starts from an empty `--root` (a directory this demo created earlier is wiped, any other non-empty
directory is refused) unless `--reuse`, which keeps it so that TFX's cache and the blessed baseline show.
"""

import argparse
import os
import shutil
import sys
import time
from typing import Dict

from serving.process import ServerProcessError
from tfx_pipeline import cli, tasks
from tfx_pipeline.data_checks import DataError
from tfx_pipeline.tasks.base import DemoError

MARKER = ".tfx_pipeline_demo"  # marks a --root this demo created, so that it may wipe it
# Each task's demo defaults (`tasks.<name>.TASK.demo`: sized for the task's packaged data on 2 CPU cores,
# measured in the README's "make demo" and "make demo TASK=...") are the flags' defaults here.


# ---- the pipeline --------------------------------------------------------------------------------------------
def prepare_root(root: str, reuse: bool) -> None:
    """Start from an empty `root`, or keep it with `reuse`; never wipes a directory the demo did not create."""
    if os.path.isdir(root) and os.listdir(root) and not reuse:
        if not os.path.exists(os.path.join(root, MARKER)):
            raise DemoError(f"{root} is not empty and was not created by the demo; pass another --root "
                            "(or --reuse to run the pipeline in it)")
        with cli.run_lock(os.path.join(root, "metadata.sqlite")):  # RootInUse while another run uses it
            shutil.rmtree(root)
    os.makedirs(root, exist_ok=True)
    open(os.path.join(root, MARKER), "a").close()


# ---- main ----------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.ArgumentParser(prog="python -m tfx_pipeline.demo", description=__doc__.splitlines()[0])
    cli.add_pipeline_args(parser)
    demo = tasks.get(parser.parse_known_args(argv)[0].task).demo
    parser.set_defaults(root=demo.root, **demo.defaults)
    cli.add_runner_args(parser)
    parser.add_argument("--reviews", type=cli.positive_int, default=4,
                        help="requests to send the served model (held-out IMDB reviews, or the task's rows)")
    parser.add_argument("--reuse", action="store_true", help="keep --root from an earlier run (TFX cache)")
    parser.add_argument("--summary-json", help="also write what the demo measured as JSON here (default: none)")
    args = cli.check_args(parser, parser.parse_args(argv))
    if demo.adjust_args is not None:
        demo.adjust_args(args)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the demo shows TF's C++ errors only
        _quiet_python_logs()
    cli.quiet_logs(args, argv)
    start = time.monotonic()
    root = os.path.abspath(args.root)
    result: Dict = {"root": root}
    try:
        prepare_root(root, args.reuse)
        config = cli.config_from_args(args)
        demo = tasks.get(config.task).demo
        metric, threshold = config.gate()
        print(f"== 1/2 TFX pipeline, task {config.task}: {os.path.basename(config.data_root)} "
              f"({config.data_root}), {config.options.summary()}, {config.train_steps} steps x batch "
              f"{config.batch_size}, seq {config.max_seq_length}, lr {config.learning_rate:g}, {config.precision}; "
              f"blessing needs {metric} >= {threshold}", flush=True)
        outcome = cli.run_and_summarise(config, args.runner, cli.runner_master(args))
        result.update(outcome.as_dict())
        if outcome.exit_code != cli.EXIT_OK:
            return cli.finish(result, outcome.exit_code, args.summary_json, start)
        summary = outcome.summary
        value = summary.metrics[metric]
        note = demo.metrics_note(summary.metrics) if demo.metrics_note else ""
        print(f"Held-out {metric} (Evaluator, {summary.metrics.get('example_count', 0):.0f} eval-split rows): "
              f"{value:.4f}{note}", flush=True)
        print(f"\n== 2/2 Serving {config.model_base_path()} with `python -m serving.server` (a fresh process)",
              flush=True)
        if demo.serve is not None:
            demo.serve(args, config, root, result)
        else:
            code, result["answers"] = cli.infra_validate(config, cli.sample_requests(args, config, args.reviews))
            if code != cli.EXIT_OK:
                return cli.finish(result, code, args.summary_json, start)
    except (DemoError, DataError, cli.RootInUse, ServerProcessError) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return cli.finish(result, cli.EXIT_FAILED, args.summary_json, start)
    print(f"\nDemo OK: held-out {metric} {value:.4f}, version pushed to {summary.pushed_destination} and served "
          f"over gRPC. Total time {time.monotonic() - start:.0f} s.")
    return cli.finish(result, cli.EXIT_OK, args.summary_json, start)


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


if __name__ == "__main__":
    cli.stop_cleanly_on_sigterm()
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if "tfmodels.utils.logs" in sys.modules:
        sys.modules["tfmodels.utils.logs"].stop()  # drain the stderr filter: os._exit skips atexit
    # Skip the interpreter's teardown: TensorFlow's function finalizers then print "Exception ignored in
    # AtomicFunction.__del__" tracebacks. Everything the demo writes is closed by now.
    os._exit(exit_code)
