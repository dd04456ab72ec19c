"""Training throughput of tfmodels' BertClassifier vs keras-hub's BertTextClassifier.

Same config (L=4, H=256, A=4, I=1024, vocab 30522, seq 128, batch 32, AdamW), both compiled with
XLA, built and stepped in ONE process, alternating rounds; prints per-round step times, the median
ratio ours/keras-hub, and the fraction of this machine's fp32 matmul peak (measured in the same
run) that each reaches. Then the same under ``mixed_bfloat16``.

Our classifier asks the encoder for its pooled output only, so the last block computes queries,
attention output and feed-forward for the [CLS] position alone (same logits and gradients; TF
Model Garden's ``output_range``). keras-hub computes the whole last layer. The fraction of peak
counts the matmul FLOPs each side actually executes. ``--full-encoder`` runs ours on the full
encoder output instead, to show how much of the speedup that accounts for.

    python bench/bert_train.py [--rounds 7] [--steps 4] [--skip-bf16] [--full-encoder]

The last line is one JSON object: speedup_vs_keras_hub, fraction_of_peak, ...
"""

import json
import os
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tfmodels.utils import cli, logs  # noqa: E402  (standard library only)

logs.import_tensorflow_quietly()  # before anything imports TensorFlow: no CUDA start-up noise

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfmodels  # noqa: E402

CONFIG = dict(
    vocab_size=30522, num_layers=4, hidden=256, heads=4, intermediate=1024, seq=128, batch=32
)


def measure_matmul_peak(dtype="float32", n=1024, chain=8, repeats=5):
    """FLOP/s of a chain of square matmuls compiled with XLA: the machine's practical peak."""
    a = tf.random.normal((n, n), dtype=dtype) / np.sqrt(n)
    bs = [tf.random.normal((n, n), dtype=dtype) / np.sqrt(n) for _ in range(chain)]

    @tf.function(jit_compile=True)
    def run(x):
        for b in bs:
            x = tf.matmul(x, b)
        return x

    run(a).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(a).numpy()
        times.append(time.perf_counter() - start)
    return 2.0 * n**3 * chain / min(times)


def train_flops_per_step(c, pooled_only=False):
    """Matmul FLOPs of one training step (forward + backward = 3x forward). ``pooled_only``: the
    last layer projects keys and values for every token but the rest for the first token only."""
    h, i, t, b, layers = c["hidden"], c["intermediate"], c["seq"], c["batch"], c["num_layers"]
    per_token_layer = 2 * (4 * h * h + 2 * h * i)  # QKV + output projection, two FFN matmuls
    attention_layer = 2 * 2 * t * t * h  # QK^T and PV, per sequence
    full_layers = layers - 1 if pooled_only else layers
    forward = b * full_layers * (t * per_token_layer + attention_layer) + b * 2 * h * h  # + pooler
    if pooled_only:
        key_value = t * 2 * (2 * h * h)
        first_token = 2 * (2 * h * h + 2 * h * i) + 2 * 2 * t * h
        forward += b * (key_value + first_token)
    return 3 * forward


def make_batch(c, seed=0):
    rng = np.random.default_rng(seed)
    x = {
        "token_ids": rng.integers(1, c["vocab_size"], (c["batch"], c["seq"])).astype("int32"),
        "segment_ids": np.zeros((c["batch"], c["seq"]), "int32"),
        "padding_mask": np.ones((c["batch"], c["seq"]), "int32"),
    }
    x["padding_mask"][
        : c["batch"] // 2, c["seq"] * 3 // 4 :
    ] = 0  # some padding, as in real batches
    y = rng.integers(0, 2, c["batch"]).astype("int32")
    return x, y


def build_ours(c, full_encoder=False):
    config = tfmodels.BertConfig(
        vocab_size=c["vocab_size"],
        hidden_size=c["hidden"],
        num_hidden_layers=c["num_layers"],
        num_attention_heads=c["heads"],
        intermediate_size=c["intermediate"],
    )
    encoder = tfmodels.BertEncoder(config)
    if not full_encoder:
        return tfmodels.BertClassifier(encoder, num_classes=2)
    # BertClassifier's head on the full encoder output (every position of the last layer).
    from tfmodels.models.bert.encoder import bert_inputs
    from tfmodels.models.bert.task import logits_head

    inputs = bert_inputs()
    pooled = encoder(inputs)["pooled_output"]
    return keras.Model(inputs, logits_head(pooled, 2, 0.1, config.initializer_range, "classifier"))


def build_keras_hub(c):
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=c["vocab_size"],
        num_layers=c["num_layers"],
        num_heads=c["heads"],
        hidden_dim=c["hidden"],
        intermediate_dim=c["intermediate"],
    )
    return keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)


def compile_model(model):
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    return model


def time_steps(model, x, y, steps):
    model.train_on_batch(x, y)  # flush anything pending before the clock starts
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    float(np.asarray(loss).ravel()[0])
    return (time.perf_counter() - start) / steps


