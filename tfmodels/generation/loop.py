"""The one decoding loop: greedy, top-k, top-p and beam search over a cached-step protocol.

A model is decodable when it offers (see ``tfmodels.generation`` for the full contract):

- ``decoding_init(inputs, max_new_tokens) -> (logits, cache, context)``: ``logits [batch, vocab]``
  for the first generated token; ``cache`` (changes each step) and ``context`` (never changes)
  are nests of tensors with the batch on axis 0;
- ``decoding_step(token_ids [batch] int32, step, cache, context) -> (logits, cache)``: called with
  the token chosen at generation step ``step`` for ``step`` in ``0 .. max_new_tokens - 2`` (the
  last token is never fed back, so the cache needs room for ``max_new_tokens`` positions only);
- ``end_token_ids``, ``pad_token_id``, ``banned_token_ids``.

The loop is a ``tf.while_loop`` whose state has a fixed shape (a ``[batch, max_new_tokens]`` token
buffer, the cache), so ``tf.function(jit_compile=True)`` compiles it with XLA once per input
shape. Per-row options are tensors -- token limits, temperature, top-p, seeds -- so rows of one
batch decode as they would alone, and new values neither retrace nor recompile.
"""

import weakref

import tensorflow as tf

from tfmodels.generation.samplers import NEG_INF, Beam, choose_tokens, get_sampler


def _log_probs(logits, banned):
    """Float32 log-probabilities with the banned tokens ruled out."""
    logits = tf.cast(logits, tf.float32) + banned * NEG_INF
    return tf.nn.log_softmax(logits, axis=-1)


def _banned_mask(model, vocab_size):
    ids = list(getattr(model, "banned_token_ids", ()))
    if not ids:
        return tf.zeros([vocab_size], tf.float32)
    return tf.reduce_sum(tf.one_hot(ids, vocab_size, dtype=tf.float32), axis=0)


def _is_end(model, token_ids):
    ends = tf.constant(list(model.end_token_ids), tf.int32)
    return tf.reduce_any(tf.equal(token_ids[..., None], ends), axis=-1)


def write_column(tokens, index, values):
    """``tokens[..., index] = values`` for a ``[..., T]`` buffer, with a dynamic index."""
    one_hot = tf.one_hot(index, tf.shape(tokens)[-1], dtype=tokens.dtype)
    return tokens * (1 - one_hot) + values[..., None] * one_hot


def _sequence_loop(model, sampler, inputs, max_new_tokens, limits, row_seeds, temperature, top_p):
    """Greedy or sampled decoding: one sequence per input; stops when every row has ended."""
    logits, cache, context = model.decoding_init(inputs, max_new_tokens)
    batch, vocab = tf.shape(logits)[0], logits.shape[-1] or tf.shape(logits)[-1]
    banned = _banned_mask(model, vocab)
    pad = model.pad_token_id
    tokens = tf.fill([batch, max_new_tokens], pad)
    finished = tf.zeros([batch], tf.bool)
    scores = tf.zeros([batch], tf.float32)

    def advance(step, logits, tokens, finished, scores):
        log_probs = _log_probs(logits, banned)
        next_ids = choose_tokens(sampler, log_probs, row_seeds, step, temperature, top_p)
        next_ids = tf.where(finished, pad, next_ids)
        chosen = tf.gather(log_probs, next_ids, batch_dims=1)
        scores += tf.where(finished, 0.0, chosen)
        tokens = write_column(tokens, step, next_ids)
        finished = finished | _is_end(model, next_ids) | (step + 1 >= limits)
        return next_ids, tokens, finished, scores

    def cond(step, logits, tokens, finished, scores, cache):
        return tf.logical_and(step < max_new_tokens - 1, tf.logical_not(tf.reduce_all(finished)))

    def body(step, logits, tokens, finished, scores, cache):
        next_ids, tokens, finished, scores = advance(step, logits, tokens, finished, scores)
        logits, cache = model.decoding_step(next_ids, step, cache, context)
        return step + 1, logits, tokens, finished, scores, cache

    step, logits, tokens, finished, scores, _ = tf.while_loop(
        cond, body, (tf.constant(0), logits, tokens, finished, scores, cache)
    )
    # The last token needs no step after it (rows that ended meanwhile only get padding).
    _, tokens, _, scores = advance(step, logits, tokens, finished, scores)
    return tokens, scores


