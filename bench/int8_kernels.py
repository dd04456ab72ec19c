"""Which int8 matmul kernels TensorFlow 2.16 runs fast on this CPU, at MiniLM's shapes.

Each candidate computes ``x @ w`` for a float32 activation ``x`` ``[M, K]`` and a weight ``w`` ``[K, N]`` held
in a ``tf.Variable`` (as in a model), inside ``tf.function`` (``jit_compile=True`` for the XLA ones). The int8
candidates pay their activation quantization (abs-max, round, cast) in every call, as a model must. The peer
is the float32 ``tf.matmul``; every round times each candidate in turn in one process, and medians are
quoted (the host is shared and loaded). Shapes: MiniLM-L6's four projections ``[M, 384] @ [384, 384]``, the
feed-forward ``[M, 384] @ [384, 1536]`` and ``[M, 1536] @ [1536, 384]``, with M = 128 (batch 1 at sequence
128) and M = 4096 (batch 32).

Candidates:
  fp32                  tf.matmul float32 (the peer; oneDNN's sgemm)
  fp32_xla              the same under XLA
  int8_weight_only      the export before issue 35: x @ float32(q) * scale (tfmodels.ops.int8 "float32")
  int8_dynamic          Keras-style: per-row int8 activations, tf.matmul int8 x int8 -> int32
  int8_dynamic_xla      the same under XLA (an int8 dot with int32 accumulation)
  quantized_matmul      tf.raw_ops.QuantizedMatMul quint8 x qint8 -> qint32 (no kernel in TF 2.16: reported)
  onednn_min_first      QuantizedMatMulWithBiasAndDequantize as TF's graph rewrite uses it: per-tensor
                        MIN_FIRST quint8 activations, per-tensor int8 weights (the kernel compensates the bias;
                        its output was far from float32's here: TF's oneDNN-v3 code seems to add the
                        compensation in accumulator units)
  onednn_requantize     QuantizedMatMulWithBiasAndRequantize (SCALED) with a quint8 output range calibrated
                        on this input (a static scheme: timing only; its error column is not meaningful,
                        the output range semantics were not matched)
  uniform_dot_hybrid    tf.raw_ops.UniformQuantizedDotHybrid: float activations x per-channel qint8 weights
                        (TF's per-channel dynamic-range op; a reference kernel: timed at M <= 512 only)
  onednn_u8s8           tfmodels.ops.int8 "dynamic_int8": per-row int8 activations shifted to uint8,
                        QuantizedMatMulWithBiasAndDequantize in SCALED mode (oneDNN's AMX/VNNI u8s8 inner
                        product, exact int32 sums), zero-point and per-channel scales applied in float
  bf16_weight_only      tfmodels.ops.int8 "bfloat16": int8 weights cast to bfloat16, bfloat16 activations,
                        oneDNN's AMX-BF16 matmul, float32 scales
  bf16                  weights stored in bfloat16 (reference: not an int8 format)

``--model`` times the whole pretrained all-MiniLM-L6-v2 encoder (``load_hf_bert(minilm_path())``) at
sequence 128, batch 1 (``--model-batch``), float32 against its ``quantize("int8")`` copy on each ``tfmodels.ops.int8`` path,
in ``tf.function`` (and both with ``jit_compile=True``, the int8 one on its default path), alternating,
medians; with the largest relative difference of its sequence output.

``--accuracy`` fine-tunes MiniLM on 2,048 IMDB reviews as bench/compress.py's teacher (the quickstart,
sequence 128) and scores the 500 held-out reviews float32 and int8 on each path (and under XLA).

Usage: ``python bench/int8_kernels.py [--rounds 30] [--calls 5] [--model] [--accuracy]``. The last line is
one JSON object.
"""

import argparse
import contextlib
import json
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from tfmodels.ops.int8 import INT8_PATHS, int8_matmul, int8_path, quantize_per_channel

SHAPES = [(384, 384), (384, 1536), (1536, 384)]
ROWS = [128, 4096]


def per_row_int8(x):
    """``(int8 x_q, float scale [M, 1])``: symmetric abs-max per row, as Keras' int8 Dense does."""
    abs_max = tf.reduce_max(tf.abs(x), axis=-1, keepdims=True)
    scale = tf.where(abs_max > 0, abs_max / 127.0, tf.ones_like(abs_max))
    return tf.cast(tf.round(x / scale), tf.int8), scale


