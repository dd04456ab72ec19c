"""Seq2SeqTransformer and TransformerDecoderBlock: shapes, masks, decoding, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers.transformer_decoder import TransformerDecoderBlock
from tfmodels.models.transformer import (
    InverseSqrtWarmup,
    LabelSmoothedCrossEntropy,
    Seq2SeqTransformer,
    masked_accuracy,
)

VOCAB = 37


def small_model(**overrides):
    config = dict(
        source_vocab_size=VOCAB,
        hidden_size=16,
        num_heads=2,
        intermediate_size=32,
        num_encoder_layers=1,
        num_decoder_layers=2,
        dropout=0.0,
        max_source_length=12,
        max_target_length=10,
    )
    config.update(overrides)
    model = Seq2SeqTransformer(**config)
    model.build()
    return model


@pytest.fixture(scope="module")
def model():
    """One model for the read-only tests, so they share its compiled decoding functions."""
    keras.utils.set_random_seed(99)
    return small_model()


def random_ids(batch, length, seed=0, low=3):
    return np.random.default_rng(seed).integers(low, VOCAB, size=(batch, length)).astype("int32")


def test_decoder_block_shapes_and_cache():
    block = TransformerDecoderBlock(num_heads=2, intermediate_size=32, dropout=0.0)
    x = tf.random.normal((2, 5, 16))
    enc = tf.random.normal((2, 7, 16))
    full = block(x, enc)
    assert full.shape == (2, 5, 16)
    # Feeding the positions one at a time through the cache gives the same outputs.
    cache = tf.zeros((2, 2, 5, 2, 8))
    cross = block.compute_cross_attention_cache(enc)
    steps = []
    for i in range(8):
        out, cache = block(
            x[:, i : i + 1],
            self_attention_cache=cache,
            self_attention_cache_update_index=i,
            cross_attention_cache=cross,
        )
        steps.append(out)
    np.testing.assert_allclose(np.concatenate(steps, 1), full.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "norm_first, position_encoding", [(False, "sinusoidal"), (True, "learned")]
)
def test_shapes(norm_first, position_encoding):
    model = small_model(norm_first=norm_first, position_encoding=position_encoding)
    logits = model({"source_ids": random_ids(3, 12), "target_ids": random_ids(3, 10)})
    assert logits.shape == (3, 10, VOCAB)
    tokens = model.generate(random_ids(3, 12), max_length=4, method="beam", beam_width=2)
    assert tokens.shape == (3, 4)


def test_separate_vocabularies_and_untied_output():
    model = small_model(target_vocab_size=23, tie_output_embeddings=False)
    logits = model({"source_ids": random_ids(2, 5), "target_ids": random_ids(2, 4, low=3) % 20 + 3})
    assert logits.shape == (2, 4, 23)
    with pytest.raises(ValueError):
        Seq2SeqTransformer(10, 11, share_embeddings=True)


def test_future_tokens_do_not_influence_past_positions(model):
    source = random_ids(2, 8)
    target = random_ids(2, 10, seed=1)
    changed = target.copy()
    changed[:, 6:] = random_ids(2, 4, seed=2)
    a = model({"source_ids": source, "target_ids": target}).numpy()
    b = model({"source_ids": source, "target_ids": changed}).numpy()
    np.testing.assert_allclose(a[:, :6], b[:, :6], atol=1e-5)
    assert not np.allclose(a[:, 6:], b[:, 6:], atol=1e-3)


def test_padded_source_tokens_do_not_influence_outputs(model):
    source = random_ids(2, 12)
    source[:, 7:] = 0  # pad_id
    # Same real tokens, different amounts of padding.
    shorter = source[:, :9]
    target = random_ids(2, 6, seed=4)
    a = model({"source_ids": source, "target_ids": target}).numpy()
    b = model({"source_ids": shorter, "target_ids": target}).numpy()
    np.testing.assert_allclose(a, b, atol=1e-5)
    # Whatever the encoder outputs at padded positions are, the decoder never reads them.
    enc, mask = model.encode(tf.constant(source))
    noisy = tf.where(mask[..., None], enc, tf.random.normal(enc.shape) * 100)
    c = model.decode(tf.constant(target), noisy, mask).numpy()
    np.testing.assert_allclose(a, c, atol=1e-4)
    np.testing.assert_array_equal(
        model.generate(source, max_length=8).numpy(), model.generate(shorter, max_length=8).numpy()
    )


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_cached_decoding_equals_uncached(model, method):
    source = random_ids(3, 9, seed=5)
    source[0, 6:] = 0
    options = {"beam_width": 3} if method == "beam" else {}
    cached = model.generate(source, max_length=8, method=method, **options)
    uncached = model.generate(source, max_length=8, method=method, use_cache=False, **options)
    np.testing.assert_array_equal(cached.numpy(), uncached.numpy())


def test_beam_width_one_equals_greedy(model):
    source = random_ids(4, 9, seed=6)
    greedy, greedy_scores = model.generate(source, max_length=8, return_scores=True)
    beam, beam_scores = model.generate(
        source, max_length=8, method="beam", beam_width=1, length_penalty=0.0, return_scores=True
    )
    np.testing.assert_array_equal(greedy.numpy(), beam.numpy())
    np.testing.assert_allclose(greedy_scores.numpy(), beam_scores.numpy(), atol=1e-4)


def test_greedy_matches_step_by_step_argmax(model):
    source = random_ids(2, 7, seed=7)
    tokens = model.generate(source, max_length=8).numpy()
    prefix = np.full((2, 1), model.start_id, "int32")
    for i in range(8):
        logits = model({"source_ids": source, "target_ids": prefix}).numpy()[:, -1]
        logits[:, [model.pad_id, model.start_id]] = -1e9
        nxt = logits.argmax(-1).astype("int32")
        # Once a sequence ended it is padded.
        nxt = np.where((prefix[:, 1:] == model.end_id).any(1), model.pad_id, nxt)
        np.testing.assert_array_equal(tokens[:, i], nxt)
        prefix = np.concatenate([prefix, nxt[:, None]], 1)


@pytest.mark.parametrize("method", ["greedy", "beam", "top_k"])
def test_decode_loop_does_not_retrace(method):
    model = small_model()
    fn = model.get_generate_function(method, 8)
    model.generate(random_ids(2, 9, seed=8), max_length=8, method=method)
    assert fn.experimental_get_tracing_count() == 1
    model.generate(random_ids(2, 9, seed=9), max_length=8, method=method, seed=3)
    assert fn.experimental_get_tracing_count() == 1
    assert model.get_generate_function(method, 8) is fn


def test_sampling_is_seeded(model):
    source = random_ids(2, 9, seed=10)
    a = model.generate(source, max_length=8, method="top_p", seed=1)
    b = model.generate(source, max_length=8, method="top_p", seed=1)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    k1 = model.generate(source, max_length=8, method="top_k", top_k=1)
    np.testing.assert_array_equal(k1.numpy(), model.generate(source, max_length=8).numpy())


def test_get_config_round_trip():
    model = small_model(norm_first=True, position_encoding="learned", share_embeddings=True)
    config = model.get_config()
    clone = Seq2SeqTransformer.from_config(config)
    assert clone.get_config() == config
    block = TransformerDecoderBlock(num_heads=2, intermediate_size=8, norm_first=True)
    assert TransformerDecoderBlock.from_config(block.get_config()).get_config() == block.get_config()


def test_keras_save_load_round_trip(tmp_path):
    model = small_model(norm_first=True)
    model.compile(optimizer="adam", loss=LabelSmoothedCrossEntropy())
    source, target = random_ids(2, 8), random_ids(2, 6, seed=1)
    inputs = {"source_ids": source, "target_ids": target}
    path = str(tmp_path / "seq2seq.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), atol=1e-6)
    np.testing.assert_array_equal(
        loaded.generate(source, max_length=8).numpy(), model.generate(source, max_length=8).numpy()
    )


def test_fit_with_xla_reduces_loss():
    model = small_model()
    rng = np.random.default_rng(0)
    source = rng.integers(3, VOCAB, size=(64, 6)).astype("int32")
    # Task: copy the source, then the end token.
    labels = np.concatenate([source, np.full((64, 1), 2, "int32")], 1)
    decoder_in = np.concatenate([np.full((64, 1), 1, "int32"), source], 1)
    model.compile(
        optimizer=keras.optimizers.Adam(InverseSqrtWarmup(16, warmup_steps=20, scale=2.0)),
        loss=LabelSmoothedCrossEntropy(),
        metrics=[masked_accuracy],
        jit_compile=True,
    )
    history = model.fit(
        {"source_ids": source, "target_ids": decoder_in}, labels, batch_size=16, epochs=3, verbose=0
    )
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_mixed_precision_forward_and_generate():
    keras.config.set_dtype_policy("mixed_float16")
    model = small_model()
    logits = model({"source_ids": random_ids(2, 6), "target_ids": random_ids(2, 4)})
    assert logits.dtype == "float16"
    assert model.generate(random_ids(2, 6), max_length=4).shape == (2, 4)
