"""Benchmark: what each compression of the MiniLM IMDB classifier costs in accuracy and buys in size and speed.

One run fine-tunes all-MiniLM-L6-v2 on IMDB reviews (the teacher, fp32), then makes every variant from it and
measures them all on the same held-out reviews:

- `fp32`: the fine-tuned model; `int8`: `model.quantize("int8")` (per-channel int8 weights);
- `student`: a smaller BertEncoder (`--student-layers`, default 2 of the teacher's 6, initialised from
  teacher layers) distilled on unlabelled reviews (`tfmodels.compress.distill`); `student_int8`: it, quantized;
- `pruned`: `--prune-heads` attention heads removed by Michel et al. importance, then a short recovery fine-tune;
- `xla`: the fp32 model exported with `jit_compile=True` (`tfmodels.export.xla`: the model part of each
  signature compiled by XLA per batch bucket, the tokenizer outside); `int8_xla`: the int8 model so exported;
- `litert`: the fp32 model as a LiteRT flatbuffer (token ids in; the tokenizer cannot run in LiteRT).

For each Keras variant: accuracy, SavedModel size on disk (`tfmodels.export.export_text_classifier`, tokenizer
inside), and p50 latency at batch 1 / throughput at batch 32 (sequence length 128) of the export's
`predict_text` signature (raw strings in). For the comparison with the peer, every variant is also timed on
token ids (the same computation without the tokenizer), as are LiteRT and the peer.

Peer, in the same run: the same fp32 model in ONNX Runtime (converted with tf2onnx) and ONNX Runtime's own
dynamic int8 of it (`quantize_dynamic`), run by `bench/onnx_peer.py` in its own environment (`.venv-onnx`, made by
`tools/onnx_env.sh`: tf2onnx's pins clash with ours). The peer runs in another process, so sides alternate round
by round (ours, then the peer's, `--rounds` times) and medians are quoted. Baselines in the same run: the
majority class and TF-IDF + logistic regression (scikit-learn) on the same training reviews.

The last line is one JSON object with `export_fp32_p50_ms`, `export_xla_p50_ms`, `export_int8_p50_ms` (p50
batch-1 latency of the exported signature, raw text in), `onnxruntime_fp32_p50_ms`, `onnxruntime_int8_p50_ms`
(the peer, token ids in), `int8_size_ratio` (fp32 size / int8 size), `int8_accuracy_drop`, `int8_speedup`,
`student_speedup`, `student_accuracy_drop` (accuracy points; speedups are p50 batch-1 latency ratios of the
exported signature), `best_vs_onnxruntime_latency` (our fastest variant within 1 accuracy point of fp32,
token-id p50 latency ours / ONNX Runtime fp32), the CPU's name and flags, and the per-variant table. The XLA
figures are null under `--no-xla` (which `--fast` sets).

    .venv/bin/python bench/compress.py [--train-examples 2048 --test-examples 500 ...] [--fast]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))
import latency  # noqa: E402

from tfmodels import compress, export  # noqa: E402
from tfmodels.examples import quickstart  # noqa: E402
from tfmodels.export import xla  # noqa: E402
from tfmodels.export.litert import LiteRTClassifier, export_litert  # noqa: E402
from tfmodels.utils import cpu  # noqa: E402

ONNX_PYTHON = os.path.join(REPO, ".venv-onnx", "bin", "python")
TEXT_FEATURE = "text"
BATCH_ROWS = 32
FAST = dict(train_examples=64, test_examples=64, unlabelled_examples=128, sequence_length=32, epochs=1,
            distill_epochs=1, prune_heads=6, importance_examples=16, recover_steps=2, rounds=1, batch1_calls=3,
            batch_calls=1, no_xla=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-examples", type=int, default=2048, help="labelled reviews the teacher learns")
    parser.add_argument("--test-examples", type=int, default=500, help="held-out reviews every variant is scored on")
    parser.add_argument("--unlabelled-examples", type=int, default=4096,
                        help="further reviews, without labels, the student is distilled on")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1, help="teacher fine-tuning epochs")
    parser.add_argument("--student-layers", type=int, default=2, help="student encoder layers (teacher: 6)")
    parser.add_argument("--student-hidden-size", type=int, default=None,
                        help="student width (default the teacher's 384: initialised from teacher layers; "
                             "narrower students start from random weights)")
    parser.add_argument("--distill-epochs", type=int, default=2, help="passes over the unlabelled reviews")
    parser.add_argument("--prune-heads", type=int, default=24, help="attention heads removed (of 72)")
    parser.add_argument("--importance-examples", type=int, default=256, help="reviews head importance is measured on")
    parser.add_argument("--recover-steps", type=int, default=32, help="fine-tuning steps after pruning")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (medians quoted)")
    parser.add_argument("--batch1-calls", type=int, default=20, help="batch-1 calls per variant per round")
    parser.add_argument("--batch-calls", type=int, default=3, help="batch-32 calls per variant per round")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads, both sides")
    parser.add_argument("--no-peer", action="store_true", help="skip ONNX Runtime (no .venv-onnx)")
    parser.add_argument("--no-xla", action="store_true",
                        help="skip the xla/int8_xla variants (--fast does: their compiles outlast a smoke run; "
                             "tests/export/test_export_xla.py checks the XLA export)")
    parser.add_argument("--fast", action="store_true", help="tiny settings: a smoke run (the notebook's CI setting)")
    parser.add_argument("--work-dir", help="keep the exports here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.fast:
        for name, value in FAST.items():
            setattr(args, name, value)
    return args


# -- data and the teacher ---------------------------------------------------------------------------------------


def split_reviews(args):
    """Disjoint (train, unlabelled, test) slices of the shuffled IMDB reviews, as (texts, labels)."""
    texts, labels = quickstart.load_reviews("imdb", seed=0)
    needed = args.train_examples + args.unlabelled_examples + args.test_examples
    if needed > len(texts):
        raise SystemExit(f"asked for {needed} reviews, IMDB has {len(texts)}")
    train = slice(0, args.train_examples)
    unlabelled = slice(args.train_examples, args.train_examples + args.unlabelled_examples)
    return (texts[train], labels[train]), texts[unlabelled], (texts[-args.test_examples:], labels[-args.test_examples:])


def baselines(train, test):
    """Accuracy of the majority class and of TF-IDF + logistic regression, trained on `train`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    majority = float((test[1] == np.bincount(train[1]).argmax()).mean())
    vectorizer = TfidfVectorizer(min_df=2, ngram_range=(1, 2), sublinear_tf=True)
    classifier = LogisticRegression(max_iter=1000).fit(vectorizer.fit_transform(train[0]), train[1])
    tfidf = float((classifier.predict(vectorizer.transform(test[0])) == test[1]).mean())
    return {"majority_class": round(majority, 4), "tfidf_logistic_regression": round(tfidf, 4)}


