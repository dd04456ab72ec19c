"""Distillation: students built from a subset of the teacher's layers, the soft / hard / hidden losses against
numpy, masking of token-level targets, and a student that learns to agree with its teacher from unlabelled text."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels.compress import distill, make_student, student_layers
from tfmodels.compress.distillation import (
    SoftTargetLoss,
    _Distillation,
    init_student_from_teacher,
    soft_target_loss,
    student_config,
)
from tfmodels.text import BertPreprocessor, BertTokenizer

VOCAB, LENGTH = 100, 16


def _config(layers=4, hidden=32, **kwargs):
    return tfmodels.BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                               num_attention_heads=2, intermediate_size=2 * hidden,
                               max_position_embeddings=LENGTH, **kwargs)


def _inputs(rows, seed):
    """Random token ids with random right padding (every row has >= 4 real tokens)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(6, VOCAB, size=(rows, LENGTH)).astype("int32")
    lengths = rng.integers(4, LENGTH + 1, size=rows)
    mask = (np.arange(LENGTH)[None] < lengths[:, None]).astype("int32")
    return {"token_ids": ids * mask, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _t2_kl(teacher, student, t):
    p, q = _softmax(teacher / t), _softmax(student / t)
    return t**2 * (p * (np.log(p) - np.log(q))).sum(-1)


def _assert_same_weights(a, b):
    got, want = a.get_weights(), b.get_weights()
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# -- the student ------------------------------------------------------------------


def test_student_layers_are_evenly_spaced_and_keep_the_top_one():
    assert student_layers(6, 3) == [1, 3, 5]
    assert student_layers(6, 2) == [2, 5]
    assert student_layers(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="1 <= num_layers <= 6"):
        student_layers(6, 7)


def test_student_config_keeps_the_vocabulary_and_scales_the_widths():
    base = tfmodels.BertConfig()  # BERT-base: 768 wide, 12 heads of 64, feed-forward 3072
    small = student_config(base, 4, hidden_size=256)
    assert (small.num_hidden_layers, small.num_attention_heads, small.intermediate_size) == (4, 4, 1024)
    assert student_config(base, 2, hidden_size=128).num_attention_heads == 2
    teacher = _config(layers=4, hidden=64, type_vocab_size=3, pruned_heads={1: [0], 2: [1]})
    for student in (student_config(teacher, 2), student_config(teacher, 2, hidden_size=32)):
        assert (student.vocab_size, student.max_position_embeddings, student.type_vocab_size) == (VOCAB, LENGTH, 3)
    # Same width: the copied blocks (default [1, 3]) bring their pruned heads; a narrower student has none.
    assert student_config(teacher, 2).pruned_heads == {0: [0]}
    assert student_config(teacher, 2, layer_indices=[2, 3]).pruned_heads == {0: [1]}
    assert student_config(teacher, 2, hidden_size=32).pruned_heads == {}
    with pytest.raises(ValueError, match="head size"):
        student_config(teacher, 2, hidden_size=100)


def test_init_student_from_teacher_copies_exactly_the_chosen_layers():
    teacher = tfmodels.BertEncoder(_config(layers=4))
    student = tfmodels.BertEncoder(student_config(teacher.config, 2))
    assert init_student_from_teacher(student, teacher, layer_indices=[0, 3]) == [0, 3]
    for block, source in zip(student.encoder_blocks, [0, 3]):
        _assert_same_weights(block, teacher.encoder_blocks[source])
    _assert_same_weights(student.embeddings, teacher.embeddings)
    _assert_same_weights(student.pooler, teacher.pooler)
    assert init_student_from_teacher(student, teacher) == [1, 3]
    _assert_same_weights(student.encoder_blocks[0], teacher.encoder_blocks[1])


def test_init_student_from_teacher_refuses_mismatched_shapes_and_copies_nothing():
    teacher = tfmodels.BertEncoder(_config(layers=4))
    narrow = tfmodels.BertEncoder(student_config(teacher.config, 2, hidden_size=16))
    with pytest.raises(ValueError, match=r"embeddings .*\(100, 16\) vs \(100, 32\)"):
        init_student_from_teacher(narrow, teacher)
    wide_ffn = tfmodels.BertEncoder(student_config(teacher.config, 2, intermediate_size=48))
    before = wide_ffn.embeddings.get_weights()
    with pytest.raises(ValueError, match=r"student block 0 <- teacher block 1 .*\(32, 48\) vs \(32, 64\)"):
        init_student_from_teacher(wide_ffn, teacher)
    for got, want in zip(wide_ffn.embeddings.get_weights(), before):  # checked before anything is copied
        np.testing.assert_array_equal(got, want)
    student = tfmodels.BertEncoder(student_config(teacher.config, 2))
    with pytest.raises(ValueError, match="3 teacher blocks for a student of 2"):
        init_student_from_teacher(student, teacher, layer_indices=[0, 1, 2])
    with pytest.raises(ValueError, match=r"\[4\] are not in \[0, 4\)"):
        init_student_from_teacher(student, teacher, layer_indices=[0, 4])


def test_make_student_builds_the_same_task_with_the_teachers_head_and_preprocessor():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
    preprocessor = BertPreprocessor(BertTokenizer(vocab), sequence_length=LENGTH)
    teacher = tfmodels.BertClassifier(tfmodels.BertEncoder(_config()), num_classes=3, dropout=0.2,
                                      preprocessor=preprocessor)
    student = make_student(teacher, 2)
    assert type(student) is tfmodels.BertClassifier and student.preprocessor is preprocessor
    assert (student.num_classes, student.dropout, student.encoder.config.num_hidden_layers) == (3, 0.2, 2)
    _assert_same_weights(student.encoder.encoder_blocks[1], teacher.encoder.encoder_blocks[3])
    _assert_same_weights(student.get_layer("logits"), teacher.get_layer("logits"))
    # The task's own unlabelled text: raw strings go through the shared preprocessor.
    before = student.get_layer("logits").get_weights()[0].copy()
    texts = [" ".join(f"w{(7 * i + j) % 90}" for j in range(i % 9 + 2)) for i in range(16)]
    distill(teacher, student, texts, batch_size=8, jit_compile=False)
    assert not np.allclose(student.get_layer("logits").get_weights()[0], before)

    token_teacher = tfmodels.BertTokenClassifier(tfmodels.BertEncoder(_config()), num_classes=5)
    narrow = make_student(token_teacher, 2, hidden_size=16)
    assert type(narrow) is tfmodels.BertTokenClassifier and narrow.num_classes == 5
    assert narrow.encoder.config.hidden_size == 16 and narrow.get_layer("logits").kernel.shape == (16, 5)
    with pytest.raises(ValueError, match="embeddings"):
        make_student(token_teacher, 2, hidden_size=16, init_from_teacher=True)
    with pytest.raises(TypeError, match="BertTask"):
        make_student(token_teacher.encoder, 2)


# -- the losses ---------------------------------------------------------------------


def test_soft_loss_is_t_squared_kl():
    teacher = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], "float32")
    student = np.array([[0.0, 1.0, 0.0], [1.0, -2.0, 0.0]], "float32")
    expected = _t2_kl(teacher, student, 3.0)
    np.testing.assert_allclose(soft_target_loss(teacher, student, 3.0), expected, rtol=1e-5)
    np.testing.assert_allclose(SoftTargetLoss(3.0)(teacher, student), expected.mean(), rtol=1e-5)


