import math

import keras
import numpy as np
import pytest
from testlib import run_layer_test

from tfmodels import layers as L


def test_sinusoidal_encoding_matches_the_paper_formula():
    enc = np.asarray(L.SinusoidalPositionEncoding()(np.zeros((1, 7, 6), "float32")))[0]
    for pos in range(7):
        for i in range(3):
            angle = pos / (10000 ** (2 * i / 6))
            assert enc[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-5)
            assert enc[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-5)
    shifted = np.asarray(L.SinusoidalPositionEncoding()(np.zeros((1, 2, 6)), start_index=5))[0]
    np.testing.assert_allclose(shifted, enc[5:7], atol=1e-5)


def test_learned_position_embedding_slices_from_start_index():
    layer = L.PositionEmbedding(10)
    full = np.asarray(layer(np.zeros((1, 10, 4))))[0]
    np.testing.assert_allclose(np.asarray(layer(np.zeros((3, 2, 4)), start_index=4))[0], full[4:6])


def test_transformer_embedding_sums_token_segment_position():
    layer = L.TransformerEmbedding(
        vocab_size=20, hidden_size=8, max_sequence_length=6, type_vocab_size=2, use_layer_norm=False
    )
    ids, seg = np.array([[3, 4, 5]]), np.array([[0, 1, 1]])
    out = np.asarray(layer(ids, seg))[0]
    expected = (
        layer.token_embedding.embeddings.numpy()[[3, 4, 5]]
        + layer.segment_embedding.embeddings.numpy()[[0, 1, 1]]
        + layer.position_layer.embeddings.numpy()[:3]
    )
    np.testing.assert_allclose(out, expected, atol=1e-6)
    with pytest.raises(ValueError, match="position_encoding"):
        L.TransformerEmbedding(10, 4, position_encoding="rotary")


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_padding_invariance(norm_first):
    block = L.TransformerEncoderBlock(num_heads=2, intermediate_size=32, norm_first=norm_first, dropout=0.0)
    x = np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32")
    pad = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    noisy = x.copy()
    noisy[0, 3:] = 42.0
    a = np.asarray(block(x, padding_mask=pad))
    b = np.asarray(block(noisy, padding_mask=pad))
    np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-5)
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_output_length_computes_the_first_positions(norm_first):
    block = L.TransformerEncoderBlock(num_heads=2, intermediate_size=32, norm_first=norm_first, dropout=0.0)
    x = np.random.default_rng(2).normal(size=(2, 6, 16)).astype("float32")
    pad = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    full = np.asarray(block(x, padding_mask=pad))
    first_two = np.asarray(block(x, padding_mask=pad, output_length=2))
    assert first_two.shape == (2, 2, 16)
    np.testing.assert_allclose(first_two, full[:, :2], atol=1e-5)
    # The kept positions still attend to the others: changing a later real token changes them.
    moved = x.copy()
    moved[:, 3] = np.random.default_rng(3).normal(size=(2, 16))
    assert np.abs(np.asarray(block(moved, padding_mask=pad, output_length=2)) - first_two).max() > 1e-3
    symbolic = block(keras.Input((6, 16)), output_length=1)
    assert tuple(symbolic.shape) == (None, 1, 16)


def test_encoder_block_post_ln_output_is_normalized():
    block = L.TransformerEncoderBlock(num_heads=2, intermediate_size=32, dropout=0.0)
    out = np.asarray(block(np.random.default_rng(1).normal(size=(2, 5, 16)).astype("float32")))
    np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(-1), 1.0, atol=1e-2)
    with pytest.raises(ValueError, match="divisible"):
        L.TransformerEncoderBlock(num_heads=3, intermediate_size=8)(np.zeros((1, 2, 16)))


