"""Decoding speed: our XLA cached greedy / beam-4 vs an uncached re-run-the-prefix loop.

    python bench/generate.py [--rounds 5] [--batch 8] [--max-length 48]

The baseline is the keras.io translation-example loop ("English-to-Spanish translation with a
sequence-to-sequence Transformer"): at every step run the decoder over the whole prefix so far,
take the last position's argmax and append it. It runs the same model with the same weights and
is given what help it can take: its one-step function is a ``tf.function`` compiled with XLA, and
the prefix is padded to the fixed maximum length so it compiles once. The beam-4 baseline is the
same loop over ``batch * beam_width`` prefixes, with the beam bookkeeping (top-k over
``beam * vocab`` scores, reordering the prefixes) in NumPy between steps. The model's end id lies
outside the vocabulary, so no method stops early and every call produces ``batch * max_length``
tokens (tokens/s counts those). Same model and weights for all; rounds alternate between the
methods; numbers are medians. The last line is one JSON object.
"""

import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tfmodels.utils import cli, logs  # noqa: E402  (standard library only)

logs.import_tensorflow_quietly()  # before anything imports TensorFlow: no CUDA start-up noise

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmodels.models.transformer import Seq2SeqTransformer  # noqa: E402


def parse_args(argv=None):
    p = cli.parser(__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per method")
    p.add_argument("--batch", type=int, default=8, help="source sequences per call")
    p.add_argument("--source-length", type=int, default=40, help="source tokens")
    p.add_argument("--max-length", type=int, default=48, help="generated tokens")
    p.add_argument("--vocab", type=int, default=8000, help="vocabulary size")
    p.add_argument("--hidden-size", type=int, default=256, help="model width")
    p.add_argument("--layers", type=int, default=3, help="encoder and decoder blocks each")
    p.add_argument("--beam-width", type=int, default=4, help="beams of beam search")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(p, p.parse_args(argv), [
        "rounds", "batch", "source_length", "max_length", "vocab", "hidden_size", "layers", "beam_width"])
    if argv is None:
        logs.quiet(args.verbose)
    return args


def keras_io_greedy(model, max_length):
    """keras.io-style greedy: each step re-runs the decoder on the whole (padded) prefix."""

    @tf.function(jit_compile=True)
    def step(source_ids, prefix, index):
        encoder_output, mask = model.encode(source_ids)
        logits = model.decode(prefix, encoder_output, mask)
        logits = tf.gather(logits, index, axis=1)
        banned = tf.one_hot([model.pad_id, model.start_id, model.end_id], tf.shape(logits)[-1])
        logits = tf.cast(logits, tf.float32) - 1e9 * tf.reduce_sum(banned, axis=0)
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def run(source_ids):
        batch = source_ids.shape[0]
        prefix = np.full((batch, max_length), model.pad_id, "int32")
        prefix[:, 0] = model.start_id
        for i in range(max_length - 1):
            prefix[:, i + 1] = step(source_ids, tf.constant(prefix), tf.constant(i)).numpy()
        return prefix[:, 1:]

    return run


def keras_io_beam(model, max_length, beam_width):
    """The same re-run-the-prefix loop over ``batch * beam_width`` prefixes; beams kept in NumPy."""

    @tf.function(jit_compile=True)
    def step(source_ids, prefix, index):
        encoder_output, mask = model.encode(source_ids)
        logits = tf.gather(model.decode(prefix, encoder_output, mask), index, axis=1)
        banned = tf.one_hot([model.pad_id, model.start_id], tf.shape(logits)[-1])
        logits = tf.cast(logits, tf.float32) - 1e9 * tf.reduce_sum(banned, axis=0)
        return tf.nn.log_softmax(logits, axis=-1)

    def run(source_ids):
        batch, k = source_ids.shape[0], beam_width
        tiled_source = tf.constant(np.repeat(source_ids, k, axis=0))
        prefix = np.full((batch, k, max_length), model.pad_id, "int32")
        prefix[:, :, 0] = model.start_id
        scores = np.tile(np.array([0.0] + [-1e9] * (k - 1)), (batch, 1))
        for i in range(max_length - 1):
            log_probs = step(tiled_source, tf.constant(prefix.reshape(batch * k, -1)), tf.constant(i))
            log_probs = log_probs.numpy().reshape(batch, k, -1)
            vocab = log_probs.shape[-1]
            candidates = (scores[:, :, None] + log_probs).reshape(batch, -1)
            best = np.argsort(-candidates, axis=1)[:, :k]
            scores = np.take_along_axis(candidates, best, axis=1)
            prefix = np.take_along_axis(prefix, (best // vocab)[:, :, None], axis=1)
            prefix[:, :, i + 1] = best % vocab
        return prefix[:, 0, 1:]

    return run


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(0)
    model = Seq2SeqTransformer(
        args.vocab,
        hidden_size=args.hidden_size,
        num_heads=4,
        intermediate_size=4 * args.hidden_size,
        num_encoder_layers=args.layers,
        num_decoder_layers=args.layers,
        dropout=0.0,
        max_target_length=args.max_length,
        # No end token can be generated (id beyond the vocabulary's use): every call runs all
        # max_length steps, so tokens/s compares equal work.
        end_id=args.vocab + 1,
    )
    model.build()
    source = tf.constant(
        np.random.default_rng(0).integers(3, args.vocab, (args.batch, args.source_length)), tf.int32
    )
    seed = tf.zeros([2], tf.int32)
    n = args.max_length
    beam = dict(beam_width=args.beam_width, length_penalty=0.6, early_stopping=False)
    methods = {
        "cached_greedy": lambda: model.get_generate_function("greedy", n)(source, seed)[0].numpy(),
        "cached_beam": lambda: model.get_generate_function("beam", n, **beam)(source, seed)[0].numpy(),
    }
    greedy_baseline = keras_io_greedy(model, n + 1)
    beam_baseline = keras_io_beam(model, n + 1, args.beam_width)
    methods["uncached_greedy"] = lambda: greedy_baseline(source.numpy())
    methods["uncached_beam"] = lambda: beam_baseline(source.numpy())
    calls = methods
    for name, fn in calls.items():  # compile / warm up
        t = time.perf_counter()
        fn()
        print(f"warmup {name}: {time.perf_counter() - t:.1f}s", flush=True)
    times = {name: [] for name in calls}
    for r in range(args.rounds):
        for name, fn in calls.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()), flush=True)
    tokens = args.batch * n
    tps = {name: tokens / statistics.median(v) for name, v in times.items()}
    result = {
        "tokens_per_s": {k: round(v, 1) for k, v in tps.items()},
        "speedup_greedy": round(tps["cached_greedy"] / tps["uncached_greedy"], 2),
        "speedup_beam": round(tps["cached_beam"] / tps["uncached_beam"], 2),
        "batch": args.batch,
        "source_length": args.source_length,
        "max_length": n,
        "beam_width": args.beam_width,
        "hidden_size": args.hidden_size,
        "layers": args.layers,
        "vocab": args.vocab,
        "rounds": args.rounds,
        "device": "cpu" if not tf.config.list_physical_devices("GPU") else "gpu",
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
