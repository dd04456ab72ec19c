"""`model.fit` on several worker processes (`MultiWorkerMirroredStrategy`), checked against one worker, with a
worker killed mid-epoch and the cluster restarted from its last backup.

    python -m tfmodels.examples.multi_worker --workers 2 --steps 40 [--kill-worker-at-step 15]
        [--model classifier|seq2seq] [--steps-per-epoch 10] [--global-batch-size 16]

Without `TF_CONFIG` the command is the launcher: on this machine it runs (1) the single-worker reference, (2) the
cluster, one process per worker, each with its `TF_CONFIG`, and with `--kill-worker-at-step` (3) the cluster again
with the last worker SIGKILLed at that step; as a cluster manager does, the launcher then stops the other workers
and restarts them all, and they resume from `ChiefBackupAndRestore`'s latest backup. Its last line is one JSON
object: `workers`, `max_abs_loss_diff_vs_single_worker` (fit's per-step loss, cluster vs one worker, same global
batch and seed), `resumed_after_kill`, `final_weights_max_abs_diff` (killed-and-resumed vs uninterrupted cluster).

With `TF_CONFIG` set (by Kubernetes, Vertex AI, or the launcher) it is one worker: the same code runs on a real
cluster, with `--output` on storage every worker reaches. Dropout is off so that one worker and several see the
same computation (each replica draws its own dropout mask); XLA is on (`jit_compile=True`).
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

MODELS = ("classifier", "seq2seq")
KILL_EXIT = -signal.SIGKILL


# ----------------------------------------------------------------------------------------------- one worker


def _classifier_data(sequence_length: int, examples: int):
    import tensorflow as tf

    from tfmodels.examples.quickstart import load_reviews, minilm_preprocessor

    texts, labels = load_reviews("imdb")
    texts, labels = texts[:examples], labels[:examples]
    preprocessor = minilm_preprocessor(sequence_length)
    features = preprocessor(tf.constant(texts))
    return tf.data.Dataset.from_tensor_slices((features, labels)), preprocessor.tokenizer.vocabulary_size()


def _build_model(kind: str, vocab_size: int, sequence_length: int):
    import keras

    from tfmodels import BertClassifier, BertConfig, BertEncoder, Seq2SeqTransformer

    if kind == "classifier":
        config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=sequence_length,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        model = BertClassifier(BertEncoder(config), num_classes=2, dropout=0.0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    else:
        model = Seq2SeqTransformer(vocab_size, vocab_size, hidden_size=32, num_heads=2, intermediate_size=64,
                                   num_encoder_layers=1, num_decoder_layers=1, dropout=0.0,
                                   max_source_length=sequence_length, max_target_length=sequence_length)
        model.build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    return model


def _seq2seq_data(sequence_length: int, examples: int, vocab_size: int = 64):
    """Reverse a random sequence: a task the model learns in a few hundred steps, with a fixed order."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    source = rng.integers(3, vocab_size, (examples, sequence_length)).astype("int32")
    target = source[:, ::-1]
    start = np.ones((examples, 1), "int32")
    features = {"source_ids": source, "target_ids": np.concatenate([start, target[:, :-1]], axis=1)}
    return tf.data.Dataset.from_tensor_slices((features, target)), vocab_size


class _StepLog:
    """fit's per-step loss, and a crash at a chosen step (the first run only)."""

    def __init__(self, first_step: int, kill_at_step, kill_marker):
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                step = outer.first_step + outer.steps_run
                if kill_at_step is not None and step == kill_at_step and not os.path.exists(kill_marker):
                    open(kill_marker, "w").close()
                    os.kill(os.getpid(), signal.SIGKILL)  # a crash: no clean-up, no last backup

            def on_train_batch_end(self, batch, logs=None):
                outer.losses[str(outer.first_step + outer.steps_run)] = float(logs["loss"])
                outer.steps_run += 1

        self.first_step, self.steps_run, self.losses = first_step, 0, {}
        self.callback = Callback()


