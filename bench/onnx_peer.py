"""ONNX Runtime peer for the compression benchmark: one classifier, fp32 and int8, on CPU.

Run inside `.venv-onnx` (made by `tools/onnx_env.sh`: TensorFlow 2.16.2, tf2onnx, onnx, ONNX
Runtime; kept apart from .venv so the benchmark's peer never changes the tested environment):

    .venv-onnx/bin/python bench/onnx_peer.py --saved-model DIR --inputs INPUTS.npz \\
        --out RESULT.json [--signature serving_default] [--threads 1] [--repeats 5]

What it does:

1. converts the SavedModel signature to ONNX with tf2onnx (`--opset`, 17 by default);
2. quantizes that file with `onnxruntime.quantization.quantize_dynamic` (int8 weights, QInt8;
   activations quantized per call; MatMul and Gather, ORT's default op types). `--per-channel
   auto` (the default) quantizes both ways and keeps the one whose logits on the inputs are
   closer to fp32's; `on` / `off` force it;
3. for fp32 and int8: writes the logits of every input row (`<out stem>.<variant>.logits.npy`,
   float32 [rows, classes], so the caller computes accuracy), and measures, with `--threads`
   intra-op threads (one inter-op thread, sequential execution): the median latency of batch-1
   calls, and rows/s of batch-32 calls. Each of `--repeats` rounds measures both variants, in
   alternating order (fp32 first in even rounds, int8 first in odd ones), so a change of load
   on a noisy host hits both alike; the report has the medians over rounds and every round.
   Sessions use ORT's own graph optimizations (`ORT_ENABLE_ALL`), not the offline transformer
   fusions of `onnxruntime.transformers` (neither side of the benchmark is hand-fused).

The SavedModel it expects, the one `export_token_id_signature` (below) writes from .venv:

- signature `serving_default` (or `--signature NAME`), inputs `token_ids`, `segment_ids`,
  `padding_mask`, each int32 `[batch, sequence_length]` (batch None), output `logits` float32
  `[batch, num_classes]`;
- variables frozen into constants, so it needs no tfmodels code, no Keras object and no custom
  gradient to load or convert (and the graph is just the inference math).

`INPUTS.npz` holds the same three arrays `[rows, sequence_length]` (any integer dtype), e.g.
`np.savez(path, **preprocessor(texts))` with numpy values.

Output JSON (sizes in bytes, times from `time.perf_counter`):

    {"fp32": {"onnx_file", "size_bytes", "logits_file", "p50_batch1_ms", "rows_per_s_batch32",
              "rounds": [{"p50_batch1_ms", "rows_per_s_batch32"}, ...]},
     "int8": {... same, plus "per_channel", "max_abs_logit_diff_vs_fp32",
              "argmax_agreement_vs_fp32"},
     "config": {"threads", "opset", "repeats", "batch1_calls", "batch32_calls", "rows",
                "sequence_length", "signature", "versions", "convert_s", "quantize_s"}}

Imports of TensorFlow, tf2onnx and ONNX Runtime are inside the functions that need them: this
file is imported from .venv for `export_token_id_signature` (no ONNX packages there) and run in
.venv-onnx (no tfmodels there).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import latency  # bench/latency.py: the timing code both sides share (stdlib + numpy)
import numpy as np

# tfmodels' names, repeated: this file runs in .venv-onnx, where tfmodels is not installed.
TOKEN_INPUTS = ("token_ids", "segment_ids", "padding_mask")
DEFAULT_SIGNATURE = "serving_default"
VARIANTS = ("fp32", "int8")


# ---------------------------------------------------------------------------------------------
# The SavedModel (run in .venv, with the Keras model)
# ---------------------------------------------------------------------------------------------


def export_token_id_signature(model, export_dir, sequence_length, *, signature=DEFAULT_SIGNATURE):
    """Write the frozen token-id SavedModel the peer converts (see the module docstring): the same
    frozen function the LiteRT export converts (`tfmodels.export.litert.frozen_token_id_function`),
    with the exact `Erf` kept (ONNX has it). Runs in .venv. Returns `export_dir`."""
    import tensorflow as tf

    from tfmodels.export.litert import frozen_token_id_function

    function, module = frozen_token_id_function(model, sequence_length, builtins_only=False)
    tf.saved_model.save(module, export_dir, signatures={signature: function})
    return export_dir


# ---------------------------------------------------------------------------------------------
# Conversion and quantization (run in .venv-onnx)
# ---------------------------------------------------------------------------------------------


def convert(saved_model, signature, onnx_path, opset):
    """tf2onnx's command line on one signature (its documented SavedModel entry point)."""
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", saved_model,
               "--signature_def", signature, "--opset", str(opset), "--output", onnx_path]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0 or not os.path.exists(onnx_path):
        raise RuntimeError(f"tf2onnx failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return onnx_path


def quantize(fp32_path, int8_path, per_channel):
    """Dynamic int8 quantization (QInt8 weights) of an ONNX file."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It logs "Please consider to run pre-processing before quantization" on every call; that
    # pre-processing (quant_pre_process) changed neither the logits nor the speed here, and its
    # symbolic shape inference does not complete on tf2onnx's BERT graph.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8, per_channel=per_channel)
    finally:
        root.setLevel(level)
    return int8_path


def session(path, threads):
    """A CPU session with `threads` intra-op threads, sequential, all graph optimizations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def feed_names(sess):
    """{token input name: ONNX input name}; tf2onnx keeps the signature's names (maybe `:0`)."""
    names = {}
    for node in sess.get_inputs():
        base = node.name.split(":")[0]
        if base not in TOKEN_INPUTS:
            raise ValueError(f"unexpected ONNX input {node.name!r}; expected {TOKEN_INPUTS}")
        names[base] = node.name
    if set(names) != set(TOKEN_INPUTS):
        raise ValueError(f"the ONNX model's inputs are {sorted(names)}, expected {TOKEN_INPUTS}")
    return names


def load_inputs(path):
    with np.load(path) as data:
        missing = [name for name in TOKEN_INPUTS if name not in data]
        if missing:
            raise ValueError(f"{path} lacks {missing}; it needs {list(TOKEN_INPUTS)}")
        inputs = {name: np.ascontiguousarray(data[name], dtype=np.int32) for name in TOKEN_INPUTS}
    shapes = {value.shape for value in inputs.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"{path}: the three inputs must share one [rows, seq] shape, got {shapes}")
    return inputs


class Runner:
    """One ONNX session and the feeds for it."""

    def __init__(self, path, threads):
        self.sess = session(path, threads)
        self.names = feed_names(self.sess)
        self.output = self.sess.get_outputs()[0].name

    def __call__(self, batch):
        return self.sess.run([self.output], {self.names[k]: v for k, v in batch.items()})[0]

    def logits(self, inputs, batch_size=32):
        rows = len(inputs["token_ids"])
        return np.concatenate([self({k: v[i:i + batch_size] for k, v in inputs.items()})
                               for i in range(0, rows, batch_size)]).astype(np.float32)


def batches(inputs, size, count):
    """`count` batches of `size` rows, taken cyclically from the inputs (tiled when fewer)."""
    rows = len(inputs["token_ids"])
    out = []
    for i in range(count):
        index = (np.arange(size) + i * size) % rows
        out.append({k: np.ascontiguousarray(v[index]) for k, v in inputs.items()})
    return out


def measure(runner, batch1, batch32, warmup):
    """(median batch-1 latency in ms, batch-32 rows/s) of one round, timed as our side is (`latency`)."""
    for batch in batch1[:warmup] + batch32[:1]:
        runner(batch)
    calls = iter(batch1)
    p50 = latency.batch1_ms(lambda: runner(next(calls)), len(batch1))
    calls32 = iter(batch32)
    rows_per_s = latency.rows_per_second(lambda: runner(next(calls32)), 32, len(batch32))
    return p50, rows_per_s


def versions():
    from importlib.metadata import version

    return {name: version(name) for name in ("onnxruntime", "onnx", "tf2onnx", "tensorflow", "numpy")}


def convert_and_quantize(args, stem, paths, inputs):
    """tf2onnx, then ONNX Runtime's dynamic int8 (per channel or per tensor, see `--per-channel`);
    writes `paths` and the logits of both; returns the choices and timings."""
    start = time.perf_counter()
    convert(args.saved_model, args.signature, paths["fp32"], args.opset)
    convert_s = time.perf_counter() - start
    fp32_logits = Runner(paths["fp32"], args.threads).logits(inputs)
    start = time.perf_counter()
    choices = {"on": [True], "off": [False], "auto": [False, True]}[args.per_channel]
    candidates = {}
    for per_channel in choices:
        path = f"{stem}.int8.{'per_channel' if per_channel else 'per_tensor'}.onnx"
        quantize(paths["fp32"], path, per_channel)
        logits = Runner(path, args.threads).logits(inputs)
        candidates[per_channel] = (float(np.abs(logits - fp32_logits).max()), path, logits)
    per_channel = min(candidates, key=lambda k: candidates[k][0])
    _, chosen, int8_logits = candidates[per_channel]
    os.replace(chosen, paths["int8"])
    for other, (_, path, _) in candidates.items():
        if other != per_channel:
            os.remove(path)  # only the kept variant stays on disk
    quantize_s = time.perf_counter() - start

    np.save(f"{stem}.fp32.logits.npy", fp32_logits)
    np.save(f"{stem}.int8.logits.npy", int8_logits)
    return {"per_channel": per_channel, "convert_s": convert_s, "quantize_s": quantize_s}


def run(args):
    os.makedirs(args.work_dir, exist_ok=True)
    stem = os.path.join(args.work_dir, os.path.splitext(os.path.basename(args.out))[0])
    inputs = load_inputs(args.inputs)
    rows, sequence_length = inputs["token_ids"].shape

    paths = {"fp32": f"{stem}.fp32.onnx", "int8": f"{stem}.int8.onnx"}
    if args.reuse and all(os.path.exists(path) for path in paths.values()):
        # A later timing round of the same model: convert and quantize once per benchmark run.
        with open(f"{stem}.conversion.json") as f:
            conversion = json.load(f)
    else:
        conversion = convert_and_quantize(args, stem, paths, inputs)
        with open(f"{stem}.conversion.json", "w") as f:
            json.dump(conversion, f)
    fp32_logits, int8_logits = np.load(f"{stem}.fp32.logits.npy"), np.load(f"{stem}.int8.logits.npy")
    per_channel, convert_s, quantize_s = (conversion[k] for k in ("per_channel", "convert_s", "quantize_s"))

    report = {}
    for variant in VARIANTS:
        logits_file = f"{stem}.{variant}.logits.npy"
        report[variant] = {"onnx_file": os.path.abspath(paths[variant]),
                           "size_bytes": os.path.getsize(paths[variant]),
                           "logits_file": os.path.abspath(logits_file), "rounds": []}
    report["int8"].update(
        per_channel=per_channel,
        max_abs_logit_diff_vs_fp32=float(np.abs(int8_logits - fp32_logits).max()),
        argmax_agreement_vs_fp32=float((int8_logits.argmax(-1) == fp32_logits.argmax(-1)).mean()))

    runners = {variant: Runner(paths[variant], args.threads) for variant in VARIANTS}
    batch1 = batches(inputs, 1, args.batch1_calls)
    batch32 = batches(inputs, 32, args.batch32_calls)
    for round_index in range(args.repeats):
        order = VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            p50, rows_per_s = measure(runners[variant], batch1, batch32, args.warmup)
            report[variant]["rounds"].append({"p50_batch1_ms": p50, "rows_per_s_batch32": rows_per_s})
    for variant in VARIANTS:
        rounds = report[variant]["rounds"]
        report[variant]["p50_batch1_ms"] = statistics.median(r["p50_batch1_ms"] for r in rounds)
        report[variant]["rows_per_s_batch32"] = statistics.median(
            r["rows_per_s_batch32"] for r in rounds)

    report["config"] = {
        "threads": args.threads, "opset": args.opset, "repeats": args.repeats,
        "batch1_calls": args.batch1_calls, "batch32_calls": args.batch32_calls,
        "rows": int(rows), "sequence_length": int(sequence_length), "signature": args.signature,
        "saved_model": os.path.abspath(args.saved_model), "versions": versions(),
        "convert_s": convert_s, "quantize_s": quantize_s}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saved-model", required=True, help="token-id SavedModel folder")
    parser.add_argument("--signature", default=DEFAULT_SIGNATURE)
    parser.add_argument("--inputs", required=True, help=".npz with token_ids/segment_ids/padding_mask")
    parser.add_argument("--out", required=True, help="the result JSON")
    parser.add_argument("--work-dir", help="where the .onnx and logits files go (default: next to --out)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--per-channel", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--repeats", type=int, default=5, help="rounds, each measuring both variants")
    parser.add_argument("--batch1-calls", type=int, default=100, help="timed batch-1 calls per round")
    parser.add_argument("--batch32-calls", type=int, default=10, help="timed batch-32 calls per round")
    parser.add_argument("--reuse", action="store_true",
                        help="time the .onnx files a previous call with the same --out/--work-dir wrote")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batch-1 calls per round")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.batch1_calls < 1 or args.batch32_calls < 1:
        parser.error("--threads, --repeats, --batch1-calls and --batch32-calls must be positive")
    args.work_dir = args.work_dir or os.path.dirname(os.path.abspath(args.out))
    return args


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    report = run(parse_args(argv))
    summary = {v: {k: report[v][k] for k in ("p50_batch1_ms", "rows_per_s_batch32", "size_bytes")}
               for v in VARIANTS}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
