"""Distillation: the student starts from the teacher's layers and learns to agree with it from unlabelled text."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels.compress import distill, make_student, student_layers
from tfmodels.compress.distillation import soft_target_loss

VOCAB, LENGTH = 60, 12


def _encoder(layers, hidden=32):
    return tfmodels.BertEncoder(tfmodels.BertConfig(
        vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=LENGTH, initializer_range=0.2))


def _inputs(rows, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, size=(rows, LENGTH)).astype("int32")
    lengths = rng.integers(4, LENGTH + 1, size=rows)
    mask = (np.arange(LENGTH)[None] < lengths[:, None]).astype("int32")
    return {"token_ids": ids * mask, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def _agreement(a, b, x):
    return float((a.predict(x, verbose=0).argmax(-1) == b.predict(x, verbose=0).argmax(-1)).mean())


def test_student_layers_are_evenly_spaced_and_keep_the_top_one():
    assert student_layers(6, 2) == [2, 5]
    assert student_layers(6, 3) == [1, 3, 5]
    assert student_layers(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="1 <= num_layers <= 6"):
        student_layers(6, 7)


def test_make_student_copies_the_chosen_blocks_and_the_head():
    teacher = tfmodels.BertClassifier(_encoder(4), num_classes=3)
    student = make_student(teacher, 2)
    assert type(student) is tfmodels.BertClassifier and student.encoder.config.num_hidden_layers == 2
    for block, source in zip(student.encoder.encoder_blocks, [1, 3]):
        for got, want in zip(block.get_weights(), teacher.encoder.encoder_blocks[source].get_weights()):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(student.get_layer("logits").get_weights(), teacher.get_layer("logits").get_weights()):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="BertTask"):
        make_student(teacher.encoder, 2)


def test_soft_target_loss_is_t_squared_kl():
    teacher = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], "float32")
    student = np.array([[0.0, 1.0, 0.0], [1.0, -2.0, 0.0]], "float32")
    t = 3.0

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(teacher / t), softmax(student / t)
    expected = t**2 * (p * (np.log(p) - np.log(q))).sum(-1)
    np.testing.assert_allclose(soft_target_loss(teacher, student, t), expected, rtol=1e-5)


def test_distilling_on_unlabelled_text_makes_the_student_agree_with_the_teacher():
    # The teacher learns a real rule (does token 7 occur?); the student is a fresh 1-layer model.
    train, held_out = _inputs(512, 0), _inputs(256, 1)
    for x in (train, held_out):
        x["token_ids"][::2, 3] = 7
    labels = (train["token_ids"] == 7).any(-1).astype("int32")
    teacher = tfmodels.BertClassifier(_encoder(2), num_classes=2, dropout=0.0)
    teacher.compile(optimizer=keras.optimizers.Adam(1e-3))
    teacher.fit(train, labels, epochs=6, batch_size=32, verbose=0)
    held_labels = (held_out["token_ids"] == 7).any(-1)
    assert (teacher.predict(held_out, verbose=0).argmax(-1) == held_labels).mean() > 0.9

    student = tfmodels.BertClassifier(_encoder(1), num_classes=2, dropout=0.0)
    before = _agreement(teacher, student, held_out)
    unlabelled = tf.data.Dataset.from_tensor_slices(_inputs(512, 2)).map(_mark_half).batch(32)
    distill(teacher, student, unlabelled, temperature=2.0, epochs=6, optimizer=keras.optimizers.Adam(1e-3))
    after = _agreement(teacher, student, held_out)
    assert after > 0.9 and after > before + 0.2, (before, after)
    assert teacher.trainable  # frozen only for the run


def _mark_half(x):
    # Unlabelled text from the same distribution: token 7 at position 3 in about half of the rows.
    ids = x["token_ids"]
    put = tf.random.stateless_uniform([], seed=[0, ids[0]]) < 0.5
    ids = tf.tensor_scatter_nd_update(ids, [[3]], [tf.where(put, 7, ids[3])])
    return {**x, "token_ids": ids}


def test_token_classifier_soft_loss_ignores_padding():
    teacher = tfmodels.BertTokenClassifier(_encoder(2), num_classes=4)
    student = make_student(teacher, 1)
    from tfmodels.compress.distillation import DistillationSettings, _Distillation

    trainer = _Distillation(teacher, student, DistillationSettings(temperature=2.0, alpha=0.0))
    x = _inputs(4, 3)
    y_pred = student(x)
    loss = float(trainer.compute_loss(x=x, y_pred=y_pred))
    # Changing the student's outputs at padded positions changes nothing.
    noisy = y_pred + 50.0 * (1 - x["padding_mask"][..., None]) * np.random.default_rng(0).normal(size=y_pred.shape)
    assert float(trainer.compute_loss(x=x, y_pred=noisy)) == pytest.approx(loss, rel=1e-6)
    assert loss > 0


def test_distilled_student_saves_and_reloads(tmp_path):
    teacher = tfmodels.BertTokenClassifier(_encoder(2), num_classes=4)
    student = make_student(teacher, 1)
    x = _inputs(32, 4)
    labels = np.random.default_rng(0).integers(0, 4, size=(32, LENGTH)).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, labels, x["padding_mask"].astype("float32"))).batch(8)
    history = distill(teacher, student, data, epochs=1)
    assert np.isfinite(history.history["loss"][0])
    path = str(tmp_path / "student.keras")
    student.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), student.predict(x, verbose=0),
                               atol=1e-6)
