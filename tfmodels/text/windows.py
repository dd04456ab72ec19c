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
    return tf.range(num_windows(num_tokens, window_size, stride), dtype=tf.int64) * stride


def num_windows(num_tokens, window_size, stride):
    """How many windows cover ``num_tokens`` tokens (elementwise over any shape): int64, at least 1."""
    _check(window_size, stride)
    beyond = tf.maximum(tf.cast(num_tokens, tf.int64) - window_size, 0)
    return 1 + (beyond + stride - 1) // stride


def best_window(positions, num_tokens, window_size, stride):
    """The window that gives the token at ``positions`` the most context (elementwise; int64).

    ``positions`` and ``num_tokens`` broadcast against each other, so one call serves a whole ragged
    batch (``positions`` = each token's index in its text, ``num_tokens`` = its text's length). Only
    the ``ceil(window_size / stride)`` windows that can hold a token are scored.

    >>> best_window([0, 1, 2, 3, 4, 5], 6, window_size=4, stride=2).numpy().tolist()
    [0, 0, 0, 1, 1, 1]
    """
    _check(window_size, stride)
    positions = tf.cast(positions, tf.int64)
    num_tokens = tf.cast(num_tokens, tf.int64)
    count = num_windows(num_tokens, window_size, stride)
    candidates = -(-window_size // stride)  # windows holding a token: at most this many
    last = tf.minimum(positions // stride, count - 1)
    # Candidate k is window last - (candidates - 1) + k: earliest first, so argmax breaks ties early.
    window = last[..., None] - (candidates - 1) + tf.range(candidates, dtype=tf.int64)
    start = window * stride
    length = tf.minimum(num_tokens[..., None] - start, window_size)
    offset = positions[..., None] - start
    valid = (window >= 0) & (offset < length)
    score = tf.cast(tf.minimum(offset, length - 1 - offset), tf.float64)
    score += 0.01 * tf.cast(length, tf.float64)
    score = tf.where(valid, score, -1.0)
    return tf.gather(window, tf.argmax(score, axis=-1), batch_dims=len(window.shape) - 1)


def max_context(num_tokens, window_size, stride):
    """For every window and in-window position, whether that window gives the token there the most
    context: bool ``[num_windows, window_size]`` (False past the end of the sequence).

    Each of the ``num_tokens`` tokens is True in exactly one window.

    >>> max_context(6, window_size=4, stride=2).numpy().astype(int).tolist()
    [[1, 1, 1, 0], [0, 1, 1, 1]]
    """
    num_tokens = tf.cast(num_tokens, tf.int64)
    starts = window_starts(num_tokens, window_size, stride)
    token = starts[:, None] + tf.range(window_size, dtype=tf.int64)[None, :]  # [W, S]
    window = tf.range(tf.size(starts, out_type=tf.int64))[:, None]
    inside = token < num_tokens
    chosen = tf.equal(best_window(tf.minimum(token, num_tokens - 1), num_tokens, window_size, stride),
                      window)
    return inside & chosen


def run_in_chunks(fn, inputs, chunk_size):
    """``fn(inputs)`` computed ``chunk_size`` rows (windows) at a time, one chunk after the other.

    ``inputs`` is a structure of tensors sharing their first dimension; ``fn`` maps such a structure of
    ``k`` rows to a structure of tensors of ``k`` rows each (a model over windows). The outputs equal one call
    on all the rows; what the call holds at once (a model's activations) is bounded by ``chunk_size`` rows
    instead of growing with the request, and a run cancelled between chunks stops there. Rows that fit in one
    chunk take one call, as before.

    >>> run_in_chunks(lambda x: x * 2, tf.range(5), chunk_size=2).numpy().tolist()
    [0, 2, 4, 6, 8]
    """
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    rows = tf.shape(tf.nest.flatten(inputs)[0])[0]
    count = tf.maximum((rows + chunk_size - 1) // chunk_size, 1)

    def take(i):
        return tf.nest.map_structure(lambda t: t[i * chunk_size: (i + 1) * chunk_size], inputs)

    first = fn(take(0))
    flat = tf.nest.flatten(first)
    arrays = [tf.TensorArray(t.dtype, size=count, infer_shape=False).write(0, t) for t in flat]

    def body(i, arrays):
        outputs = tf.nest.flatten(fn(take(i)))
        return i + 1, [a.write(i, o) for a, o in zip(arrays, outputs)]

    _, arrays = tf.while_loop(lambda i, _: i < count, body, [tf.constant(1), arrays], parallel_iterations=1)
    return tf.nest.pack_sequence_as(first, [a.concat() for a in arrays])


def after_checks(value, checks):
    """``value`` (a structure of tensors) that is only computed once every op in ``checks`` (assertions) ran,
    so a request over a limit fails before the work the limit guards is done."""
    with tf.control_dependencies(checks):
        return tf.nest.map_structure(tf.identity, value)


def check_text_chars(texts, max_chars, name="text"):
    """An assertion that every string of ``texts`` has at most ``max_chars`` Unicode characters (an
    INVALID_ARGUMENT naming the limit otherwise); ``max_chars`` None checks nothing."""
    if max_chars is None:
        return []
    longest = tf.reduce_max(tf.concat([tf.strings.length(texts, unit="UTF8_CHAR"), [0]], 0))
    return [tf.debugging.assert_less_equal(
        longest, tf.constant(int(max_chars), tf.int32),
        message=f"a {name} is longer than this model's limit of {int(max_chars)} characters (max_text_chars)")]


def check_windows(count, max_windows):
    """An assertion that a request makes at most ``max_windows`` windows (None: no limit)."""
    if max_windows is None:
        return []
    return [tf.debugging.assert_less_equal(
        tf.cast(count, tf.int64), tf.constant(int(max_windows), tf.int64),
        message=f"the request needs more than this model's limit of {int(max_windows)} windows (max_windows); "
                "send fewer or shorter texts")]
