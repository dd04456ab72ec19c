"""Issue 33, point 6: generating from raw strings has one documented way, sampler options are checked, and
switching decoding methods compiles one function per method without TF's retracing warning."""

import numpy as np
import pytest
import tensorflow as tf
from testlib.log_records import log_records

from tfmodels.models.transformer import Seq2SeqTransformer

VOCAB = 23


@pytest.fixture(scope="module")
def model():
    model = Seq2SeqTransformer(VOCAB, hidden_size=8, num_heads=2, intermediate_size=16, num_encoder_layers=1,
                               num_decoder_layers=1, dropout=0.0, max_source_length=8, max_target_length=6)
    model.build()
    return model


@pytest.mark.parametrize("texts", [["A gorgeous film."], "A gorgeous film.", tf.constant(["A gorgeous film."]),
                                   np.array(["A gorgeous film."])], ids=["list", "str", "tensor", "numpy"])
def test_strings_to_generate_name_the_way_to_translate_text(model, texts):
    with pytest.raises(TypeError, match=r"token ids.*Translator\(model, source_tokenizer, target_tokenizer\)"):
        model.generate(texts)


@pytest.mark.parametrize("top_p", [1.5, 0.0, -0.2])
def test_top_p_outside_zero_one_is_a_value_error_naming_it(model, top_p):
    with pytest.raises(ValueError, match=rf"\(0, 1\], got {top_p}"):
        model.generate(np.ones([1, 4], "int32"), method="top_p", top_p=top_p)


def test_an_option_the_method_ignores_is_a_value_error(model):
    with pytest.raises(ValueError, match="greedy takes no option top_p"):
        model.generate(np.ones([1, 4], "int32"), method="greedy", top_p=0.9)


def test_switching_methods_traces_each_once_without_the_retracing_warning(model):
    source = np.random.default_rng(0).integers(3, VOCAB, size=(2, 5)).astype("int32")
    methods = [("greedy", {}), ("top_k", {"top_k": 3}), ("top_p", {"top_p": 0.8}), ("beam", {"beam_width": 2}),
               ("top_k", {"top_k": 5}), ("top_p", {"top_p": 0.9})]
    with log_records(["tensorflow"]) as records:
        first = {}
        for _ in range(3):  # back and forth: each method's function is made once and traced once
            for method, options in methods:
                tokens = model.generate(source, max_length=4, method=method, **options).numpy()
                first.setdefault((method, *options.values()), tokens)
                if method in ("greedy", "beam"):
                    np.testing.assert_array_equal(tokens, first[(method, *options.values())])
    for method, options in methods:
        assert model.get_generate_function(method, 4, **options).experimental_get_tracing_count() == 1, method
    assert not [m for m in records.messages if "retracing" in m], records.messages
