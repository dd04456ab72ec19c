"""The one decoding loop over a decoder-only LM and a Seq2SeqTransformer: the same sampler tests.

Each model is checked against its own uncached forward pass (``Case.next_logits``), so the tests
hold for any model that offers the protocol.
"""

import numpy as np
import pytest
import tensorflow as tf
from generation.tiny_models import PAD, decoder_case, seq2seq_case

from tfmodels import generation
from tfmodels.generation import Beam, Greedy, TopK, TopP

N = 6  # max_new_tokens


@pytest.fixture(scope="module", params=["decoder_only", "seq2seq"])
def case(request):
    return {"decoder_only": decoder_case, "seq2seq": seq2seq_case}[request.param]()


class Override:
    """``model`` with other end/pad/banned ids (the loop reads only the protocol)."""

    def __init__(self, model, **ids):
        self.model = model
        for name in ("end_token_ids", "pad_token_id", "banned_token_ids"):
            setattr(self, name, ids.get(name, getattr(model, name)))

    def decoding_init(self, inputs, max_new_tokens):
        return self.model.decoding_init(inputs, max_new_tokens)

    def decoding_step(self, token_ids, step, cache, context):
        return self.model.decoding_step(token_ids, step, cache, context)


def _masked_logits(case, generated, model=None):
    model = model or case.model
    logits = case.next_logits(case.inputs, tf.constant(generated.reshape(case.batch, -1), tf.int32))
    logits[:, list(model.banned_token_ids)] = -np.inf
    return logits


def _walk(case, tokens, model=None):
    """Yields ``(step, alive rows, uncached banned-masked logits)`` along ``tokens``."""
    model = model or case.model
    ended = np.zeros(case.batch, bool)
    for step in range(tokens.shape[1]):
        yield step, ~ended, _masked_logits(case, tokens[:, :step], model)
        ended |= np.isin(tokens[:, step], model.end_token_ids)


def test_greedy_is_the_uncached_argmax_path(case):
    tokens = generation.generate(case.model, case.inputs, "greedy", N).numpy()
    for step, alive, logits in _walk(case, tokens):
        expected = np.where(alive, logits.argmax(-1), PAD)
        np.testing.assert_array_equal(tokens[:, step], expected, err_msg=f"step {step}")


def _allowed(sampler, logits):
    """The tokens ``sampler`` may pick from ``logits`` (float64, banned already -inf)."""
    logits = logits / sampler.temperature
    if isinstance(sampler, TopK):
        return logits >= np.sort(logits, axis=-1)[:, -sampler.k][:, None]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    order = np.argsort(-probs, axis=-1)
    mass_before = np.cumsum(np.take_along_axis(probs, order, -1), -1) - np.take_along_axis(probs, order, -1)
    allowed = np.zeros_like(probs, bool)
    np.put_along_axis(allowed, order, mass_before < sampler.p + 1e-5, axis=-1)
    return allowed


@pytest.mark.parametrize("sampler", [TopK(3, temperature=2.0), TopP(0.6, temperature=2.0)])
def test_sampling_stays_in_the_allowed_set(case, sampler):
    greedy = generation.generate(case.model, case.inputs, "greedy", N).numpy()
    differs = 0
    for seed in (1, 2):
        tokens = generation.generate(case.model, case.inputs, sampler, N, seed=seed).numpy()
        differs += int((tokens != greedy).any())
        for step, alive, logits in _walk(case, tokens):
            allowed = _allowed(sampler, logits.astype("float64"))
            picked = allowed[np.arange(case.batch), tokens[:, step]]
            assert picked[alive].all(), f"step {step}: {tokens[:, step]} outside the allowed set"
            assert (tokens[~alive, step] == PAD).all()
    assert differs, "a hot temperature should sample something else than greedy"


def test_seeded_sampling_is_reproducible_and_rows_do_not_depend_on_batchmates(case):
    sampler = TopP(0.9, temperature=1.5)
    seeds, temperatures = [11, 12, 13], [1.5, 3.0, 0.8]
    first = generation.generate(case.model, case.inputs, sampler, N, seed=seeds,
                                temperature=temperatures).numpy()
    again = generation.generate(case.model, case.inputs, sampler, N, seed=seeds,
                                temperature=temperatures).numpy()
    np.testing.assert_array_equal(first, again)
    other = generation.generate(case.model, case.inputs, sampler, N, seed=[21, 22, 23],
                                temperature=temperatures).numpy()
    assert (other != first).any()
    # Row 1 alone, or next to other seeds and temperatures, decodes the same.
    alone = generation.generate(case.model, case.row(1).inputs, sampler, N, seed=[12],
                                temperature=[3.0]).numpy()
    np.testing.assert_array_equal(alone[0], first[1])
    mixed = generation.generate(case.model, case.inputs, sampler, N, seed=[5, 12, 7],
                                temperature=[0.5, 3.0, 2.0], top_p=[0.3, 0.9, 1.0]).numpy()
    np.testing.assert_array_equal(mixed[1], first[1])


