"""TextAutoencoder / TextVAE: the VAE's pieces against closed forms, training on raw strings,
encode/decode through the shared decoding loop, the .keras round trip, and a latent that matters."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels import generation
from tfmodels.models.autoencoder import (
    TextAutoencoder,
    TextVAE,
    active_units,
    free_bits_kl,
    gaussian_kl,
    kl_weight,
)
from tfmodels.models.bert import BertConfig, BertEncoder
from tfmodels.text import BertPreprocessor, BertTokenizer

WORDS = "the a film movie good bad great awful plot actors fun dull is was very not".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
MAX_LENGTH = 8
SIZES = dict(latent_dim=4, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
             max_length=MAX_LENGTH)


def tiny_encoder():
    return BertEncoder(BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32))


@pytest.fixture(scope="module")
def preprocessor():
    return BertPreprocessor(BertTokenizer(VOCAB), sequence_length=MAX_LENGTH + 1)


@pytest.fixture(scope="module")
def texts():
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, rng.integers(2, 7))) for _ in range(32)]


@pytest.fixture(scope="module")
def trained_vae(preprocessor, texts):
    """A tiny VAE fitted for a few XLA steps on raw strings (shared by the slower tests)."""
    keras.utils.set_random_seed(0)
    model = TextVAE(tiny_encoder(), preprocessor, kl_anneal_steps=4, free_bits=0.05, seed=1,
                    **SIZES)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)  # XLA: examples test
    history = model.fit(texts, batch_size=16, epochs=3, verbose=0)
    return model, history


# -- closed forms and schedules -------------------------------------------------------------------


def test_gaussian_kl_matches_closed_form_and_monte_carlo():
    mean = np.array([[0.0, 1.0, -2.0]], np.float32)
    log_var = np.array([[0.0, np.log(0.25), np.log(4.0)]], np.float32)
    kl = keras.ops.convert_to_numpy(gaussian_kl(mean, log_var))[0]
    var = np.exp(log_var[0])
    # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2)/2 - 1/2, one dimension at a time.
    expected = -0.5 * np.log(var) + 0.5 * (var + mean[0] ** 2) - 0.5
    np.testing.assert_allclose(kl, expected, rtol=1e-6)
    assert kl[0] == 0.0
    # Monte Carlo: E_q[log q(z) - log p(z)].
    rng = np.random.default_rng(0)
    z = mean[0] + np.sqrt(var) * rng.standard_normal((200_000, 3))
    log_q = -0.5 * ((z - mean[0]) ** 2 / var + np.log(var))
    log_p = -0.5 * z**2
    np.testing.assert_allclose((log_q - log_p).mean(0), expected, atol=0.02)


def test_reparameterisation_gradient_reaches_mean_and_log_var(preprocessor):
    model = TextVAE(tiny_encoder(), preprocessor, seed=3, **SIZES)
    mean = tf.Variable([[0.5, -1.0, 0.0, 2.0]])
    log_var = tf.Variable([[0.0, np.log(4.0), -1.0, 0.5]], dtype=tf.float32)
    with tf.GradientTape() as tape:
        z = model.reparameterize(mean, log_var)
        loss = tf.reduce_sum(z)
    grad_mean, grad_log_var = tape.gradient(loss, [mean, log_var])
    # z = m + exp(v / 2) eps: dz/dm = 1, dz/dv = exp(v / 2) eps / 2 = (z - m) / 2.
    np.testing.assert_allclose(grad_mean.numpy(), np.ones((1, 4)))
    np.testing.assert_allclose(grad_log_var.numpy(), (z - mean).numpy() / 2, rtol=1e-5, atol=1e-7)
    assert np.all(grad_log_var.numpy() != 0)
    # Its samples have the posterior's moments.
    many = tf.repeat(mean, 20000, axis=0), tf.repeat(log_var, 20000, axis=0)
    samples = model.reparameterize(*many).numpy()
    np.testing.assert_allclose(samples.mean(0), mean.numpy()[0], atol=0.05)
    np.testing.assert_allclose(samples.var(0), np.exp(log_var.numpy()[0]), rtol=0.05)


def test_kl_annealing_and_free_bits_schedules():
    weights = [float(kl_weight(step, beta=0.5, anneal_steps=10)) for step in (0, 5, 10, 50)]
    assert weights == [0.0, 0.25, 0.5, 0.5]
    assert float(kl_weight(0, beta=0.7)) == pytest.approx(0.7)  # no annealing
    kl = np.array([[0.01, 2.0], [0.03, 4.0]], np.float32)  # batch means 0.02 and 3.0
    assert float(free_bits_kl(kl)) == pytest.approx(3.02)
    assert float(free_bits_kl(kl, free_bits=0.5)) == pytest.approx(3.5)
    # Below the threshold a dimension gets no gradient; above it the gradient is the batch mean's.
    kl = tf.Variable(kl)
    with tf.GradientTape() as tape:
        value = free_bits_kl(kl, free_bits=0.5)
    np.testing.assert_allclose(tape.gradient(value, kl).numpy(), [[0.0, 0.5], [0.0, 0.5]])


def test_active_units_counts_dimensions_whose_mean_varies():
    rng = np.random.default_rng(0)
    means = np.stack([rng.normal(0, 1, 500), rng.normal(0, 0.05, 500), np.full(500, 3.0)], 1)
    assert active_units(means) == 1
    assert active_units(means, threshold=1e-4) == 2


# -- the model --------------------------------------------------------------------------------------


def test_fit_on_raw_strings_reports_the_terms_and_learns(trained_vae):
    _, history = trained_vae
    logs = history.history
    assert {"loss", "recon_nll", "kl", "token_accuracy"} <= set(logs)
    assert logs["recon_nll"][-1] < logs["recon_nll"][0]
    # The KL weight starts at 0, so the first epoch's loss is mostly reconstruction.
    assert logs["loss"][0] < logs["recon_nll"][0] + logs["kl"][0]


def test_encode_decode_sample_interpolate_shapes(trained_vae, texts):
    model, _ = trained_vae
    codes = model.encode(texts[:5])
    assert codes.shape == (5, 4) and codes.dtype == np.float32
    decoded = model.decode(codes)
    assert len(decoded) == 5 and all(isinstance(t, str) for t in decoded)
    assert all(set(t.split()) <= set(WORDS) for t in decoded)  # no [CLS]/[PAD] in the text
    assert len(model.sample(3, sampler="top_p", p=0.9, seed=[1, 2])) == 3
    assert len(model.interpolate(texts[0], texts[1], steps=4)) == 4
    tokens = generation.generate(model, codes, "beam", max_new_tokens=MAX_LENGTH, width=2)
    assert tokens.shape == (5, MAX_LENGTH)
    with pytest.raises(ValueError, match="codes must be"):
        model.decode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="max_length"):
        generation.generate(model, codes, max_new_tokens=MAX_LENGTH + 1)


def test_cached_decoding_matches_the_teacher_forced_pass(trained_vae, texts):
    """Greedy decoding through the loop == argmax of the full decoder over its own output."""
    model, _ = trained_vae
    codes = model.encode(texts[:4])
    tokens = generation.generate(model, codes, max_new_tokens=6).numpy()
    start = np.full((4, 1), model._token_id("start"), np.int32)
    logits = model.decode_logits(np.concatenate([start, tokens[:, :-1]], 1), model.memory(codes))
    # Compare only up to each row's end (after it the loop writes padding).
    expected = keras.ops.convert_to_numpy(logits).copy()
    expected[..., list(model.banned_token_ids)] = -np.inf
    greedy = expected.argmax(-1)
    for row, pred in zip(tokens, greedy):
        n = list(row).index(3) + 1 if 3 in row else len(row)
        np.testing.assert_array_equal(row[:n], pred[:n])


def test_changing_the_code_changes_the_output_distribution(trained_vae):
    model, _ = trained_vae
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((2, 4)).astype(np.float32) * 3
    x = np.array([[2, 5, 6, 7, 8, 3, 0, 0]], np.int32).repeat(2, 0)
    probs = tf.nn.softmax(model.decode_logits(x, model.memory(codes))).numpy()
    # Total variation between the next-token distributions of two codes, per position.
    tv = 0.5 * np.abs(probs[0] - probs[1]).sum(-1)
    assert tv.mean() > 0.01, tv
    # The language-model baseline ignores its codes entirely.
    lm = TextAutoencoder(None, use_latent=False, vocab_size=len(VOCAB), start_token_id=2,
                         end_token_id=3, pad_token_id=0, **SIZES)
    probs = tf.nn.softmax(lm.decode_logits(x, lm.memory(codes))).numpy()
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-6)


def test_score_gives_the_elbo_bound(trained_vae, texts):
    model, _ = trained_vae
    result = model.score(texts, batch_size=16)
    assert result["tokens"] > len(texts)
    bound = np.exp((result["recon_nll"] + result["kl"]) * len(texts) / result["tokens"])
    assert result["elbo_ppl"] == pytest.approx(bound, rel=1e-5)
    assert result["kl"] > 0 and 0 <= result["active_units"] <= 4
    assert 0 <= result["token_accuracy"] <= 1


def test_plain_autoencoder_has_no_kl_and_deterministic_codes(preprocessor, texts):
    model = TextAutoencoder(tiny_encoder(), preprocessor, **SIZES)
    assert not model.variational and model.latent_log_var is None
    x = preprocessor(tf.constant(texts[:3]))
    first, second = model(x)["logits"], model(x)["logits"]
    np.testing.assert_allclose(first.numpy(), second.numpy())
    assert float(tf.reduce_sum(model.loss_terms(x, model(x))["kl"])) == 0.0


def test_keras_round_trip(trained_vae, texts, tmp_path):
    model, _ = trained_vae
    path = str(tmp_path / "vae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, TextVAE) and loaded.free_bits == 0.05
    codes = model.encode(texts[:3])
    np.testing.assert_allclose(loaded.encode(texts[:3]), codes, atol=1e-5)
    assert loaded.decode(codes) == model.decode(codes)
    assert len(loaded.encoder.trainable_weights) == 0  # still frozen


def test_bad_arguments_are_named(preprocessor):
    with pytest.raises(ValueError, match="needs an encoder"):
        TextVAE(None, preprocessor, **SIZES)
    with pytest.raises(ValueError, match="latent_dim"):
        TextVAE(tiny_encoder(), preprocessor, **{**SIZES, "latent_dim": 0})
    with pytest.raises(ValueError, match="free_bits"):
        TextVAE(tiny_encoder(), preprocessor, free_bits=-1.0, **SIZES)
    with pytest.raises(ValueError, match="steps"):
        TextVAE(tiny_encoder(), preprocessor, **SIZES).interpolate("a", "b", steps=1)


def test_builds_after_a_functional_bert_task(preprocessor, texts):
    # Keras turns a class built functionally into a Functional subclass; a subclassed model that inherited
    # from BertTask then failed with "Functional.__init__() missing ... inputs and outputs".
    from tfmodels.models.bert import BertClassifier

    BertClassifier(tiny_encoder(), num_classes=2)
    model = TextVAE(tiny_encoder(), preprocessor, **SIZES)
    assert model(preprocessor(tf.constant(texts[:2])))["logits"].shape[0] == 2