def test_classifier_loss_mixes_soft_and_hard_terms_as_numpy_does():
    student = tfmodels.BertClassifier(tfmodels.BertEncoder(_config(layers=1)), num_classes=3)
    trainer = _Distillation(student, student, 2.0, 0.3, 0.0, student.default_loss())
    rng = np.random.default_rng(0)
    teacher_logits, student_logits = (rng.normal(size=(4, 3)).astype("float32") * 2 for _ in range(2))
    y, weights = np.array([0, 2, 1, 1]), np.array([1.0, 0.0, 2.0, 1.0], "float32")
    kl = _t2_kl(teacher_logits, student_logits, 2.0)
    ce = -np.log(_softmax(student_logits)[np.arange(4), y])
    # Keras' sum_over_batch_size: weighted sum over the batch size, for both terms alike.
    expected = 0.3 * (kl * weights).sum() / 4 + 0.7 * (ce * weights).sum() / 4
    got = trainer.distillation_loss(None, y, weights, teacher_logits, student_logits)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    # Unlabelled: the soft term alone, whatever alpha.
    got = trainer.distillation_loss(None, None, None, teacher_logits, student_logits)
    np.testing.assert_allclose(float(got), kl.mean(), rtol=1e-5)


def test_token_classifier_loss_ignores_the_positions_its_own_loss_ignores():
    student = tfmodels.BertTokenClassifier(tfmodels.BertEncoder(_config(layers=1)), num_classes=4)
    trainer = _Distillation(student, student, 2.0, 0.5, 0.0, student.default_loss())
    x = _inputs(4, 3)
    rng = np.random.default_rng(1)
    teacher_logits, student_logits = (rng.normal(size=(4, LENGTH, 4)).astype("float32") for _ in range(2))
    y = rng.integers(0, 4, size=(4, LENGTH))
    # Weights as TokenClassifierPreprocessor.align makes them: 0 on [CLS], continuations and padding.
    weights = x["padding_mask"].astype("float32")
    weights[:, 0] = weights[:, 2] = 0.0
    noise = 30.0 * rng.normal(size=teacher_logits.shape).astype("float32")

    def loss(teacher, y=y, weights=weights):
        return float(trainer.distillation_loss(x, y, weights, teacher, student_logits))

    labelled = loss(teacher_logits)
    assert loss(teacher_logits + noise * (weights == 0)[..., None]) == pytest.approx(labelled, rel=1e-6)
    assert abs(loss(teacher_logits + noise * (weights == 1)[..., None]) - labelled) > 0.1
    expected = 0.5 * (_t2_kl(teacher_logits, student_logits, 2.0) * weights).sum() / weights.size
    expected += 0.5 * float(student.default_loss()(y, student_logits, sample_weight=weights))
    assert labelled == pytest.approx(expected, rel=1e-5)
    # Without labels every real token counts, padding does not.
    padding = (x["padding_mask"] == 0)[..., None]
    unlabelled = loss(teacher_logits, None, None)
    assert loss(teacher_logits + noise * padding, None, None) == pytest.approx(unlabelled, rel=1e-6)
    kl = _t2_kl(teacher_logits, student_logits, 2.0)
    assert unlabelled == pytest.approx((kl * x["padding_mask"]).sum() / kl.size, rel=1e-5)