def run_worker(args) -> dict:
    """Trains on this process's share of the cluster in TF_CONFIG (or alone without it); returns its record."""
    import numpy as np
    import tensorflow as tf

    from tfmodels.distribute import (
        ChiefBackupAndRestore,
        cluster_size,
        is_chief,
        multi_worker_strategy,
        worker_dataset,
        worker_index,
    )

    strategy = multi_worker_strategy() if cluster_size() > 1 else tf.distribute.get_strategy()
    import keras

    keras.utils.set_random_seed(args.seed)
    examples = args.steps * args.global_batch_size
    if args.model == "classifier":
        data, vocab_size = _classifier_data(args.sequence_length, examples)
    else:
        data, vocab_size = _seq2seq_data(args.sequence_length, examples)
    with strategy.scope():
        model = _build_model(args.model, vocab_size, args.sequence_length)
    backup = ChiefBackupAndRestore(os.path.join(args.output, "backup"), save_freq="epoch", strategy=strategy)
    first_step = backup.completed_epochs() * args.steps_per_epoch
    inputs = worker_dataset(strategy, lambda: data, args.global_batch_size, start_step=first_step)
    step_log = _StepLog(first_step, args.kill_worker_at_step if worker_index(strategy) == args.workers - 1
                        else None, os.path.join(args.output, "killed"))
    model.fit(inputs, epochs=args.steps // args.steps_per_epoch, steps_per_epoch=args.steps_per_epoch,
              callbacks=[backup, step_log.callback], verbose=0)
    record = {"worker": worker_index(strategy), "replicas": strategy.num_replicas_in_sync,
              "first_step": first_step, "losses": step_log.losses}
    if is_chief(strategy):
        np.savez(os.path.join(args.output, "final_weights.npz"), *model.get_weights())
        model.save(os.path.join(args.output, "model.keras"))
    with open(os.path.join(args.output, f"worker{record['worker']}.json"), "w") as f:
        json.dump(record, f)
    return record


# -------------------------------------------------------------------------------------------- the launcher


def _worker_command(args, output: str) -> list:
    command = [sys.executable, "-m", "tfmodels.examples.multi_worker", "--model", args.model, "--workers",
               str(args.workers), "--steps", str(args.steps), "--steps-per-epoch", str(args.steps_per_epoch),
               "--global-batch-size", str(args.global_batch_size), "--sequence-length", str(args.sequence_length),
               "--seed", str(args.seed), "--output", output, "--worker"]
    if args.kill_worker_at_step is not None:
        command += ["--kill-worker-at-step", str(args.kill_worker_at_step)]
    return command


def run_cluster(args, output: str, workers: int, timeout: float = 900.0) -> dict:
    """Runs `workers` processes until all finish; when one dies, stops the rest and restarts them all (as
    Kubernetes restarts a job's pods). Returns {"restarts": n, "records": [worker records]}."""
    from tfmodels.distribute import local_cluster

    os.makedirs(output, exist_ok=True)
    restarts, deadline = 0, time.monotonic() + timeout
    while True:
        processes = local_cluster.start_workers(_worker_command(args, output), workers, output)
        try:
            local_cluster.wait(processes, timeout=max(1.0, deadline - time.monotonic()))
        except TimeoutError as error:
            raise TimeoutError(f"{error}; logs in {output}") from None
        finally:
            local_cluster.stop(processes)
        codes = [p.returncode for p in processes]
        if all(code == 0 for code in codes):
            break
        if KILL_EXIT not in codes or restarts >= 2:
            raise RuntimeError(f"workers exited with {codes}; logs in {output}")
        restarts += 1
    records = []
    for index in range(workers):
        with open(os.path.join(output, f"worker{index}.json")) as f:
            records.append(json.load(f))
    return {"restarts": restarts, "records": records}


def _max_abs_diff(first: dict, second: dict) -> float:
    steps = sorted(set(first) & set(second), key=int)
    if not steps:
        raise ValueError("no common steps to compare")
    return max(abs(first[s] - second[s]) for s in steps)


def _weights(output: str) -> list:
    import numpy as np

    with np.load(os.path.join(output, "final_weights.npz")) as f:
        return [f[name] for name in sorted(f.files, key=lambda n: int(n.split("_")[1]))]


def _weights_max_abs_diff(first: list, second: list) -> float:
    import numpy as np

    return max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(first, second))


