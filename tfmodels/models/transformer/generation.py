"""XLA-compiled autoregressive decoding for ``Seq2SeqTransformer``: greedy, beam, top-k, top-p.

Every method is one ``tf.function(jit_compile=True)`` around a ``tf.while_loop`` whose state has a
fixed shape: a ``[batch, max_length + 1]`` token buffer (column 0 holds the start token) and a
``[layers, batch, 2, max_length, heads, head_dim]`` key/value cache. A step feeds one token per
sequence, so decoding ``n`` tokens costs ``n`` single-position decoder passes instead of
re-running the decoder over the prefix. Fixed shapes mean XLA compiles each function once per
input shape; ``Seq2SeqTransformer.get_generate_function`` keeps the functions so calls reuse them.

The loops are written against a small "stepper" (how to get the next-token logits), so the same
search code runs with the cache or -- for tests and the benchmark baseline -- by re-running the
decoder over the whole fixed-length prefix each step.
"""

import tensorflow as tf

NEG_INF = -1e9


class _CachedStepper:
    """Next-token logits from the key/value cache: one decoder position per step."""

    def __init__(self, model, max_length):
        self.model = model
        self.max_length = max_length

    def init(self, source_ids):
        """Returns ``(carried, constant)`` state; only ``carried`` changes and follows beams."""
        encoder_output, source_mask = self.model.encode(source_ids)
        self_cache, cross_cache = self.model.init_cache(encoder_output, self.max_length)
        return self_cache, (cross_cache, source_mask)

    def step(self, tokens, index, carried, constant):
        cross_cache, source_mask = constant
        # gather, not a slice: a slice with a traced bound has no static width under XLA.
        current = tf.gather(tokens, index[None], axis=1)
        logits, carried = self.model.decode_step(current, index, carried, cross_cache, source_mask)
        return logits[:, 0], carried

    @staticmethod
    def repeat(carried, constant, times):
        """Tiles each sequence's state ``times`` times (batch axis 1 of the caches)."""
        cross_cache, source_mask = constant
        return (
            tf.repeat(carried, times, axis=1),
            (tf.repeat(cross_cache, times, axis=1), tf.repeat(source_mask, times, axis=0)),
        )

    @staticmethod
    def reorder(carried, indices):
        return tf.gather(carried, indices, axis=1)


class _UncachedStepper:
    """Re-runs the decoder over the whole fixed-length prefix each step (the slow baseline)."""

    def __init__(self, model, max_length):
        self.model = model
        self.max_length = max_length

    def init(self, source_ids):
        return tf.zeros((), tf.int32), self.model.encode(source_ids)

    def step(self, tokens, index, carried, constant):
        encoder_output, source_mask = constant
        # Positions after `index` hold padding; the causal mask keeps them from mattering.
        logits = self.model.decode(tokens[:, : self.max_length], encoder_output, source_mask)
        return tf.gather(logits, index, axis=1), carried

    @staticmethod
    def repeat(carried, constant, times):
        encoder_output, source_mask = constant
        return carried, (
            tf.repeat(encoder_output, times, axis=0),
            tf.repeat(source_mask, times, axis=0),
        )

    @staticmethod
    def reorder(carried, indices):
        return carried


def _log_probs(logits, model):
    """Float32 log-probabilities with the pad and start tokens ruled out as outputs."""
    logits = tf.cast(logits, tf.float32)
    banned = tf.one_hot([model.pad_id, model.start_id], tf.shape(logits)[-1], dtype=tf.float32)
    logits += tf.reduce_sum(banned, axis=0) * NEG_INF
    return tf.nn.log_softmax(logits, axis=-1)


def _write_column(tokens, index, values):
    """``tokens[..., index] = values`` for a ``[..., T]`` buffer, with a dynamic index."""
    one_hot = tf.one_hot(index, tf.shape(tokens)[-1], dtype=tokens.dtype)
    return tokens * (1 - one_hot) + values[..., None] * one_hot


# -- token choosers for the one-sequence-per-input loop -------------------------------------------


def _greedy_chooser(log_probs, seed, index):
    return tf.argmax(log_probs, axis=-1, output_type=tf.int32)


def _sample(log_probs, seed, index):
    # Stateless: the seed is a tensor input, so a new seed neither retraces nor recompiles.
    step_seed = seed + tf.stack([tf.zeros_like(index), index])
    return tf.cast(tf.random.stateless_categorical(log_probs, 1, step_seed)[:, 0], tf.int32)


def top_k_filter(logits, k):
    """Keeps the ``k`` largest logits per row, the rest set to -inf-like."""
    # top_k fails on k > vocabulary size; keeping every token is what such a k means.
    k = min(k, logits.shape[-1] or k)
    kth_largest = tf.math.top_k(logits, k=k).values[:, -1:]
    return tf.where(logits < kth_largest, NEG_INF, logits)