def test_hidden_state_loss_is_the_masked_mse_of_the_sequence_outputs():
    teacher = tfmodels.BertTokenClassifier(tfmodels.BertEncoder(_config(layers=2)), num_classes=4, dropout=0.0)
    student = make_student(teacher, 1, init_from_teacher=False)
    trainer = _Distillation(teacher, student, 2.0, 0.5, 0.25, student.default_loss())
    assert trainer.projection is None  # equal widths: compared as they are
    x = _inputs(4, 5)
    y_pred = trainer(x)
    np.testing.assert_allclose(y_pred["logits"], student(x), atol=1e-5)  # the one-pass logits are the model's
    total = float(trainer.compute_loss(x=x, y_pred=y_pred, training=False))
    soft = float(trainer.distillation_loss(x, None, None, teacher(x), y_pred["logits"]))
    per_token = ((teacher.encoder(x)["sequence_output"] - student.encoder(x)["sequence_output"]) ** 2).numpy().mean(-1)
    hidden = (per_token * x["padding_mask"]).sum() / x["padding_mask"].sum()
    assert total == pytest.approx(soft + 0.25 * hidden, rel=1e-5)
    narrow = make_student(teacher, 1, hidden_size=16)
    assert _Distillation(teacher, narrow, 2.0, 0.5, 0.25, narrow.default_loss()).projection is not None