def launch(args) -> dict:
    root = args.output or tempfile.mkdtemp(prefix="multi_worker_")
    start = time.monotonic()
    single = run_cluster(args_without_kill(args), os.path.join(root, "single"), 1)
    cluster = run_cluster(args_without_kill(args), os.path.join(root, "cluster"), args.workers)
    single_losses = single["records"][0]["losses"]
    result = {"model": args.model, "workers": args.workers,
              "replicas": cluster["records"][0]["replicas"], "steps": args.steps,
              "global_batch_size": args.global_batch_size, "steps_per_epoch": args.steps_per_epoch,
              "max_abs_loss_diff_vs_single_worker": max(_max_abs_diff(r["losses"], single_losses)
                                                        for r in cluster["records"]),
              "final_loss": cluster["records"][0]["losses"][str(args.steps - 1)],
              "first_loss": cluster["records"][0]["losses"]["0"],
              "final_weights_max_abs_diff_vs_single_worker": _weights_max_abs_diff(
                  _weights(os.path.join(root, "cluster")), _weights(os.path.join(root, "single")))}
    if args.kill_worker_at_step is not None:
        killed = run_cluster(args, os.path.join(root, "killed"), args.workers)
        resumed = killed["records"][0]
        result.update({
            "killed_worker": args.workers - 1, "killed_at_step": args.kill_worker_at_step,
            "restarts": killed["restarts"], "resumed_from_step": resumed["first_step"],
            "resumed_after_kill": killed["restarts"] >= 1 and 0 < resumed["first_step"] <= args.kill_worker_at_step
                                  and str(args.steps - 1) in resumed["losses"],
            "max_abs_loss_diff_after_resume": _max_abs_diff(resumed["losses"], cluster["records"][0]["losses"]),
            "final_weights_max_abs_diff": _weights_max_abs_diff(_weights(os.path.join(root, "killed")),
                                                                _weights(os.path.join(root, "cluster")))})
    else:
        result.update({"resumed_after_kill": None, "final_weights_max_abs_diff": None})
    result["seconds"] = round(time.monotonic() - start, 1)
    result["output"] = root
    return result


def args_without_kill(args):
    return argparse.Namespace(**dict(vars(args), kill_worker_at_step=None))


def parse_args(argv=None):
    from tfmodels.utils import cli

    parser = cli.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--steps", type=int, default=40, help="training steps (default: 40)")
    parser.add_argument("--steps-per-epoch", type=int, default=10,
                        help="steps per epoch: the backup interval (default: 10)")
    parser.add_argument("--kill-worker-at-step", type=int, default=None,
                        help="SIGKILL the last worker when it starts this step, then restart the cluster")
    parser.add_argument("--model", choices=MODELS, default="classifier",
                        help="classifier: a small BertClassifier on IMDB reviews (MiniLM's WordPiece); seq2seq: "
                             "a small Seq2SeqTransformer reversing sequences (default: classifier)")
    parser.add_argument("--global-batch-size", type=int, default=16, help="examples per step over all workers (default: 16)")
    parser.add_argument("--sequence-length", type=int, default=64, help="tokens per example (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of every worker (default: 0)")
    parser.add_argument("--output", help="working directory (default: a new temporary one)")
    parser.add_argument("--worker", action="store_true",
                        help="run as one worker of the cluster in TF_CONFIG (alone without it) instead of launching "
                             "them; implied when TF_CONFIG is set")
    args = cli.require_positive(parser, parser.parse_args(argv),
                                ["workers", "steps", "steps_per_epoch", "global_batch_size", "sequence_length"])
    if args.steps % args.steps_per_epoch:
        parser.error(f"--steps {args.steps} must be a multiple of --steps-per-epoch {args.steps_per_epoch}")
    if args.kill_worker_at_step is not None and not 0 < args.kill_worker_at_step < args.steps:
        parser.error(f"--kill-worker-at-step must be in 1..{args.steps - 1}, got {args.kill_worker_at_step}")
    if args.kill_worker_at_step is not None and args.workers < 2:
        parser.error("--kill-worker-at-step needs --workers 2 or more")
    if args.global_batch_size % args.workers:
        parser.error(f"--global-batch-size {args.global_batch_size} must be a multiple of --workers {args.workers}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker or os.environ.get("TF_CONFIG"):
        if not args.output:
            raise SystemExit("error: a worker needs --output, a directory every worker reaches")
        run_worker(args)
        return
    result = launch(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