def _length_penalty(length, alpha):
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al., 2016)."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def _beam_loop(model, sampler, inputs, max_new_tokens, limits):
    """Beam search keeping ``width`` alive and ``width`` finished hypotheses per input.

    Each step expands the alive beams, takes the ``2 * width`` best continuations (so at least
    ``width`` of them do not end), moves the ones that end into the finished set scored with the
    length penalty, and keeps the best non-ending ones alive. A row stops at its token limit and,
    with ``early_stopping``, once no alive beam can still beat its worst kept finished one:
    log-probabilities only fall, so an alive beam's best possible score is its log-probability
    over the largest penalty. Stopped rows are frozen while the others go on.
    """
    k, alpha = sampler.width, sampler.length_penalty
    logits, cache, context = model.decoding_init(inputs, max_new_tokens)
    batch, vocab = tf.shape(logits)[0], logits.shape[-1] or tf.shape(logits)[-1]
    banned = _banned_mask(model, vocab)
    pad = model.pad_token_id

    def repeat(t):
        return tf.repeat(t, k, axis=0)

    logits = repeat(logits)
    cache, context = tf.nest.map_structure(repeat, (cache, context))
    alive_tokens = tf.fill([batch, k, max_new_tokens], pad)
    # Only beam 0 starts alive, so the first step does not pick k copies of the same token.
    alive_scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], 0)[None], [batch, 1])
    finished_tokens = tf.fill([batch, k, max_new_tokens], pad)
    finished_scores = tf.fill([batch, k], NEG_INF)
    max_penalty = _length_penalty(limits, alpha)
    beam_offsets = tf.range(batch)[:, None] * k

    def active(step, alive_scores, finished_scores):
        rows = step < limits
        if sampler.early_stopping:
            best_possible = alive_scores[:, 0] / max_penalty
            rows &= best_possible > finished_scores[:, -1]
        return rows

    def expand(step, logits, alive_tokens, alive_scores, finished_tokens, finished_scores):
        """One step of the search; returns the flat next tokens and beam origins too."""
        rows = active(step, alive_scores, finished_scores)
        log_probs = tf.reshape(_log_probs(logits, banned), [batch, k, vocab])
        candidates = tf.reshape(alive_scores[:, :, None] + log_probs, [batch, k * vocab])
        cand_scores, cand_ids = tf.math.top_k(candidates, k=2 * k)
        cand_beams, cand_next = cand_ids // vocab, cand_ids % vocab
        cand_tokens = write_column(tf.gather(alive_tokens, cand_beams, batch_dims=1), step, cand_next)
        ends = _is_end(model, cand_next)
        # As in Hugging Face's beam search: a continuation that ends only counts when it ranks
        # among the best k (so beam width 1 is exactly greedy); the rest of the 2k are reserves
        # that keep k beams alive.
        top_k_ends = tf.logical_and(ends, tf.range(2 * k)[None] < k)

        # Alive: the best k continuations that do not end.
        new_alive_scores, picked = tf.math.top_k(tf.where(ends, NEG_INF, cand_scores), k=k)
        new_alive_tokens = tf.gather(cand_tokens, picked, batch_dims=1)
        origin = tf.gather(cand_beams, picked, batch_dims=1)

        # Finished: the best k among the old finished and the continuations that end now.
        ended_scores = cand_scores / _length_penalty(step + 1, alpha)
        ended_scores = tf.where(top_k_ends, ended_scores, NEG_INF)
        pool_scores = tf.concat([finished_scores, ended_scores], axis=1)
        pool_tokens = tf.concat([finished_tokens, cand_tokens], axis=1)
        new_finished_scores, picked = tf.math.top_k(pool_scores, k=k)
        new_finished_tokens = tf.gather(pool_tokens, picked, batch_dims=1)

        def keep(new, old):  # stopped rows keep their state
            return tf.where(tf.reshape(rows, [-1] + [1] * (new.shape.rank - 1)), new, old)

        origin = keep(origin, tf.range(k)[None] + tf.zeros_like(origin))
        next_ids = tf.reshape(tf.gather(new_alive_tokens, step, axis=2), [-1])
        return (
            next_ids,
            tf.reshape(origin + beam_offsets, [-1]),
            keep(new_alive_tokens, alive_tokens),
            keep(new_alive_scores, alive_scores),
            keep(new_finished_tokens, finished_tokens),
            keep(new_finished_scores, finished_scores),
        )

    def cond(step, logits, alive_tokens, alive_scores, finished_tokens, finished_scores, cache):
        running = tf.reduce_any(active(step, alive_scores, finished_scores))
        return tf.logical_and(step < max_new_tokens - 1, running)

    def body(step, logits, *state_and_cache):
        *state, cache = state_and_cache
        next_ids, origin, *state = expand(step, logits, *state)
        cache = tf.nest.map_structure(lambda t: tf.gather(t, origin, axis=0), cache)
        logits, cache = model.decoding_step(next_ids, step, cache, context)
        return (step + 1, logits, *state, cache)

    step, logits, *state, _ = tf.while_loop(
        cond,
        body,
        (tf.constant(0), logits, alive_tokens, alive_scores, finished_tokens, finished_scores, cache),
    )
    _, _, alive_tokens, alive_scores, finished_tokens, finished_scores = expand(step, logits, *state)
    # An input whose beams never ended falls back to its best alive beam.
    any_finished = finished_scores[:, 0] > NEG_INF / 2
    best_tokens = tf.where(any_finished[:, None], finished_tokens[:, 0], alive_tokens[:, 0])
    best_scores = tf.where(any_finished, finished_scores[:, 0], alive_scores[:, 0] / max_penalty)
    return best_tokens, best_scores