def top_p_filter(logits, p):
    """Keeps the smallest set of most likely tokens whose probability reaches ``p`` (nucleus)."""
    sorted_logits = tf.sort(logits, direction="DESCENDING", axis=-1)
    sorted_probs = tf.nn.softmax(sorted_logits, axis=-1)
    # A token is kept when the mass strictly before it is below p; the top token always is.
    mass_before = tf.cumsum(sorted_probs, axis=-1, exclusive=True)
    kept = tf.where(mass_before < p, sorted_logits, tf.fill(tf.shape(sorted_logits), 1e30))
    threshold = tf.reduce_min(kept, axis=-1, keepdims=True)
    return tf.where(logits < threshold, NEG_INF, logits)


def _sampling_chooser(temperature, top_k=None, top_p=None):
    def choose(log_probs, seed, index):
        logits = log_probs / temperature
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        if top_p is not None:
            logits = top_p_filter(logits, top_p)
        return _sample(logits, seed, index)

    return choose


# -- the loops --------------------------------------------------------------------------------------


def _one_sequence_loop(model, stepper, choose, source_ids, seed, max_length):
    """Greedy or sampled decoding: one sequence per input, stops when all have ended."""
    batch = tf.shape(source_ids)[0]
    carried, constant = stepper.init(source_ids)
    tokens = tf.concat(
        [tf.fill([batch, 1], model.start_id), tf.fill([batch, max_length], model.pad_id)], axis=1
    )
    finished = tf.zeros([batch], tf.bool)
    scores = tf.zeros([batch], tf.float32)

    def cond(index, tokens, finished, scores, carried):
        return tf.logical_and(index < max_length, tf.logical_not(tf.reduce_all(finished)))

    def body(index, tokens, finished, scores, carried):
        logits, carried = stepper.step(tokens, index, carried, constant)
        log_probs = _log_probs(logits, model)
        next_ids = choose(log_probs, seed, index)
        next_ids = tf.where(finished, model.pad_id, next_ids)
        chosen = tf.gather(log_probs, next_ids, batch_dims=1)
        scores += tf.where(finished, 0.0, chosen)
        tokens = _write_column(tokens, index + 1, next_ids)
        finished = tf.logical_or(finished, tf.equal(next_ids, model.end_id))
        return index + 1, tokens, finished, scores, carried

    _, tokens, _, scores, _ = tf.while_loop(
        cond, body, (tf.constant(0), tokens, finished, scores, carried)
    )
    return tokens[:, 1:], scores