def fine_tune_teacher(args, train, test):
    """MiniLM fine-tuned on `train` as in the quickstart; returns (model, preprocessor)."""
    _, model = quickstart.run(train_examples=len(train[0]), test_examples=len(test[0]),
                              sequence_length=args.sequence_length, epochs=args.epochs, source="imdb",
                              jit_compile=not args.fast)
    return model, quickstart.minilm_preprocessor(args.sequence_length)


def token_ids(preprocessor, texts):
    return {name: np.asarray(value) for name, value in preprocessor(tf.constant(list(texts))).items()}


# -- the variants ------------------------------------------------------------------------------------------------


def copy_of(model):
    """An independent copy (a `.keras` round trip: what a user who compresses a saved model does)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        return keras.models.load_model(path)


def quantized(model):
    model = copy_of(model)
    model.quantize("int8")
    return model


def distilled_student(args, teacher, preprocessor, unlabelled):
    student = compress.make_student(teacher, num_layers=args.student_layers, hidden_size=args.student_hidden_size)
    data = tf.data.Dataset.from_tensor_slices(token_ids(preprocessor, unlabelled)).shuffle(
        len(unlabelled), seed=0).batch(32)
    compress.distill(teacher, student, data, epochs=args.distill_epochs, jit_compile=not args.fast)
    return student


def pruned_and_recovered(args, teacher, preprocessor, train):
    rows = min(args.importance_examples, len(train[0]))
    importance_data = tf.data.Dataset.from_tensor_slices(
        (token_ids(preprocessor, train[0][:rows]), train[1][:rows])).batch(8)
    pruned, plan = compress.prune_by_importance(teacher, importance_data, num_heads=args.prune_heads)
    # --fast trains a few steps: XLA's compile would cost more than it saves
    pruned.compile(optimizer=keras.optimizers.AdamW(2e-5), jit_compile=not args.fast)
    recover = quickstart.make_dataset(preprocessor, *train, batch_size=32, shuffle=True).repeat()
    pruned.fit(recover, steps_per_epoch=args.recover_steps, epochs=1, verbose=0)
    return pruned, plan


# -- measuring ---------------------------------------------------------------------------------------------------


def directory_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def export_variant(model, preprocessor, directory, **options):
    export.export_text_classifier(directory, model, export.text_preprocess(preprocessor, [TEXT_FEATURE]),
                                  text_features=[TEXT_FEATURE], class_names=("negative", "positive"), **options)
    return directory


def exported_accuracy(signature, test):
    probabilities = np.concatenate([
        signature(**{TEXT_FEATURE: tf.constant(list(test[0][i:i + BATCH_ROWS]))})["probabilities"].numpy()
        for i in range(0, len(test[0]), BATCH_ROWS)])
    return float((probabilities.argmax(-1) == test[1]).mean())


def token_id_function(model, jit_compile=False):
    """The model on token ids as its export runs it: plain, or XLA per batch bucket."""
    scores = lambda inputs: model(inputs, training=False)  # noqa: E731
    return tf.function(xla.batch_bucketed(scores) if jit_compile else scores, reduce_retracing=True)


def onnx_peer(args, teacher, work, test_ids, round_index):
    """One timing round of bench/onnx_peer.py in .venv-onnx on the teacher's token-id SavedModel (converted
    and quantized in the first round, reused after); None without the env."""
    if args.no_peer or not os.path.exists(ONNX_PYTHON):
        if round_index == 0:
            print(f"ONNX Runtime peer skipped: {'--no-peer' if args.no_peer else ONNX_PYTHON + ' missing'} "
                  "(make it with tools/onnx_env.sh)")
        return None
    import onnx_peer

    saved_model, inputs = os.path.join(work, "token_ids_fp32"), os.path.join(work, "test_inputs.npz")
    if round_index == 0:
        onnx_peer.export_token_id_signature(teacher, saved_model, args.sequence_length)
        np.savez(inputs, **test_ids)
    out = os.path.join(work, "onnx", "peer.json")
    command = [ONNX_PYTHON, os.path.join(REPO, "bench", "onnx_peer.py"), "--saved-model", saved_model,
               "--inputs", inputs, "--out", out, "--threads", str(args.threads), "--repeats", "1",
               "--batch1-calls", str(args.batch1_calls), "--batch32-calls", str(args.batch_calls), "--reuse"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ONNX Runtime peer failed:\n{result.stderr[-3000:]}")
    with open(out) as f:
        return json.load(f)


def make_variants(args, teacher, preprocessor, train, unlabelled):
    """`({variant: keras model}, pruning plan)`: every compression of `teacher`."""
    models = {"fp32": teacher, "int8": quantized(teacher)}
    print("distilling the student ...")
    models["student"] = distilled_student(args, teacher, preprocessor, unlabelled)
    models["student_int8"] = quantized(models["student"])
    print("pruning heads ...")
    models["pruned"], plan = pruned_and_recovered(args, teacher, preprocessor, train)
    return models, plan


def measure_variants(args, models, preprocessor, test, work):
    """`{variant: figures}`: accuracy, size and speed of each model's export, of the teacher's LiteRT file and,
    with `.venv-onnx`, of the teacher in ONNX Runtime (fp32 and its int8), all on the same held-out reviews."""
    teacher = models["fp32"]
    test_ids = token_ids(preprocessor, test[0])
    one_text = {TEXT_FEATURE: tf.constant(list(test[0][:1]))}
    batch_texts = {TEXT_FEATURE: tf.constant(list(test[0][:BATCH_ROWS]))}
    one_ids = {name: value[:1] for name, value in test_ids.items()}
    batch_ids = {name: value[:BATCH_ROWS] for name, value in test_ids.items()}

    variants, exported_sides, token_sides = {}, {}, {}
    exports = {name: (model, {}) for name, model in models.items()}
    if not args.no_xla:
        exports["xla"] = (teacher, {"jit_compile": True})
        exports["int8_xla"] = (models["int8"], {"jit_compile": True})
    for name, (model, options) in exports.items():
        directory = export_variant(model, preprocessor, os.path.join(work, name, "1"), **options)
        signature = tf.saved_model.load(directory).signatures[export.TEXT_SIGNATURE]
        variants[name] = {"accuracy": round(exported_accuracy(signature, test), 4),
                          "saved_model_bytes": directory_bytes(directory),
                          "parameters": int(model.count_params())}
        exported_sides[name] = {"batch1": lambda s=signature: s(**one_text),
                                "batch": lambda s=signature: s(**batch_texts)}
        function = token_id_function(model, **options)
        token_sides[name] = {"batch1": lambda f=function: f(one_ids), "batch": lambda f=function: f(batch_ids)}
        print(f"{name}: accuracy {variants[name]['accuracy']:.4f}, {variants[name]['saved_model_bytes'] / 1e6:.1f} MB")

    litert_path = export_litert(teacher, os.path.join(work, "litert", "model.tflite"),
                                sequence_length=args.sequence_length)
    litert = LiteRTClassifier(litert_path, num_threads=args.threads)
    variants["litert"] = {"accuracy": round(float((litert(test_ids).argmax(-1) == test[1]).mean()), 4),
                          "saved_model_bytes": os.path.getsize(litert_path), "runtime": litert.runtime}
    token_sides["litert"] = {"batch1": lambda: litert(one_ids), "batch": lambda: litert(batch_ids)}

    timing = dict(rounds=1, batch1_calls=args.batch1_calls, batch_calls=args.batch_calls, batch_rows=BATCH_ROWS)
    exported_rounds, token_rounds, peer_rounds = [], [], []
    for r in range(args.rounds):  # ours, then the peer's process, alternately
        exported_rounds.append(latency.interleaved(exported_sides, **timing))
        token_rounds.append(latency.interleaved(token_sides, **timing))
        peer = onnx_peer(args, teacher, work, test_ids, r)
        if peer is not None:
            peer_rounds.append(peer)
    batch_key = f"rows_per_s_batch{BATCH_ROWS}"
    for name in variants:
        if name in exported_sides:
            variants[name]["p50_ms_batch1"] = median(exported_rounds, name, "p50_ms_batch1")
            variants[name][batch_key] = median(exported_rounds, name, batch_key)
        variants[name]["token_ids_p50_ms_batch1"] = median(token_rounds, name, "p50_ms_batch1")
        variants[name][f"token_ids_{batch_key}"] = median(token_rounds, name, batch_key)
    if peer_rounds:
        for kind in ("fp32", "int8"):
            logits = np.load(peer_rounds[-1][kind]["logits_file"])
            variants[f"onnxruntime_{kind}"] = {
                "accuracy": round(float((logits.argmax(-1) == test[1]).mean()), 4),
                "saved_model_bytes": peer_rounds[-1][kind]["size_bytes"],
                "token_ids_p50_ms_batch1": median_of([p[kind]["p50_batch1_ms"] for p in peer_rounds]),
                f"token_ids_{batch_key}": median_of([p[kind][f"rows_per_s_batch{BATCH_ROWS}"] for p in peer_rounds])}
    return variants


def main(argv=None):
    args = parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)
    work = args.work_dir or tempfile.mkdtemp(prefix="compress_bench_")
    started = time.time()
    train, unlabelled, test = split_reviews(args)
    report = {"baselines": baselines(train, test)}
    print(f"baselines on {len(test[0])} held-out reviews: {report['baselines']}")
    teacher, preprocessor = fine_tune_teacher(args, train, test)
    models, plan = make_variants(args, teacher, preprocessor, train, unlabelled)
    report["pruned_heads"] = {int(k): v for k, v in plan.heads.items()}
    report["variants"] = variants = measure_variants(args, models, preprocessor, test, work)
    report.update(headline(variants))
    report.update(seconds=round(time.time() - started), sequence_length=args.sequence_length,
                  threads=args.threads, test_examples=len(test[0]), fast=args.fast, cpu=cpu.describe())
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report))
    return report


def median(rounds, name, key):
    return median_of([r[name][key] for r in rounds])


def median_of(values):
    return round(float(np.median(values)), 3)


def headline(variants):
    """The issue's figures from the per-variant table (accuracy drops in points)."""
    fp32, int8, student = variants["fp32"], variants["int8"], variants["student"]
    points = lambda v: round(100 * (fp32["accuracy"] - v["accuracy"]), 2)  # noqa: E731
    peer = lambda kind: variants.get(f"onnxruntime_{kind}", {}).get("token_ids_p50_ms_batch1")  # noqa: E731
    figures = {
        "export_fp32_p50_ms": fp32["p50_ms_batch1"],
        "export_xla_p50_ms": variants.get("xla", {}).get("p50_ms_batch1"),
        "export_int8_p50_ms": int8["p50_ms_batch1"],
        "export_int8_xla_p50_ms": variants.get("int8_xla", {}).get("p50_ms_batch1"),
        "onnxruntime_fp32_p50_ms": peer("fp32"),
        "onnxruntime_int8_p50_ms": peer("int8"),
        "int8_size_ratio": round(fp32["saved_model_bytes"] / int8["saved_model_bytes"], 2),
        "int8_accuracy_drop": points(int8),
        "int8_speedup": round(fp32["p50_ms_batch1"] / int8["p50_ms_batch1"], 2),
        "student_speedup": round(fp32["p50_ms_batch1"] / student["p50_ms_batch1"], 2),
        "student_accuracy_drop": points(student),
    }
    ours = {name: v for name, v in variants.items() if not name.startswith("onnxruntime") and points(v) <= 1.0}
    best = min(ours, key=lambda name: ours[name]["token_ids_p50_ms_batch1"])
    figures["best_variant"] = best
    peer = variants.get("onnxruntime_fp32")
    figures["best_vs_onnxruntime_latency"] = (
        round(ours[best]["token_ids_p50_ms_batch1"] / peer["token_ids_p50_ms_batch1"], 3) if peer else None)
    return figures


if __name__ == "__main__":
    main()
