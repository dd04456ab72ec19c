"""How the decoding loop picks the next token: small validated sampler objects and their filters.

``Greedy()``, ``TopK(k, temperature)``, ``TopP(p, temperature)`` and ``Beam(width, length_penalty,
early_stopping)`` are frozen dataclasses: they validate their options when made, and
``compile_key`` names what changes the compiled graph (``TopK``'s ``k``, the beam options), so
samplers that differ only in a per-row tensor option (temperature, ``p``) share one compiled loop.
``get_sampler("top_p", p=0.9)`` (or the legacy ``top_p=0.9`` spelling) builds one from a name.
"""

import dataclasses
from typing import ClassVar

import tensorflow as tf

NEG_INF = -1e9


def _check_temperature(temperature):
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")


@dataclasses.dataclass(frozen=True)
class Greedy:
    """The most likely token at every step.

    Example:
    >>> Greedy().name
    'greedy'
    """

    name: ClassVar[str] = "greedy"

    def compile_key(self):
        return (self.name,)


@dataclasses.dataclass(frozen=True)
class TopK:
    """Samples among the ``k`` most likely tokens, logits divided by ``temperature`` first.

    Args:
        k: how many tokens stay candidates (>= 1; more than the vocabulary keeps all).
        temperature: > 0; the default for rows not given their own.

    Example:
    >>> TopK(k=5, temperature=0.7).compile_key()
    ('top_k', 5)
    """

    k: int = 50
    temperature: float = 1.0
    name: ClassVar[str] = "top_k"

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"top_k k must be an int >= 1, got {self.k!r}")
        _check_temperature(self.temperature)

    def compile_key(self):
        return (self.name, self.k)  # top_k needs a static k


@dataclasses.dataclass(frozen=True)
class TopP:
    """Nucleus sampling: among the fewest most likely tokens whose probability reaches ``p``.

    Args:
        p: in (0, 1]; the default for rows not given their own.
        temperature: > 0; the default for rows not given their own.

    Example:
    >>> TopP(p=0.9).compile_key()
    ('top_p',)
    """

    p: float = 0.9
    temperature: float = 1.0
    name: ClassVar[str] = "top_p"

    def __post_init__(self):
        if not 0 < self.p <= 1:
            raise ValueError(f"top_p p must be in (0, 1], got {self.p!r}")
        _check_temperature(self.temperature)

    def compile_key(self):
        return (self.name,)


@dataclasses.dataclass(frozen=True)
class Beam:
    """Beam search keeping ``width`` hypotheses, ranked by log-probability / GNMT length penalty.

    Args:
        width: beams per input (>= 1; 1 is greedy).
        length_penalty: the GNMT alpha in ``((5 + length) / 6) ** alpha``; 0 ranks by total
            log-probability.
        early_stopping: stop once no alive beam can beat the worst kept finished one.

    Example:
    >>> Beam(width=3).compile_key()
    ('beam', 3, 0.6, True)
    """

    width: int = 4
    length_penalty: float = 0.6
    early_stopping: bool = True
    name: ClassVar[str] = "beam"

    def __post_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"beam width must be an int >= 1, got {self.width!r}")

    def compile_key(self):
        return (self.name, self.width, float(self.length_penalty), bool(self.early_stopping))


SAMPLERS = {cls.name: cls for cls in (Greedy, TopK, TopP, Beam)}
# The option names of Seq2SeqTransformer.generate before samplers were objects.
_LEGACY_OPTIONS = {
    "top_k": {"top_k": "k"},
    "top_p": {"top_p": "p"},
    "beam": {"beam_width": "width"},
}


def get_sampler(sampler="greedy", **options):
    """A sampler object from a name and its options (or a sampler object, given no options).

    Options the chosen method would ignore are an error (``ValueError`` naming the option).

    Example:
    >>> get_sampler("top_p", top_p=0.8, temperature=0.5)
    TopP(p=0.8, temperature=0.5)
    >>> get_sampler("greedy", top_p=0.8)
    Traceback (most recent call last):
    ...
    ValueError: greedy takes no option top_p (it takes none)
    """
    if not isinstance(sampler, str):
        if type(sampler) not in SAMPLERS.values():
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)} or their objects, got {sampler!r}")
        if options:
            raise ValueError(f"options {sorted(options)} given with a sampler object {sampler!r}")
        return sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
    cls = SAMPLERS[sampler]
    renames = _LEGACY_OPTIONS.get(sampler, {})
    fields = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for name, value in options.items():
        field = renames.get(name, name)
        if field not in fields:
            accepted = sorted(fields + list(renames)) or ["none"]
            raise ValueError(f"{sampler} takes no option {name} (it takes {', '.join(accepted)})")
        kwargs[field] = value
    return cls(**kwargs)


# -- filters and choosers ---------------------------------------------------------------------------


def top_k_filter(logits, k):
    """Keeps the ``k`` largest logits per row, the rest set to -inf-like."""
    # top_k fails on k > vocabulary size; keeping every token is what such a k means.
    k = min(k, logits.shape[-1] or k)
    kth_largest = tf.math.top_k(logits, k=k).values[:, -1:]
    return tf.where(logits < kth_largest, NEG_INF, logits)


def top_p_filter(logits, p):
    """Keeps the smallest set of most likely tokens whose probability reaches ``p`` (nucleus).

    ``p`` is a scalar or one value per row (``[batch]``).
    """
    p = tf.convert_to_tensor(p, logits.dtype)
    if p.shape.rank == 1:
        p = p[:, None]
    sorted_logits = tf.sort(logits, direction="DESCENDING", axis=-1)
    sorted_probs = tf.nn.softmax(sorted_logits, axis=-1)
    # A token is kept when the mass strictly before it is below p; the top token always is.
    mass_before = tf.cumsum(sorted_probs, axis=-1, exclusive=True)
    kept = tf.where(mass_before < p, sorted_logits, tf.fill(tf.shape(sorted_logits), 1e30))
    threshold = tf.reduce_min(kept, axis=-1, keepdims=True)
    return tf.where(logits < threshold, NEG_INF, logits)


def sample_rows(logits, row_seeds, step):
    """One token per row drawn from ``softmax(logits)``, row ``i`` from its own stateless seed.

    Each row is drawn on its own (``row_seeds[i] + [0, step]``), so a row's token does not
    depend on the other rows of the batch -- what a server that merges requests needs.
    """
    step = tf.cast(step, tf.int32)
    offset = tf.stack([tf.zeros_like(step), step])

    def draw(row):
        row_logits, seed = row
        seed = seed + offset
        return tf.random.stateless_categorical(row_logits[None], 1, seed, dtype=tf.int32)[0, 0]

    return tf.map_fn(draw, (logits, row_seeds), fn_output_signature=tf.int32)


def choose_tokens(sampler, log_probs, row_seeds, step, temperature, top_p):
    """The next token per row for the one-sequence samplers (``Greedy``, ``TopK``, ``TopP``).

    ``temperature`` and ``top_p`` are ``[batch]`` float32 tensors (ignored where the sampler does
    not use them); ``log_probs`` are float32 ``[batch, vocab]``.
    """
    if isinstance(sampler, Greedy):
        return tf.argmax(log_probs, axis=-1, output_type=tf.int32)
    logits = log_probs / temperature[:, None]
    if isinstance(sampler, TopK):
        logits = top_k_filter(logits, sampler.k)
    else:
        logits = top_p_filter(logits, top_p)
    return sample_rows(logits, row_seeds, step)
