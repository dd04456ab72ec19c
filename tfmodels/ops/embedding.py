"""Embedding lookup whose table gradient is dense.

The gradient of ``tf.gather`` is an ``IndexedSlices``; Keras' Adam/AdamW update their moments
densely, so under XLA each of the two moment updates turns it into a dense table of its own (zeros
the size of the vocabulary, a copy, a serial scatter). Here the backward pass builds the dense
gradient once.
"""

import tensorflow as tf


@tf.custom_gradient
def _lookup(table, ids):
    def grad(dy):
        width = tf.shape(table)[-1]
        rows = tf.reshape(tf.cast(dy, table.dtype), [-1, width])
        dense = tf.math.unsorted_segment_sum(rows, tf.reshape(ids, [-1]), tf.shape(table)[0])
        return dense, None

    return tf.gather(table, ids), grad


def embedding_lookup(table, ids):
    """``table[ids]``: rows of ``table`` (``[vocab, width]``) for int ``ids`` of any shape."""
    return _lookup(tf.convert_to_tensor(table), tf.convert_to_tensor(ids))
