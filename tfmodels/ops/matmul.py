"""Matmul over the last axis as one 2-D product."""

from keras import ops


def matmul_last_axis(x, kernel):
    """``x @ kernel`` contracting the last axis of ``x`` with a 2-D ``kernel``.

    Reshaped to ``[rows, in] @ [in, out]``: XLA on CPU runs that better than a batch matmul
    broadcast over the leading axes, whose kernel gradient is a batched product followed by a
    reduction over the batch.
    """
    y = ops.matmul(ops.reshape(x, (-1, ops.shape(x)[-1])), kernel)
    return ops.reshape(y, tuple(ops.shape(x)[:-1]) + (ops.shape(kernel)[-1],))
