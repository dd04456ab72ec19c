"""Sampler objects: validation with errors that name the option, names, compile keys."""

import numpy as np
import pytest
from generation.tiny_models import seq2seq_case

from tfmodels import generation
from tfmodels.generation import Beam, Greedy, TopK, TopP, get_sampler


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TopP(0.0), "top_p p must be in"),
        (lambda: TopP(1.5), "top_p p must be in"),
        (lambda: TopP(0.9, temperature=0.0), "temperature must be > 0"),
        (lambda: TopK(0), "top_k k must be an int >= 1"),
        (lambda: TopK(2.5), "top_k k must be an int >= 1"),
        (lambda: TopK(3, temperature=-1.0), "temperature must be > 0"),
        (lambda: Beam(0), "beam width must be an int >= 1"),
        (lambda: get_sampler("greedy", top_p=0.9), "greedy takes no option top_p"),
        (lambda: get_sampler("top_k", p=0.9), "top_k takes no option p"),
        (lambda: get_sampler("beam", temperature=2.0), "beam takes no option temperature"),
        (lambda: get_sampler("nucleus"), "sampler must be one of"),
        (lambda: get_sampler(TopP(), p=0.5), "given with a sampler object"),
    ],
)
def test_bad_options_are_errors_naming_them(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_names_and_legacy_option_names():
    assert get_sampler("top_p", top_p=0.5, temperature=2.0) == TopP(0.5, 2.0)
    assert get_sampler("top_k", top_k=4) == TopK(4) == get_sampler("top_k", k=4)
    assert get_sampler("beam", beam_width=3, early_stopping=False) == Beam(3, early_stopping=False)
    assert get_sampler("greedy") == Greedy() and get_sampler(Beam(2)) == Beam(2)
    # Per-row tensor options (temperature, p) do not change the compiled loop; k does.
    assert TopP(0.5, 2.0).compile_key() == TopP(0.9).compile_key()
    assert TopK(3).compile_key() != TopK(4).compile_key()


@pytest.fixture(scope="module")
def case():
    return seq2seq_case()


@pytest.mark.parametrize(
    "sampler, options, message",
    [
        ("greedy", {"temperature": 0.5}, "greedy takes no temperature"),
        ("beam", {"seed": 3}, "beam takes no seed"),
        ("top_k", {"top_p": 0.5}, "top_k takes no top_p"),
        ("top_p", {"top_p": [0.5, 0.0, 1.0]}, r"top_p must be in \(0, 1\], got \[0.0\]"),
        ("top_p", {"temperature": [1.0, -1.0, 1.0]}, "temperature must be in"),
        ("greedy", {"row_max_new_tokens": [1, 5, 0]}, r"row_max_new_tokens must be in \[1, 4\]"),
        ("greedy", {"row_max_new_tokens": [1, 5, 2]}, r"row_max_new_tokens .* got \[5\]"),
    ],
)
def test_generate_rejects_options_the_sampler_ignores_or_bad_values(case, sampler, options, message):
    with pytest.raises(ValueError, match=message):
        generation.generate(case.model, case.inputs, sampler, 4, **options)
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 1"):
        generation.generate(case.model, case.inputs, "greedy", 0)


def test_filters_take_one_value_per_row():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05], [0.5, 0.3, 0.15, 0.05]], "float32"))
    kept = generation.top_p_filter(logits, np.array([0.75, 0.4], "float32")).numpy() > -1e8
    np.testing.assert_array_equal(kept, [[True, True, False, False], [True, False, False, False]])