def candidates(w):
    """``{name: (function of x, compiled with XLA?)}`` for the float weight ``w``."""
    q, scale = quantize_per_channel(w)
    q, scale = tf.Variable(q, trainable=False), tf.Variable(scale, trainable=False)
    w_f32 = tf.Variable(w, trainable=False)
    w_bf16 = tf.Variable(tf.cast(w, tf.bfloat16), trainable=False)
    q_tensor_scale = float(np.abs(w).max() / 127.0)  # per-tensor weights for the MIN_FIRST kernel
    q_tensor = tf.Variable(tf.bitcast(tf.cast(tf.round(w / q_tensor_scale), tf.int8), tf.qint8),
                           trainable=False)
    zero_bias = tf.zeros([w.shape[1]])
    qint8_q = tf.Variable(tf.bitcast(q, tf.qint8), trainable=False)
    out_range = {}  # calibrated once for onednn_requantize

    def fp32(x):
        return tf.matmul(x, w_f32)

    def weight_only(x):
        return int8_matmul(x, q, scale, "float32")

    def dynamic(x):
        xq, x_scale = per_row_int8(x)
        return tf.cast(tf.linalg.matmul(xq, q, output_type=tf.int32), tf.float32) * x_scale * scale

    def quantized_matmul(x):
        xu = tf.bitcast(tf.cast(tf.round(x * 127.0 / tf.reduce_max(tf.abs(x))) + 128.0, tf.uint8),
                        tf.quint8)
        out = tf.raw_ops.QuantizedMatMul(a=xu, b=qint8_q, min_a=-1.0, max_a=1.0, min_b=-1.0,
                                         max_b=1.0, Toutput=tf.qint32)
        return tf.cast(tf.bitcast(out[0], tf.int32), tf.float32)

    def min_first(x):
        x_min, x_max = tf.reduce_min(x), tf.reduce_max(x)
        xu = tf.quantization.quantize(x, x_min, x_max, tf.quint8, mode="MIN_FIRST")
        return tf.raw_ops.QuantizedMatMulWithBiasAndDequantize(
            a=xu.output, b=q_tensor, bias=zero_bias, min_a=xu.output_min, max_a=xu.output_max,
            min_b=-127.0 * q_tensor_scale, max_b=127.0 * q_tensor_scale, min_freezed_output=0.0,
            max_freezed_output=1.0, Toutput=tf.float32, input_quant_mode="MIN_FIRST")

    def requantize(x):
        # Non-negative activations only (SCALED); the output's quint8 range is the calibrated one.
        x_max = tf.reduce_max(tf.abs(x))
        xu = tf.bitcast(tf.cast(tf.round(tf.abs(x) * 255.0 / x_max), tf.uint8), tf.quint8)
        out = tf.raw_ops.QuantizedMatMulWithBiasAndRequantize(
            a=xu, b=q_tensor, bias=zero_bias, min_a=0.0, max_a=x_max, min_b=-127.0 * q_tensor_scale,
            max_b=127.0 * q_tensor_scale, min_freezed_output=0.0, max_freezed_output=out_range["max"],
            Toutput=tf.quint8, input_quant_mode="SCALED")
        return tf.cast(tf.bitcast(out[0], tf.uint8), tf.float32) * (out[2] / 255.0)

    def uniform_dot_hybrid(x):
        return tf.raw_ops.UniformQuantizedDotHybrid(
            lhs=x, rhs=qint8_q, rhs_scales=scale, rhs_zero_points=tf.zeros([w.shape[1]], tf.int32),
            Tout=tf.float32, rhs_quantization_min_val=-127, rhs_quantization_max_val=127,
            rhs_quantization_axis=1)

    def u8s8(x):
        return int8_matmul(x, q, scale, "dynamic_int8")

    def bf16_weight_only(x):
        return int8_matmul(x, q, scale, "bfloat16")

    def bf16(x):
        return tf.cast(tf.matmul(tf.cast(x, tf.bfloat16), w_bf16), tf.float32)

    def set_range(x):
        out_range["max"] = float(tf.reduce_max(tf.matmul(tf.abs(x), w)))

    table = {"fp32": (fp32, False), "fp32_xla": (fp32, True), "int8_weight_only": (weight_only, False),
             "int8_dynamic": (dynamic, False), "int8_dynamic_xla": (dynamic, True),
             "quantized_matmul": (quantized_matmul, False), "onednn_min_first": (min_first, False),
             "onednn_requantize": (requantize, False), "uniform_dot_hybrid": (uniform_dot_hybrid, False),
             "onednn_u8s8": (u8s8, False),
             "bf16_weight_only": (bf16_weight_only, False), "bf16": (bf16, False)}
    functions = {name: tf.function(f, jit_compile=xla) for name, (f, xla) in table.items()}
    return functions, set_range


