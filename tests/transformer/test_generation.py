"""Decoding on a model trained to copy its input: the search methods, sampling and its filters.

The untrained-model checks (cached == uncached greedy/beam, beam width 1 == greedy, no retrace,
step-by-step argmax) are in test_seq2seq.py.
"""

import numpy as np
import tensorflow as tf

from tfmodels.generation import top_k_filter, top_p_filter

MAX_LENGTH = 9  # the copy task's longest target: 8 tokens and the end token


def _exact(tokens, labels):
    return float(np.mean(np.all(np.asarray(tokens) == labels, axis=1)))


def test_greedy_and_beam_reproduce_the_copy_task(copy_model, copy_examples):
    source, _, labels = copy_examples
    greedy = copy_model.generate(source, max_length=MAX_LENGTH)
    beam = copy_model.generate(source, max_length=MAX_LENGTH, method="beam", beam_width=3)
    # Each output stops at the end token and is padded after it, like the labels.
    assert _exact(greedy, labels) > 0.95
    assert _exact(beam, labels) > 0.95


def test_beam_early_stopping_does_not_change_the_result(copy_model, copy_examples):
    source = copy_examples[0]
    stopped, stopped_scores = copy_model.generate(
        source, max_length=MAX_LENGTH, method="beam", beam_width=3, return_scores=True
    )
    full, full_scores = copy_model.generate(
        source, max_length=MAX_LENGTH, method="beam", beam_width=3, early_stopping=False,
        return_scores=True,
    )
    np.testing.assert_array_equal(stopped, full)
    np.testing.assert_allclose(stopped_scores, full_scores, rtol=1e-5)


def test_sampling_cached_equals_uncached_and_follows_the_seed(copy_model, copy_examples):
    source = copy_examples[0]
    options = dict(max_length=MAX_LENGTH, method="top_p", top_p=0.95, temperature=4.0)
    cached = np.asarray(copy_model.generate(source, seed=1, **options))
    uncached = np.asarray(copy_model.generate(source, seed=1, use_cache=False, **options))
    np.testing.assert_array_equal(cached, uncached)
    greedy = np.asarray(copy_model.generate(source, max_length=MAX_LENGTH))
    assert np.mean(cached != greedy) > 0.05  # a hot temperature really samples
    other_seed = np.asarray(copy_model.generate(source, seed=2, **options))
    assert not np.array_equal(cached, other_seed)


def test_cold_top_k_sampling_is_greedy(copy_model, copy_examples):
    source = copy_examples[0]
    cold = copy_model.generate(source, max_length=MAX_LENGTH, method="top_k", top_k=5,
                               temperature=1e-3, seed=3)
    np.testing.assert_array_equal(cold, copy_model.generate(source, max_length=MAX_LENGTH))


def test_top_k_filter():
    logits = tf.constant([[1.0, 5.0, 3.0, 2.0], [0.0, -1.0, 4.0, 4.5]])
    kept = top_k_filter(logits, 2).numpy() > -1e8
    np.testing.assert_array_equal(kept, [[False, True, True, False], [False, False, True, True]])
    assert (top_k_filter(logits, 10).numpy() > -1e8).all()  # k beyond the vocabulary keeps all


def test_top_p_filter_keeps_the_smallest_set_reaching_p():
    probs = np.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.9, 0.03, 0.02]])
    logits = tf.constant(np.log(probs), tf.float32)
    kept = top_p_filter(logits, 0.75).numpy() > -1e8
    # Row 0: 0.5 < 0.75 so 0.3 is needed too (0.8 >= 0.75); row 1: 0.9 alone suffices.
    np.testing.assert_array_equal(kept, [[True, True, False, False], [False, True, False, False]])
    assert (top_p_filter(logits, 1.0).numpy() > -1e8).all()