def test_feed_forward_gelu_is_exact_erf_form():
    ff = L.FeedForward(8, activation="gelu")
    x = np.random.default_rng(2).normal(size=(1, 2, 4)).astype("float32")
    out = np.asarray(ff(x))
    h = x @ ff.intermediate_dense.kernel.numpy() + ff.intermediate_dense.bias.numpy()
    from scipy.special import erf

    h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
    expected = h @ ff.output_dense.kernel.numpy() + ff.output_dense.bias.numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_masked_lm_head_is_tied_to_the_embedding():
    emb = keras.layers.Embedding(30, 8)
    emb.build((None,))
    head = L.MaskedLMHead(emb)
    seq = np.random.default_rng(3).normal(size=(2, 5, 8)).astype("float32")
    logits = np.asarray(head(seq, np.array([[0, 4], [2, 2]])))
    h = np.asarray(head.layer_norm(head.transform(seq[[0, 0, 1, 1], [0, 4, 2, 2]][None])))[0]
    np.testing.assert_allclose(logits.reshape(4, 30), h @ emb.embeddings.numpy().T, atol=1e-4)
    emb.embeddings.assign(np.zeros((30, 8)))
    np.testing.assert_allclose(np.asarray(head(seq, np.array([[0, 4], [2, 2]]))), 0.0, atol=1e-6)


def test_span_head_never_picks_padding():
    start, end = L.SpanHead()(np.ones((1, 4, 8), "float32"), np.array([[1, 1, 0, 0]]))
    assert np.all(np.asarray(start)[0, 2:] <= -1e3) and np.all(np.asarray(end)[0, 2:] <= -1e3)


_X = np.random.default_rng(4).normal(size=(2, 6, 8)).astype("float32")
_PAD = np.array([[1, 1, 1, 1, 0, 0], [1] * 6], "int32")
_IDS = np.random.default_rng(5).integers(0, 50, (2, 6)).astype("int32")

# (class, init kwargs, input, expected output shape, trainable weights, harness options)
HARNESS_CASES = {
    "attention": (L.MultiHeadAttention, dict(num_heads=2, key_dim=4), _X, (2, 6, 8), 8, {}),
    "cross_attention": (
        L.MultiHeadAttention, dict(num_heads=2, key_dim=4, output_dim=5),
        {"query": _X[:, :3], "value": _X}, (2, 3, 5), 8, {},
    ),
    "encoder_block": (
        L.TransformerEncoderBlock, dict(num_heads=2, intermediate_size=16, activation="relu", norm_first=True),
        {"x": _X, "padding_mask": _PAD}, (2, 6, 8), 16, {},
    ),
    "encoder_block_first_position": (
        L.TransformerEncoderBlock, dict(num_heads=2, intermediate_size=16),
        {"x": _X, "padding_mask": _PAD}, (2, 1, 8), 16, {"call_kwargs": {"output_length": 1}},
    ),
    "decoder_block": (
        L.TransformerDecoderBlock, dict(num_heads=2, intermediate_size=16, norm_first=True),
        {"x": _X[:, :4], "encoder_output": _X, "encoder_padding_mask": _PAD}, (2, 4, 8), 26, {},
    ),
    "feed_forward": (L.FeedForward, dict(intermediate_size=16, activation="gelu_approximate"), _X, (2, 6, 8), 4, {}),
    "pooler": (L.Pooler, {}, _X, (2, 8), 2, {}),
    # Position layers return one [1, length, dim] table, broadcast over the batch.
    "position_embedding": (L.PositionEmbedding, dict(sequence_length=8), _X, (1, 6, 8), 1, {}),
    # No weights: nothing to train.
    "sinusoidal": (L.SinusoidalPositionEncoding, {}, _X, (1, 6, 8), 0, {"run_training_check": False}),
    # Logits heads return float32 under mixed precision (a stable softmax / loss).
    "next_sentence_head": (L.NextSentenceHead, {}, _X[:, 0], (2, 2), 2, {"output_dtype": "float32"}),
    "dense": (L.Dense, dict(units=5, activation="gelu"), _X, (2, 6, 5), 2, {}),
    "layer_norm": (L.LayerNorm, dict(epsilon=1e-6), _X, (2, 6, 8), 2, {}),
    "dropout": (L.Dropout, dict(rate=0.3, seed=2), _X, (2, 6, 8), 0, {"run_training_check": False}),
    "token_embedding": (L.TokenEmbedding, dict(input_dim=50, output_dim=8), _IDS, (2, 6, 8), 1, {}),
    "transformer_embedding": (
        L.TransformerEmbedding, dict(vocab_size=50, hidden_size=8, max_sequence_length=10, type_vocab_size=2),
        {"token_ids": _IDS, "segment_ids": _PAD}, (2, 6, 8), 5, {},
    ),
    "span_head": (
        L.SpanHead, {}, {"sequence_output": _X, "padding_mask": _PAD}, ((2, 6), (2, 6)), 2,
        {"output_dtype": "float32"},
    ),
}