def relative_error(name, y, x, w):
    reference = (tf.abs(x) if name == "onednn_requantize" else x).numpy() @ w
    return float(np.abs(y - reference).max() / np.abs(reference).max())


def median_ms(samples):
    return round(1000 * statistics.median(samples), 3)


def measure(rows, k, n, rounds, calls, rng):
    x = tf.constant(rng.normal(size=(rows, k)).astype("float32"))
    w = (rng.normal(size=(k, n)) / np.sqrt(k)).astype("float32")
    functions, set_range = candidates(w)
    if rows > 512:
        del functions["uniform_dot_hybrid"]  # ~38x the float32 time at M=128: minutes per round here
    set_range(x)
    errors, failures = {}, {}
    for name, f in list(functions.items()):
        try:
            errors[name] = relative_error(name, f(x).numpy(), x, w)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                tf.errors.NotFoundError) as error:
            failures[name] = error.message.splitlines()[0][:160]
            del functions[name]
    return interleaved_ms(functions, x, rounds, calls), errors, failures


def interleaved_ms(functions, x, rounds, calls):
    """``{name: median ms per call}``: every round times each function in turn on ``x``."""
    samples = {name: [] for name in functions}
    for _ in range(rounds):
        for name, f in functions.items():
            start = time.perf_counter()
            for _ in range(calls):
                f(x).numpy()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: median_ms(s) for name, s in samples.items()}


def print_table(title, ms, errors):
    print(f"\n{title}")
    print(f"{'candidate':<20}{'ms':>9}{'x fp32':>9}{'max rel err':>13}")
    for name in ms:
        print(f"{name:<20}{ms[name]:>9.3f}{ms['fp32'] / ms[name]:>9.2f}{errors[name]:>13.5f}")


def measure_model(rounds, calls, batch=1, sequence_length=128):
    """``{"ms": {side: median ms}, "max_relative_error": {side: ...}}`` for the MiniLM encoder, float32
    (the peer) and int8 on every path, ``batch`` rows."""
    from tfmodels.checkpoints import load_hf_bert  # noqa: PLC0415 (only for --model)
    from tfmodels.datasets import minilm_path  # noqa: PLC0415

    encoder = load_hf_bert(minilm_path())
    rng = np.random.default_rng(1)
    shape = (batch, sequence_length)
    inputs = {"token_ids": tf.constant(rng.integers(1000, 30000, shape), tf.int32),
              "segment_ids": tf.zeros(shape, tf.int32), "padding_mask": tf.ones(shape, tf.int32)}
    int8_encoder = keras.models.clone_model(encoder)
    int8_encoder.set_weights(encoder.get_weights())
    int8_encoder.quantize("int8")
    sides, outputs = {}, {}
    for side, model, path, xla in [("fp32", encoder, None, False), ("fp32_xla", encoder, None, True),
                                   *((f"int8_{path}", int8_encoder, path, False) for path in INT8_PATHS),
                                   ("int8_xla", int8_encoder, None, True)]:
        sides[side] = tf.function(lambda x, model=model: model(x)["sequence_output"], jit_compile=xla)
        with int8_path(path) if path else contextlib.nullcontext():  # the path is chosen while tracing
            outputs[side] = sides[side](inputs).numpy()
    reference = outputs["fp32"]
    errors = {side: round(float(np.abs(y - reference).max() / np.abs(reference).max()), 5)
              for side, y in outputs.items()}
    ms = interleaved_ms(sides, inputs, rounds, calls)
    print_table(f"all-MiniLM-L6-v2 encoder, batch {batch}, sequence {sequence_length} ({rounds} rounds x "
                f"{calls} calls, medians)", ms, errors)
    return {"ms": ms, "max_relative_error": errors,
            "speedup_vs_fp32": {side: round(ms["fp32"] / t, 2) for side, t in ms.items()}}


