"""Seq2SeqTransformer variants, the label-smoothed loss, the warmup schedule, and training.

Shapes, causal/padding masks, config and ``.keras`` round trips are in test_seq2seq.py.
"""

import keras
import numpy as np
import pytest
from testlib import run_model_test

from tfmodels.models.transformer import (
    InverseSqrtWarmup,
    LabelSmoothedCrossEntropy,
    Seq2SeqConfig,
    Seq2SeqTransformer,
)


def _logits(model, source, target):
    return keras.ops.convert_to_numpy(model({"source_ids": source, "target_ids": target}))


def test_shared_and_tied_embeddings(make_model, random_ids):
    shared = make_model(share_embeddings=True)
    separate = make_model()
    untied = make_model(tie_output_embeddings=False)
    assert shared.source_embedding is shared.target_embedding
    vocab, hidden = separate.target_vocab_size, separate.hidden_size
    n_shared, n_separate, n_untied = (m.count_params() for m in (shared, separate, untied))
    assert n_separate - n_shared == vocab * hidden  # one token table fewer
    assert n_untied - n_separate == vocab * hidden  # plus an output kernel (both have a bias)
    # Tied: a token's logit is the decoder state times its embedding row, so zeroing the row
    # leaves exactly the output bias (zero at initialization) as that token's logit.
    source, target = random_ids(1, 4), random_ids(1, 3, seed=1)
    before = _logits(separate, source, target)
    table = separate.target_embedding.token_embedding.embeddings
    values = keras.ops.convert_to_numpy(table)
    values[5] = 0.0
    table.assign(values)
    after = _logits(separate, source, target)
    assert np.abs(before[..., 5]).min() > 1e-4
    np.testing.assert_allclose(after[..., 5], 0.0, atol=1e-6)


def test_learned_positions_limit_the_cache_length(make_model):
    model = make_model(position_encoding="learned", max_target_length=6)
    with pytest.raises(ValueError, match="max_target_length"):
        model.generate(np.ones((1, 3), "int32"), max_length=7)
    assert model.generate(np.ones((1, 3), "int32"), max_length=6).shape == (1, 6)


def test_label_smoothed_loss_matches_definition():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    labels = np.array([[1, 4, 0], [2, 0, 0]])
    eps = 0.1
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    q = np.full((2, 3, 5), eps / 5) + (1 - eps) * np.eye(5)[labels]
    mask = labels != 0
    expected = -(q * log_p).sum(-1)[mask].mean()  # padded targets contribute nothing
    loss = LabelSmoothedCrossEntropy(label_smoothing=eps, pad_id=0)
    np.testing.assert_allclose(float(loss(labels, logits)), expected, rtol=1e-5)
    plain = LabelSmoothedCrossEntropy(label_smoothing=0.0)
    cross_entropy = -np.take_along_axis(log_p, labels[..., None], -1)[..., 0][mask].mean()
    np.testing.assert_allclose(float(plain(labels, logits)), cross_entropy, rtol=1e-5)
    clone = LabelSmoothedCrossEntropy.from_config(loss.get_config())
    assert (clone.label_smoothing, clone.pad_id) == (eps, 0)
    with pytest.raises(ValueError, match="label_smoothing"):
        LabelSmoothedCrossEntropy(label_smoothing=1.0)


def test_inverse_sqrt_warmup():
    schedule = InverseSqrtWarmup(hidden_size=64, warmup_steps=100)
    rates = np.array([float(schedule(s)) for s in range(0, 1000, 10)])
    assert int(np.argmax(rates)) * 10 in (90, 100)
    np.testing.assert_allclose(rates.max(), 64**-0.5 * 100**-0.5, rtol=0.02)
    assert np.all(np.diff(rates[:9]) > 0) and np.all(np.diff(rates[11:]) < 0)
    np.testing.assert_allclose(float(schedule(399)), 64**-0.5 * 400**-0.5, rtol=1e-5)
    assert InverseSqrtWarmup.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_xla_fit_learns_the_copy_task(copy_model):
    history = copy_model.history_
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["masked_accuracy"][-1] > 0.95
    assert isinstance(copy_model, Seq2SeqTransformer)


def test_config_object_validates_and_round_trips(tmp_path):
    config = Seq2SeqConfig(source_vocab_size=30, target_vocab_size=20, hidden_size=16, num_heads=2,
                           intermediate_size=32, num_encoder_layers=1, num_decoder_layers=1)
    path = tmp_path / "config.json"
    config.to_json_file(path)
    assert Seq2SeqConfig.from_json_file(path) == config
    # Seq2SeqTransformer(config), config=, a dict and the keyword form build the same model.
    models = [
        Seq2SeqTransformer(config),
        Seq2SeqTransformer(config=config),
        Seq2SeqTransformer(config.to_dict()),
        Seq2SeqTransformer(**config.to_dict()),
    ]
    assert all(m.config == config for m in models)
    unnamed = [{k: v for k, v in m.get_config().items() if k != "name"} for m in models]
    assert all(c == unnamed[0] for c in unnamed)
    assert models[0].target_vocab_size == 20 and models[0].hidden_size == 16
    clone = Seq2SeqTransformer.from_config(models[0].get_config())
    assert clone.config == config


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"hidden_size": 30, "num_heads": 4}, r"hidden_size \(30\) must be divisible by num_heads \(4\)"),
        ({"num_encoder_layers": 0}, "num_encoder_layers must be a positive integer, got 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"position_encoding": "rotary"}, "position_encoding must be 'sinusoidal' or 'learned', got 'rotary'"),
        ({"target_vocab_size": 9, "share_embeddings": True}, "equal vocabularies, got 30 and 9"),
        ({"start_id": 30}, r"start_id=30 is outside the target vocabulary \[0, 30\)"),
        ({"end_id": -1}, "end_id must be an integer >= 0, got -1"),
        ({"start_id": 0}, "must differ"),
    ],
)
def test_config_rejects_bad_values_naming_them(fields, message):
    with pytest.raises(ValueError, match=message):
        Seq2SeqConfig(**{"source_vocab_size": 30, **fields})
    with pytest.raises(ValueError, match=message):
        Seq2SeqTransformer(30, **fields)
    with pytest.raises(ValueError, match="unknown Seq2SeqConfig fields"):
        Seq2SeqConfig.from_dict({"source_vocab_size": 30, "hidden": 8})


def test_model_harness(random_ids):
    config = Seq2SeqConfig(source_vocab_size=24, hidden_size=16, num_heads=2, intermediate_size=32,
                           num_encoder_layers=1, num_decoder_layers=1, dropout=0.0)
    run_model_test(
        Seq2SeqTransformer,
        init_kwargs={"config": config},
        input_data={"source_ids": random_ids(2, 6), "target_ids": random_ids(2, 5, seed=1)},
        expected_output_shape=(2, 5, 24),
        # 2 token tables, 16 per encoder block, 26 per decoder block, the output bias.
        expected_num_trainable_weights=2 + 16 + 26 + 1,
    )