@pytest.mark.parametrize("case", list(HARNESS_CASES))
def test_layer_harness(case):
    cls, kwargs, data, shape, num_weights, options = HARNESS_CASES[case]
    run_layer_test(
        cls,
        init_kwargs=kwargs,
        input_data=data,
        expected_output_shape=shape,
        expected_num_trainable_weights=num_weights,
        **options,
    )


def test_each_weight_gets_its_own_initializer_draw():
    from tfmodels import BertConfig, BertEncoder

    # One TruncatedNormal instance is handed to every sublayer; unseeded Keras 3 initializers
    # repeat their values, so without a clone per weight all blocks (and q/k/v) start equal.
    encoder = BertEncoder(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64))
    first, second = (block.attention for block in encoder.encoder_blocks)
    kernels = [first.query_kernel, first.key_kernel, first.value_kernel, second.query_kernel]
    values = [np.asarray(k).ravel() for k in kernels]
    for i in range(len(values)):
        for j in range(i):
            assert not np.allclose(values[i], values[j]), (kernels[i].path, kernels[j].path)
    ff = encoder.encoder_blocks[0].feed_forward
    assert not np.allclose(np.asarray(ff.intermediate_dense.kernel), np.asarray(ff.output_dense.kernel).T)
    # A seeded initializer stays reproducible.
    seeded = keras.initializers.RandomNormal(seed=3)
    a, b = L.Dense(4, kernel_initializer=seeded), L.Dense(4, kernel_initializer=seeded)
    a.build((None, 4)), b.build((None, 4))
    np.testing.assert_array_equal(np.asarray(a.kernel), np.asarray(b.kernel))


@keras.saving.register_keras_serializable(package="tfmodels_tests")
def _square(x):
    return x * x


@pytest.mark.parametrize("activation", ["gelu", _square])
def test_dense_and_feed_forward_serialise_activations_alike(activation):
    dense = L.Dense(4, activation=activation)
    ff = L.FeedForward(4, activation=activation)
    assert dense.get_config()["activation"] == ff.get_config()["activation"]
    x = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    for layer in (dense, ff):
        expected = np.asarray(layer(x))
        clone = type(layer).from_config(layer.get_config())
        clone.build(x.shape)
        clone.set_weights(layer.get_weights())
        np.testing.assert_allclose(np.asarray(clone(x)), expected, atol=1e-6)


def test_illegal_cache_arguments_name_the_values():
    layer = L.MultiHeadAttention(num_heads=2, key_dim=4)
    x = np.zeros((1, 3, 8), "float32")
    with pytest.raises(ValueError, match=r"cache_update_index=2 needs a cache.*cache=None"):
        layer(x, cache_update_index=2)
    block = L.TransformerDecoderBlock(num_heads=2, intermediate_size=16)
    with pytest.raises(ValueError, match="self_attention_cache_update_index=1 needs a self_attention_cache"):
        block(x, x, self_attention_cache_update_index=1)
    with pytest.raises(ValueError, match="decoder_padding_mask is for the uncached pass"):
        block(x, x, decoder_padding_mask=np.ones((1, 3)), self_attention_cache=np.zeros((1, 2, 3, 2, 4)),
              self_attention_cache_update_index=0)
