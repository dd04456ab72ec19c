"""Overlapping windows with a stride over a token sequence, and which window gives each token the most
context -- BERT's ``run_squad.py`` document stride, for any task (NER over long texts, QA contexts).

Core TensorFlow ops only, so the same code runs eagerly in Python and inside an exported graph.
Conventions (as ``run_squad.py``): window ``i`` starts at token ``i * stride`` (``stride`` is the step
between window starts, not the overlap) and holds up to ``window_size`` tokens; windows are added until
one reaches the end. A token seen by several windows is scored in the one where
``min(tokens left of it, tokens right of it) + 0.01 * window length`` is largest (the earliest on a tie).
"""

import tensorflow as tf


def _check(window_size, stride):
    if int(window_size) < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    if not 1 <= int(stride) <= int(window_size):
        raise ValueError(
            f"stride must be in [1, window_size={window_size}] so that no token is skipped, got {stride}"
        )


def window_starts(num_tokens, window_size, stride):
    """Start of each window over ``num_tokens`` tokens: int64 ``[num_windows]``.

    One window (start 0) for a sequence that fits, including an empty one.

    >>> window_starts(10, window_size=4, stride=3).numpy().tolist()
    [0, 3, 6]
    >>> window_starts(0, window_size=4, stride=3).numpy().tolist()
    [0]
    """
    _check(window_size, stride)
    num_tokens = tf.cast(num_tokens, tf.int64)
    beyond = tf.maximum(num_tokens - window_size, 0)
    num_windows = 1 + (beyond + stride - 1) // stride
    return tf.range(num_windows, dtype=tf.int64) * stride


def max_context(num_tokens, window_size, stride):
    """For every window and in-window position, whether that window gives the token there the most
    context: bool ``[num_windows, window_size]`` (False past the end of the sequence).

    Each of the ``num_tokens`` tokens is True in exactly one window.

    >>> max_context(6, window_size=4, stride=2).numpy().astype(int).tolist()
    [[1, 1, 1, 0], [0, 1, 1, 1]]
    """
    num_tokens = tf.cast(num_tokens, tf.int64)
    starts = window_starts(num_tokens, window_size, stride)
    lengths = tf.minimum(num_tokens - starts, window_size)  # [W]
    position = tf.range(window_size, dtype=tf.int64)[None, :]  # [1, S]
    inside = position < lengths[:, None]
    score = tf.cast(tf.minimum(position, lengths[:, None] - 1 - position), tf.float64)
    score += 0.01 * tf.cast(lengths[:, None], tf.float64)
    # Scatter every (window, position) score to its token, and keep the best window per token.
    token = starts[:, None] + position  # [W, S]
    token = tf.where(inside, token, num_tokens)  # outside -> a dump slot
    flat_token = tf.reshape(token, [-1])
    flat_score = tf.reshape(tf.where(inside, score, -1.0), [-1])
    best = tf.math.unsorted_segment_max(flat_score, flat_token, num_tokens + 1)
    is_best = tf.logical_and(tf.equal(flat_score, tf.gather(best, flat_token)), tf.reshape(inside, [-1]))
    # Ties (equal scores) go to the earliest window: the first best occurrence per token.
    order = tf.range(tf.size(flat_token, out_type=tf.int64))
    first = tf.math.unsorted_segment_min(
        tf.where(is_best, order, tf.size(flat_token, out_type=tf.int64)), flat_token, num_tokens + 1
    )
    chosen = tf.logical_and(is_best, tf.equal(order, tf.gather(first, flat_token)))
    return tf.reshape(chosen, tf.shape(token))