def compare(c, policy, rounds, steps, peak_dtype, full_encoder=False):
    """Alternates the two sides; each round also re-measures the matmul peak, so the fraction of
    peak is taken against what the machine delivered at that moment (this host is noisy)."""
    keras.config.set_dtype_policy(policy)
    x, y = make_batch(c)
    sides = {
        "tfmodels": compile_model(build_ours(c, full_encoder)),
        "keras_hub": compile_model(build_keras_hub(c)),
    }
    for name, model in sides.items():  # XLA compile outside the timed rounds
        print(f"  [{policy}] compiling {name} (XLA) ...", flush=True)
        model.train_on_batch(x, y)
    times = {name: [] for name in sides}
    peaks = []
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        peaks.append(measure_matmul_peak(peak_dtype, repeats=2))
        for name in order:
            times[name].append(time_steps(sides[name], x, y, steps))
        print(
            f"  [{policy}] round {r}: "
            + ", ".join(f"{n} {times[n][-1] * 1e3:.0f} ms/step" for n in sides),
            flush=True,
        )
    keras.config.set_dtype_policy("float32")
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratios = [k / o for o, k in zip(times["tfmodels"], times["keras_hub"])]
    flops = {
        "tfmodels": train_flops_per_step(c, pooled_only=not full_encoder),
        "keras_hub": train_flops_per_step(c),
    }
    fractions = {
        name: statistics.median(flops[name] / t / p for t, p in zip(times[name], peaks))
        for name in sides
    }
    return medians, statistics.median(ratios), fractions, statistics.median(peaks)


def main(argv=None):
    parser = cli.parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per side and dtype policy")
    parser.add_argument("--steps", type=int, default=4, help="training steps per round")
    parser.add_argument("--skip-bf16", action="store_true", help="skip the mixed_bfloat16 comparison")
    parser.add_argument("--full-encoder", action="store_true",
                        help="ours on the full encoder output (not the pooled output only)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(parser, parser.parse_args(argv), ["rounds", "steps"])
    if argv is None:
        logs.quiet(args.verbose)
    c = CONFIG
    ours_flops = train_flops_per_step(c, pooled_only=not args.full_encoder)
    keras_hub_flops = train_flops_per_step(c)
    print(f"train step = {keras_hub_flops / 1e9:.1f} GFLOP (keras-hub), "
          f"{ours_flops / 1e9:.1f} GFLOP (tfmodels)")
    medians, speedup, fractions, peak = compare(
        c, "float32", args.rounds, args.steps, "float32", args.full_encoder
    )
    result = {
        "config": c,
        "tfmodels_last_layer": "full" if args.full_encoder else "pooled_only",
        "train_gflop_per_step_tfmodels": round(ours_flops / 1e9, 1),
        "train_gflop_per_step_keras_hub": round(keras_hub_flops / 1e9, 1),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "peak_fp32_gflops": round(peak / 1e9, 1),
        "step_ms_tfmodels": round(medians["tfmodels"] * 1e3, 1),
        "step_ms_keras_hub": round(medians["keras_hub"] * 1e3, 1),
        "speedup_vs_keras_hub": round(speedup, 3),
        "fraction_of_peak": round(fractions["tfmodels"], 3),
        "fraction_of_peak_keras_hub": round(fractions["keras_hub"], 3),
    }
    print(
        f"fp32: ours {result['step_ms_tfmodels']} ms/step, keras-hub {result['step_ms_keras_hub']} "
        f"ms/step, speedup {speedup:.2f}x, {result['fraction_of_peak']:.0%} of peak "
        f"(keras-hub {result['fraction_of_peak_keras_hub']:.0%})"
    )
    if not args.skip_bf16:
        bf16_medians, bf16_speedup, bf16_fractions, bf16_peak = compare(
            c, "mixed_bfloat16", args.rounds, args.steps, "bfloat16", args.full_encoder
        )
        result.update(
            {
                "peak_bf16_gflops": round(bf16_peak / 1e9, 1),
                "bf16_step_ms_tfmodels": round(bf16_medians["tfmodels"] * 1e3, 1),
                "bf16_step_ms_keras_hub": round(bf16_medians["keras_hub"] * 1e3, 1),
                "bf16_speedup_vs_keras_hub": round(bf16_speedup, 3),
                "bf16_vs_fp32_tfmodels": round(medians["tfmodels"] / bf16_medians["tfmodels"], 3),
                "bf16_fraction_of_bf16_peak": round(bf16_fractions["tfmodels"], 3),
            }
        )
        print(
            f"bf16: ours {result['bf16_step_ms_tfmodels']} ms/step, keras-hub "
            f"{result['bf16_step_ms_keras_hub']} ms/step, speedup {bf16_speedup:.2f}x; "
            f"bf16 matmul peak {bf16_peak / 1e9:.1f} GFLOP/s"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