def test_beam_search_scores_at_least_greedy_and_width_one_is_greedy(case):
    greedy, greedy_scores = generation.generate(case.model, case.inputs, "greedy", N,
                                                return_scores=True)
    _, beam_scores = generation.generate(case.model, case.inputs, Beam(3, length_penalty=0.0), N,
                                         return_scores=True)
    assert (beam_scores.numpy() >= greedy_scores.numpy() - 1e-4).all()
    one, one_scores = generation.generate(case.model, case.inputs, Beam(1, length_penalty=0.0), N,
                                          return_scores=True)
    np.testing.assert_array_equal(one.numpy(), greedy.numpy())
    np.testing.assert_allclose(one_scores.numpy(), greedy_scores.numpy(), atol=1e-4)


@pytest.mark.parametrize("sampler", [Greedy(), TopP(0.9), Beam(2)])
def test_per_row_max_new_tokens(case, sampler):
    limits = np.array([2, N, 4])[: case.batch]
    seed = {} if sampler.name in ("greedy", "beam") else {"seed": 3}
    full = generation.generate(case.model, case.inputs, sampler, N, **seed).numpy()
    tokens = generation.generate(case.model, case.inputs, sampler, N, row_max_new_tokens=limits,
                                 **seed).numpy()
    for row, limit in enumerate(limits):
        assert (tokens[row, limit:] == PAD).all()
        if sampler.name != "beam":  # one sequence: the limit only cuts it
            np.testing.assert_array_equal(tokens[row, :limit], full[row, :limit])
    np.testing.assert_array_equal(tokens[1], full[1])


def test_an_end_token_stops_its_row_and_pads_after_it(case):
    greedy = generation.generate(case.model, case.inputs, "greedy", N).numpy()
    ends = case.model.end_token_ids
    # A token some row emits after its first step becomes an end token too.
    row, step = np.argwhere(~np.isin(greedy[:, 1:], (PAD,) + ends))[0] + [0, 1]
    model = Override(case.model, end_token_ids=ends + (int(greedy[row, step]),))
    tokens = generation.generate(model, case.inputs, "greedy", N).numpy()
    for r in range(case.batch):
        stops = np.flatnonzero(np.isin(greedy[r], model.end_token_ids))
        stop = stops[0] + 1 if stops.size else N
        np.testing.assert_array_equal(tokens[r, :stop], greedy[r, :stop])
        assert (tokens[r, stop:] == PAD).all()
    assert (tokens[row, step + 1 :] == PAD).all()
    assert np.isin(tokens[row, : step + 1], model.end_token_ids).any()


@pytest.mark.parametrize("sampler", [Greedy(), TopK(3, temperature=2.0), Beam(2)])
def test_banned_tokens_are_never_emitted(case, sampler):
    seed = {"seed": 5} if sampler.name == "top_k" else {}
    before = generation.generate(case.model, case.inputs, sampler, N, **seed).numpy()
    banned = tuple(sorted(set(before.ravel().tolist()) | set(case.model.banned_token_ids)))
    model = Override(case.model, banned_token_ids=banned)
    tokens = generation.generate(model, case.inputs, sampler, N, **seed).numpy()
    emitted = set(tokens.ravel().tolist()) - {PAD}
    assert emitted and not emitted & set(banned)


def test_the_compiled_loop_is_kept_and_per_row_options_do_not_retrace(case):
    top_p = generation.decode_function(case.model, TopP(), N)
    greedy = generation.decode_function(case.model, Greedy(), N)
    generation.generate(case.model, case.inputs, TopP(0.5, temperature=0.7), N, seed=[1, 2, 3])
    generation.generate(case.model, case.inputs, "greedy", N)
    traces = top_p.experimental_get_tracing_count(), greedy.experimental_get_tracing_count()
    for sampler, seed in ((TopP(0.9), [2, 2, 2]), (TopP(0.3, temperature=2.0), [4, 5, 6])):
        generation.generate(case.model, case.inputs, sampler, N, seed=seed, top_p=[0.2, 0.5, 1.0])
        generation.generate(case.model, case.inputs, "greedy", N)
    assert generation.decode_function(case.model, TopP(0.2), N) is top_p
    assert (top_p.experimental_get_tracing_count(), greedy.experimental_get_tracing_count()) == traces
