"""XLA for the numeric part of an exported signature, on a handful of batch shapes.

String ops (tokenizers, tf.Example parsing) cannot be compiled by XLA, so an export compiles only the
model: `batch_bucketed(fn)` wraps a token-ids -> scores function in `tf.function(jit_compile=True)` and pads
each request's rows up to the next of a few batch sizes (`DEFAULT_BATCH_BUCKETS`; the sequence length is
already fixed by the preprocessor), so XLA compiles one program per bucket instead of one per batch size a
client happens to send. Requests larger than the largest bucket run in chunks of it. The padding rows are
all-padding inputs whose outputs are dropped; rows do not interact, so the answer equals the uncompiled one
(up to float rounding: XLA fuses and reorders element-wise work).

`tf.saved_model.load` runs such an export as it is. TF Serving runs it on CPU only with XLA's CPU JIT
switched on, `tensorflow_model_server --xla_cpu_compilation_enabled=true` (off by default: the first
compilation then fails with a bad status); `python -m serving.server` has it on by default, and with
`--xla_cpu_compilation_enabled=false` refuses to load the model, naming the flag. On GPU no flag is needed.
The translator's and causal LM's exports (XLA decoding loops) need the flag on TF Serving as well.
"""

from typing import Callable, Sequence

import tensorflow as tf

from tfmodels.text.windows import run_in_chunks

# Batch sizes one compiled program serves: a request of k rows runs as the smallest bucket >= k.
DEFAULT_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)


def check_batch_buckets(batch_buckets: Sequence[int]) -> tuple:
    """`batch_buckets` as a sorted tuple of distinct positive ints, or a ValueError naming the problem."""
    buckets = tuple(sorted({int(b) for b in batch_buckets}))
    if not buckets or buckets[0] < 1:
        raise ValueError(f"batch_buckets must be positive batch sizes, got {tuple(batch_buckets)}")
    return buckets


def batch_bucketed(fn: Callable, batch_buckets: Sequence[int] = DEFAULT_BATCH_BUCKETS) -> Callable:
    """`fn` (a structure of tensors with a shared first dimension -> a structure of such tensors) compiled
    with XLA and run on inputs padded to the next batch bucket; returns a function with `fn`'s contract.

    >>> double = batch_bucketed(lambda x: {"y": x["x"] * 2.0}, batch_buckets=(2, 4))
    >>> double({"x": tf.constant([[1.0], [2.0], [3.0]])})["y"].numpy().ravel().tolist()
    [2.0, 4.0, 6.0]
    """
    buckets = check_batch_buckets(batch_buckets)
    compiled = tf.function(fn, jit_compile=True, autograph=False)
    bucket_sizes = tf.constant(buckets)

    def padded_call(inputs):
        rows = tf.shape(tf.nest.flatten(inputs)[0])[0]
        bucket = tf.gather(bucket_sizes, tf.searchsorted(bucket_sizes, rows[tf.newaxis])[0])
        padding = bucket - rows

        def pad(tensor):
            return tf.pad(tensor, [[0, padding]] + [[0, 0]] * (tensor.shape.rank - 1))

        outputs = compiled(tf.nest.map_structure(pad, inputs))
        return tf.nest.map_structure(lambda t: t[:rows], outputs)

    def call(inputs):
        return run_in_chunks(padded_call, inputs, buckets[-1])

    return call


__all__ = ["DEFAULT_BATCH_BUCKETS", "batch_bucketed", "check_batch_buckets"]