def _row_seeds(seed, batch):
    """``[batch, 2]`` int32 seeds (XLA's stateless sampling takes int32 seeds).

    ``seed`` is ``[batch, 2]`` ints or ``[batch]`` int64 (one per row: its two 32-bit halves), or
    ``[2]`` int32, one seed for the batch from which the rows' seeds are drawn.
    """
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 2:
        return tf.cast(seed, tf.int32)
    if seed.dtype == tf.int64:
        return tf.bitcast(seed, tf.int32)
    return tf.random.stateless_uniform([batch, 2], seed, minval=None, maxval=None, dtype=tf.int32)


def decode(model, inputs, sampler, max_new_tokens, seed=None, row_max_new_tokens=None,
           temperature=None, top_p=None):
    """Decodes ``inputs`` with ``model``'s cached-step protocol (graph code: call it traced).

    Args:
        model: an object with the decoding protocol (module docstring).
        inputs: what ``model.decoding_init`` takes.
        sampler: a ``Greedy``, ``TopK``, ``TopP`` or ``Beam``.
        max_new_tokens: Python int, the token buffer's (and the cache's) size.
        seed: ``[2]`` int32 (one seed for the batch), ``[batch]`` int64 or ``[batch, 2]`` int32
            (one per row); sampling only.
        row_max_new_tokens: ``[batch]`` int32 per-row limits ``<= max_new_tokens``; None: all.
        temperature, top_p: ``[batch]`` float32 per-row values; None: the sampler's.

    Returns:
        ``(tokens [batch, max_new_tokens] int32, scores [batch] float32)``: generated tokens, the
        end token included and ``pad_token_id`` after it; the sum of the chosen tokens'
        log-probabilities (divided by the length penalty for beam search).
    """
    batch = tf.shape(tf.nest.flatten(inputs)[0])[0]
    if row_max_new_tokens is None:
        limits = tf.fill([batch], max_new_tokens)
    else:
        limits = tf.minimum(tf.cast(row_max_new_tokens, tf.int32), max_new_tokens)
    if isinstance(sampler, Beam):
        return _beam_loop(model, sampler, inputs, max_new_tokens, limits)

    def per_row(value, default):
        if value is None:
            return tf.fill([batch], tf.constant(float(default)))
        return tf.cast(value, tf.float32) + tf.zeros([batch])

    temperature = per_row(temperature, getattr(sampler, "temperature", 1.0))
    top_p = per_row(top_p, getattr(sampler, "p", 1.0))
    row_seeds = None if sampler.name == "greedy" else _row_seeds(
        tf.zeros([2], tf.int32) if seed is None else seed, batch)
    return _sequence_loop(model, sampler, inputs, max_new_tokens, limits, row_seeds, temperature,
                          top_p)


def make_decode_function(model, sampler, max_new_tokens, jit_compile=True):
    """``fn(inputs, seed, row_max_new_tokens=None, temperature=None, top_p=None)``, compiled.

    A ``tf.function`` around :func:`decode` (same arguments and results); it compiles once per
    input shape and argument structure.
    """
    return tf.function(_Decode(model, get_sampler(sampler), max_new_tokens), jit_compile=jit_compile,
                       reduce_retracing=False)


class _Decode:
    """:func:`decode` with the model, sampler and length fixed: what one compiled function runs.

    An object, not a closure: TF counts traces per Python code object to warn about retracing,
    so the closures of every method's function would add up to "5 out of the last 5 calls ...
    triggered tf.function retracing" after a few method switches; each object counts alone.
    """

    def __init__(self, model, sampler, max_new_tokens):
        self.model, self.sampler, self.max_new_tokens = model, sampler, max_new_tokens

    def __call__(self, inputs, seed, row_max_new_tokens=None, temperature=None, top_p=None):
        return decode(self.model, inputs, self.sampler, self.max_new_tokens, seed,
                      row_max_new_tokens, temperature, top_p)


class _Functions:
    """A plain holder (not tracked by TF / Keras) of one model's compiled decode functions."""

    def __init__(self):
        self.functions = {}


_FUNCTIONS = weakref.WeakKeyDictionary()