# -- training -------------------------------------------------------------------------


def _kl_and_agreement(teacher, student, x):
    t, s = teacher.predict(x, verbose=0), student.predict(x, verbose=0)
    return float(_t2_kl(t, s, 1.0).mean()), float((t.argmax(-1) == s.argmax(-1)).mean())


def test_distilling_on_unlabelled_inputs_makes_the_student_agree_with_the_teacher():
    # The teacher learns a real rule: does token 5 occur? (in about half of the rows)
    train, held_out, unlabelled = _inputs(512, 0), _inputs(256, 1), _inputs(512, 2)
    for x in (train, held_out, unlabelled):
        x["token_ids"][::2, 2] = 5
    teacher = tfmodels.BertClassifier(tfmodels.BertEncoder(_config(layers=2, initializer_range=0.2)),
                                      num_classes=2, dropout=0.0)
    teacher.compile(optimizer=keras.optimizers.Adam(1e-3))
    teacher.fit(train, (train["token_ids"] == 5).any(-1).astype("int32"), epochs=6, batch_size=32, verbose=0)
    held_labels = (held_out["token_ids"] == 5).any(-1)
    assert (teacher.predict(held_out, verbose=0).argmax(-1) == held_labels).mean() > 0.9

    # A narrower, randomly initialised student (hidden states matched through a projection).
    student = make_student(teacher, 1, hidden_size=16)
    kl_before, agreement_before = _kl_and_agreement(teacher, student, held_out)
    data = tf.data.Dataset.from_tensor_slices(unlabelled).shuffle(512, seed=0).batch(32)
    weights, teacher_weights = len(student.weights), teacher.get_weights()
    assert distill(teacher, student, data, temperature=2.0, hidden_weight=0.1, epochs=6, jit_compile=False,
                   optimizer=keras.optimizers.Adam(2e-3)) is student
    kl_after, agreement_after = _kl_and_agreement(teacher, student, held_out)
    assert agreement_after > 0.9 and agreement_after > agreement_before + 0.25, (agreement_before, agreement_after)
    assert kl_after < 0.1 * kl_before, (kl_before, kl_after)
    assert len(student.weights) == weights  # the projection stayed with the training wrapper
    assert teacher.trainable  # frozen for the run only, and unchanged by it
    for got, want in zip(teacher.get_weights(), teacher_weights):
        np.testing.assert_array_equal(got, want)


def test_token_classifier_distillation_trains_a_student_that_saves_and_reloads(tmp_path):
    teacher = tfmodels.BertTokenClassifier(tfmodels.BertEncoder(_config(layers=2)), num_classes=4)
    student = make_student(teacher, 1)
    x = _inputs(32, 4)
    labels = np.random.default_rng(0).integers(0, 4, size=(32, LENGTH)).astype("int32")
    before = student.get_layer("logits").get_weights()[0].copy()
    distill(teacher, student, (x, labels, x["padding_mask"].astype("float32")), batch_size=8, epochs=1,
            jit_compile=False)
    assert not np.allclose(student.get_layer("logits").get_weights()[0], before)
    path = str(tmp_path / "student.keras")
    student.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded) is tfmodels.BertTokenClassifier and reloaded.encoder.config.num_hidden_layers == 1
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), student.predict(x, verbose=0), atol=1e-6)
    reloaded.compile()
    assert np.isfinite(reloaded.evaluate(x, labels, sample_weight=x["padding_mask"], verbose=0)[0])