def _length_penalty(length, alpha):
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al., 2016)."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def _beam_loop(model, stepper, source_ids, max_length, beam_width, length_penalty, early_stopping):
    """Beam search keeping ``beam_width`` alive and ``beam_width`` finished hypotheses per input.

    Each step expands the alive beams, takes the ``2 * beam_width`` best continuations (so at least
    ``beam_width`` of them do not end), moves the ones that end into the finished set scored with
    the length penalty, and keeps the best non-ending ones alive. With ``early_stopping`` the loop
    ends once no alive beam can still beat the worst kept finished one: log-probabilities only
    fall, so an alive beam's best possible score is its log-probability over the largest penalty.
    """
    k = beam_width
    batch = tf.shape(source_ids)[0]
    carried, constant = stepper.init(source_ids)
    carried, constant = stepper.repeat(carried, constant, k)
    width = max_length + 1
    alive_tokens = tf.concat(
        [tf.fill([batch, k, 1], model.start_id), tf.fill([batch, k, max_length], model.pad_id)],
        axis=2,
    )
    # Only beam 0 starts alive, so the first step does not pick k copies of the same token.
    alive_scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], 0)[None], [batch, 1])
    finished_tokens = tf.fill([batch, k, width], model.pad_id)
    finished_scores = tf.fill([batch, k], NEG_INF)
    max_penalty = _length_penalty(max_length, length_penalty)

    def cond(index, alive_tokens, alive_scores, finished_tokens, finished_scores, carried):
        if not early_stopping:
            return index < max_length
        best_possible = alive_scores[:, 0] / max_penalty
        worst_kept = finished_scores[:, -1]
        undecided = tf.reduce_any(best_possible > worst_kept)
        return tf.logical_and(index < max_length, undecided)

    def body(index, alive_tokens, alive_scores, finished_tokens, finished_scores, carried):
        flat_tokens = tf.reshape(alive_tokens, [batch * k, width])
        logits, carried = stepper.step(flat_tokens, index, carried, constant)
        vocab = tf.shape(logits)[-1]
        log_probs = tf.reshape(_log_probs(logits, model), [batch, k, vocab])
        candidates = tf.reshape(alive_scores[:, :, None] + log_probs, [batch, k * vocab])
        cand_scores, cand_ids = tf.math.top_k(candidates, k=2 * k)
        cand_beams = cand_ids // vocab
        cand_tokens = tf.gather(alive_tokens, cand_beams, batch_dims=1)
        cand_tokens = _write_column(cand_tokens, index + 1, cand_ids % vocab)
        ends = tf.equal(cand_ids % vocab, model.end_id)
        # As in Hugging Face's beam search: a continuation that ends only counts when it ranks
        # among the best k (so beam width 1 is exactly greedy); the rest of the 2k are reserves
        # that keep k beams alive.
        top_k_ends = tf.logical_and(ends, tf.range(2 * k)[None] < k)

        # Alive: the best k continuations that do not end.
        alive_scores, picked = tf.math.top_k(tf.where(ends, NEG_INF, cand_scores), k=k)
        alive_tokens = tf.gather(cand_tokens, picked, batch_dims=1)
        origin = tf.gather(cand_beams, picked, batch_dims=1)
        flat_origin = tf.reshape(origin + tf.range(batch)[:, None] * k, [-1])
        carried = stepper.reorder(carried, flat_origin)

        # Finished: the best k among the old finished and the continuations that end now.
        ended_scores = cand_scores / _length_penalty(index + 1, length_penalty)
        ended_scores = tf.where(top_k_ends, ended_scores, NEG_INF)
        pool_scores = tf.concat([finished_scores, ended_scores], axis=1)
        pool_tokens = tf.concat([finished_tokens, cand_tokens], axis=1)
        finished_scores, picked = tf.math.top_k(pool_scores, k=k)
        finished_tokens = tf.gather(pool_tokens, picked, batch_dims=1)
        return index + 1, alive_tokens, alive_scores, finished_tokens, finished_scores, carried

    _, alive_tokens, alive_scores, finished_tokens, finished_scores, _ = tf.while_loop(
        cond,
        body,
        (tf.constant(0), alive_tokens, alive_scores, finished_tokens, finished_scores, carried),
    )
    # An input whose beams never ended falls back to its best alive beam.
    any_finished = finished_scores[:, 0] > NEG_INF / 2
    best_tokens = tf.where(any_finished[:, None], finished_tokens[:, 0], alive_tokens[:, 0])
    best_scores = tf.where(any_finished, finished_scores[:, 0], alive_scores[:, 0] / max_penalty)
    return best_tokens[:, 1:], best_scores


def make_generate_fn(
    model,
    method="greedy",
    max_length=64,
    use_cache=True,
    beam_width=4,
    length_penalty=0.6,
    early_stopping=True,
    top_k=50,
    top_p=0.9,
    temperature=1.0,
    jit_compile=True,
):
    """Builds ``fn(source_ids [batch, source_length] int32, seed [2] int32) -> (tokens, scores)``.

    Args:
        model: a built ``Seq2SeqTransformer``.
        method: ``"greedy"``, ``"beam"``, ``"top_k"`` or ``"top_p"``.
        max_length: tokens generated at most (the cache size).
        use_cache: key/value cache (True) or re-run the decoder over the prefix each step.
        beam_width, length_penalty, early_stopping: beam search options (``length_penalty`` is
            the GNMT alpha; 0 ranks by total log-probability).
        top_k, top_p, temperature: sampling options (``top_k`` for ``"top_k"``, ``top_p`` for
            ``"top_p"``; logits are divided by ``temperature`` first).
        jit_compile: compile the whole loop with XLA.

    Returns:
        a ``tf.function``; ``tokens`` is ``[batch, max_length]`` int32 without the start token,
        ``pad_id`` after the end token; ``scores`` is ``[batch]`` float32.
    """
    if use_cache and model.position_encoding == "learned" and max_length > model.max_target_length:
        raise ValueError(f"max_length {max_length} > max_target_length {model.max_target_length}")
    stepper = (_CachedStepper if use_cache else _UncachedStepper)(model, max_length)

    if method == "beam":
        if beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {beam_width}")

        def generate(source_ids, seed):
            return _beam_loop(
                model, stepper, source_ids, max_length, beam_width, length_penalty, early_stopping
            )

    else:
        if method == "greedy":
            choose = _greedy_chooser
        elif method == "top_k":
            choose = _sampling_chooser(temperature, top_k=top_k)
        elif method == "top_p":
            choose = _sampling_chooser(temperature, top_p=top_p)
        else:
            raise ValueError(f"method must be greedy, beam, top_k or top_p; got {method!r}")

        def generate(source_ids, seed):
            return _one_sequence_loop(model, stepper, choose, source_ids, seed, max_length)

    return tf.function(generate, jit_compile=jit_compile, reduce_retracing=False)
