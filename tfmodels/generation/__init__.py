"""Text generation: one XLA-compiled decoding loop and its samplers, for any model with a cached step.

The cached-decoding protocol -- what a model offers to be decoded (``Seq2SeqTransformer`` and
``CausalLM`` do):

- ``model.decoding_init(inputs, max_new_tokens) -> (logits, cache, context)``: runs the prompt
  (decoder-only: the whole prompt at once) or the source (encoder-decoder: encode, then the start
  token). ``inputs`` is whatever the model takes; ``max_new_tokens`` a Python int that sizes the
  cache. ``logits`` ``[batch, vocab]`` are the next-token logits of the first generated token;
  ``cache`` is a nest of tensors, batch on axis 0, that each step updates (beam search reorders it
  with ``tf.gather(..., axis=0)`` and repeats it with ``tf.repeat(..., axis=0)``); ``context`` is
  a nest of tensors, batch on axis 0, that never changes (encoder output, masks, ...).
- ``model.decoding_step(token_ids, step, cache, context) -> (logits, cache)``: ``token_ids``
  ``[batch]`` int32 is the token chosen at generation step ``step`` (0 for the first generated
  token); returns the logits ``[batch, vocab]`` of generation step ``step + 1`` and the new cache.
  The loop calls it for ``step`` in ``0 .. max_new_tokens - 2`` only (the last token is never fed
  back), with static shapes, inside ``tf.function(jit_compile=True)``.
- ``model.end_token_ids`` (tuple of ints ending a sequence), ``model.pad_token_id`` (written after
  the end) and ``model.banned_token_ids`` (ids never emitted, e.g. pad and start).

Samplers: ``Greedy()``, ``TopK(k, temperature)``, ``TopP(p, temperature)``, ``Beam(width,
length_penalty, early_stopping)`` or their names with options (``get_sampler``). ``generate`` is
the eager entry point; ``decode_function`` the kept compiled function (one per model, sampler
``compile_key`` and ``max_new_tokens``), whose per-row limits, temperatures, top-p values and seeds
are tensors: a row decodes as it would alone, and new values neither retrace nor recompile.

Example:
>>> import tfmodels
>>> model = tfmodels.Seq2SeqTransformer(40, hidden_size=16, num_heads=2, intermediate_size=32,
...                                     num_encoder_layers=1, num_decoder_layers=1)
>>> source = [[5, 6, 7, 2], [8, 9, 2, 0]]
>>> generate(model, source, "top_p", max_new_tokens=6, p=0.9, seed=[1, 2]).shape
TensorShape([2, 6])
>>> generate(model, source, Beam(width=2), max_new_tokens=6, row_max_new_tokens=[3, 6]).shape
TensorShape([2, 6])
"""

from tfmodels.generation.loop import (
    decode,
    decode_function,
    forget_decode_functions,
    generate,
    make_decode_function,
    write_column,
)
from tfmodels.generation.samplers import (
    SAMPLERS,
    Beam,
    Greedy,
    TopK,
    TopP,
    get_sampler,
    top_k_filter,
    top_p_filter,
)

__all__ = [
    "SAMPLERS",
    "Beam",
    "Greedy",
    "TopK",
    "TopP",
    "decode",
    "decode_function",
    "forget_decode_functions",
    "generate",
    "get_sampler",
    "make_decode_function",
    "top_k_filter",
    "top_p_filter",
    "write_column",
]