def heldout_accuracy(train_examples=2048, test_examples=500, sequence_length=128):
    """``{side: {"accuracy", "flips_vs_fp32"}}`` of the fine-tuned classifier on the held-out reviews."""
    from tfmodels.examples import quickstart  # noqa: PLC0415 (only for --accuracy)

    _, model = quickstart.run(train_examples=train_examples, test_examples=test_examples,
                              sequence_length=sequence_length, source="imdb")
    texts, labels = quickstart.load_reviews("imdb", seed=0)  # the split quickstart.run held out
    texts, labels = texts[-test_examples:], labels[-test_examples:]
    preprocessor = quickstart.minilm_preprocessor(sequence_length)
    batches = [preprocessor(tf.constant(texts[i:i + 50])) for i in range(0, test_examples, 50)]

    def predictions(path=None, xla=False):
        f = tf.function(lambda x: model(x), jit_compile=xla)
        with int8_path(path) if path else contextlib.nullcontext():
            f(batches[0])
        return np.concatenate([f(b).numpy() for b in batches]).argmax(-1)

    predicted = {"fp32": predictions()}
    model.quantize("int8")
    predicted.update({f"int8_{path}": predictions(path) for path in INT8_PATHS})
    predicted["int8_xla"] = predictions(xla=True)
    report = {side: {"accuracy": float((p == labels).mean()), "flips_vs_fp32": int((p != predicted["fp32"]).sum())}
              for side, p in predicted.items()}
    print(f"\nheld-out accuracy, {test_examples} IMDB reviews: {report}")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="alternating rounds (medians quoted)")
    parser.add_argument("--calls", type=int, default=5, help="calls per candidate per round")
    parser.add_argument("--rows", type=int, nargs="*", default=ROWS, help="M: batch x sequence")
    parser.add_argument("--model", action="store_true", help="also time the whole MiniLM encoder")
    parser.add_argument("--model-batch", type=int, default=1, help="the encoder's batch size")
    parser.add_argument("--accuracy", action="store_true", help="also the held-out IMDB accuracy (minutes)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    report = {"ms": {}, "max_relative_error": {}, "failed": {}, "speedup_vs_fp32": {}}
    if args.model:
        report["minilm_encoder"] = measure_model(args.rounds, args.calls, args.model_batch)
    if args.accuracy:
        report["heldout_accuracy"] = heldout_accuracy()
    int8_names = ("int8_weight_only", "int8_dynamic", "int8_dynamic_xla", "quantized_matmul",
                  "onednn_min_first", "onednn_requantize", "uniform_dot_hybrid", "onednn_u8s8",
                  "bf16_weight_only")
    for rows in args.rows:
        for k, n in SHAPES:
            shape = f"{rows}x{k}@{k}x{n}"
            ms, errors, failures = measure(rows, k, n, args.rounds, args.calls, rng)
            report["ms"][shape] = ms
            report["max_relative_error"][shape] = {name: round(e, 5) for name, e in errors.items()}
            report["speedup_vs_fp32"][shape] = {name: round(ms["fp32"] / t, 2) for name, t in ms.items()}
            report["failed"].update({name: message for name, message in failures.items()})
            print_table(f"{shape}  ({args.rounds} rounds x {args.calls} calls, medians)", ms, errors)
            for name, message in failures.items():
                print(f"{name:<20} FAILS: {message}")
    # Whole-shape-set speedup: the sum over MiniLM's matmuls (4 square ones per layer, one of each other).
    weights = {f"{rows}x384@384x384": 4 for rows in args.rows}
    totals = {}
    for rows in args.rows:
        shapes = [f"{rows}x{k}@{k}x{n}" for k, n in SHAPES]
        for name in report["ms"][shapes[0]]:
            totals.setdefault(rows, {})[name] = sum(report["ms"][s][name] * weights.get(s, 1) for s in shapes)
    report["layer_ms"] = {str(rows): {name: round(t, 3) for name, t in t_.items()} for rows, t_ in totals.items()}
    int8_speedups = {f"{name}@M={rows}": totals[rows]["fp32"] / totals[rows][name]
                     for rows in totals for name in totals[rows] if name in int8_names}
    if int8_speedups:
        best = max(int8_speedups, key=int8_speedups.get)
        report["best_int8"] = best
        report["best_int8_speedup"] = round(int8_speedups[best], 2)
        print(f"\none encoder layer's matmuls (ms): {report['layer_ms']}")
        print(f"best int8 vs fp32 over a layer's matmuls: {best} {report['best_int8_speedup']}x")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