def decode_function(model, sampler, max_new_tokens, jit_compile=True):
    """The compiled decode function for ``(model, sampler.compile_key(), max_new_tokens)``, kept.

    Samplers that differ only in per-row options (temperature, ``p``) share it: pass those as
    tensors (as :func:`generate` does), so switching between them neither retraces nor recompiles.
    """
    sampler = get_sampler(sampler)
    holder = _FUNCTIONS.setdefault(model, _Functions())
    key = (sampler.compile_key(), max_new_tokens, jit_compile)
    if key not in holder.functions:
        holder.functions[key] = make_decode_function(model, sampler, max_new_tokens, jit_compile)
    return holder.functions[key]


def forget_decode_functions(model):
    """Drops ``model``'s kept decode functions: call it when the model's layers change (LoRA
    adapters added or merged, weights quantized), since a traced function keeps the old layers."""
    _FUNCTIONS.pop(model, None)


def _check_per_row(name, values, low, high, low_inclusive):
    import numpy as np

    values = np.asarray(values)
    bad = values[~((values >= low if low_inclusive else values > low) & (values <= high))]
    if bad.size:
        bound = "[" if low_inclusive else "("
        raise ValueError(f"{name} must be in {bound}{low}, {high}], got {bad.tolist()}")


def generate(model, inputs, sampler="greedy", max_new_tokens=32, *, seed=None,
             row_max_new_tokens=None, temperature=None, top_p=None, return_scores=False,
             jit_compile=True, **options):
    """Decodes ``inputs`` with ``model`` (eager entry point; the loop itself is compiled).

    Args:
        model: an object with the decoding protocol (see ``tfmodels.generation``).
        inputs: what ``model.decoding_init`` takes.
        sampler: ``"greedy"``, ``"top_k"``, ``"top_p"``, ``"beam"`` (with ``**options``) or a
            sampler object.
        max_new_tokens: int, tokens generated at most (the static buffer size).
        seed: int (one for the batch), or ``[batch]`` / ``[batch, 2]`` ints (one per row, so a
            row's sample does not depend on its batchmates); sampling only.
        row_max_new_tokens: ``[batch]`` ints in ``[1, max_new_tokens]``, per-row limits.
        temperature, top_p: float or ``[batch]`` floats overriding the sampler's, sampling only.
        return_scores: also return the ``[batch]`` scores.
        jit_compile: compile the loop with XLA.
        **options: the sampler's options when ``sampler`` is a name (``k``, ``p``, ``width``...).

    Returns:
        ``tokens`` ``[batch, max_new_tokens]`` int32 (``(tokens, scores)`` with ``return_scores``).
    """
    sampler = get_sampler(sampler, **options)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    uses = {"seed": sampler.name in ("top_k", "top_p"),
            "temperature": sampler.name in ("top_k", "top_p"), "top_p": sampler.name == "top_p"}
    for name, value in (("seed", seed), ("temperature", temperature), ("top_p", top_p)):
        if value is not None and not uses[name]:
            raise ValueError(f"{sampler.name} takes no {name}")
    if isinstance(inputs, dict):
        inputs = {name: tf.convert_to_tensor(value) for name, value in inputs.items()}
    else:
        inputs = tf.convert_to_tensor(inputs)
    batch = int(tf.shape(tf.nest.flatten(inputs)[0])[0])
    if temperature is not None:
        _check_per_row("temperature", temperature, 0, float("inf"), False)
        temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), [batch])
    elif uses["temperature"]:
        temperature = tf.fill([batch], float(sampler.temperature))
    if top_p is not None:
        _check_per_row("top_p", top_p, 0, 1, False)
        top_p = tf.broadcast_to(tf.cast(top_p, tf.float32), [batch])
    elif uses["top_p"]:
        top_p = tf.fill([batch], float(sampler.p))
    if row_max_new_tokens is not None:
        _check_per_row("row_max_new_tokens", row_max_new_tokens, 1, max_new_tokens, True)
    row_max_new_tokens = tf.broadcast_to(
        tf.cast(max_new_tokens if row_max_new_tokens is None else row_max_new_tokens, tf.int32),
        [batch])
    # One seed for the batch: a scalar; per row: [batch] (int64 halves) or [batch, 2].
    seed = tf.convert_to_tensor(0 if seed is None else seed, tf.int64)
    if seed.shape.rank == 0:
        seed = tf.cast(tf.stack([seed, 0]), tf.int32)
    elif seed.shape.rank == 2:
        seed = tf.cast(seed, tf.int32)
    fn = decode_function(model, sampler, max_new_tokens, jit_compile)
    tokens, scores = fn(inputs, seed, row_max_new_tokens, temperature, top_p)
    return (tokens, scores) if return_scores else tokens
