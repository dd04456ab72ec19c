"""Issue 33, point 9: a run that is not blessed with accuracy near the majority-class baseline says what to try."""

import types

from tfx_pipeline import cli
from tfx_pipeline.tasks.classify import ClassifyOptions, majority_share


def _config(tmp_path, labels, encoder="minilm"):
    data = tmp_path / "data"
    data.mkdir()
    rows = "".join(f'"review {i}, with a comma",{label}\n' for i, label in enumerate(labels))
    (data / "reviews.csv").write_text("text,label\n" + rows, encoding="utf-8")
    return types.SimpleNamespace(task="classify", options=ClassifyOptions(encoder=encoder), data_root=str(data),
                                 input_format="csv", train_steps=40, learning_rate=5e-5)


def test_accuracy_near_the_majority_share_names_steps_and_learning_rate(tmp_path):
    config = _config(tmp_path, [1] * 6 + [0] * 4)
    assert majority_share(config) == 0.6
    hint = cli.not_blessed_hint(config, "sparse_categorical_accuracy", 0.615)
    assert "0.6150 is near 0.6000" in hint
    assert "--train-steps, now 40" in hint and "--learning-rate, now 5e-05; e.g. 0.0001 to 0.0002" in hint
    assert "--encoder minilm" not in hint  # already pretrained


def test_the_tiny_encoder_is_told_about_the_pretrained_one(tmp_path):
    hint = cli.not_blessed_hint(_config(tmp_path, [0, 1], encoder="tiny"), "sparse_categorical_accuracy", 0.5)
    assert "--encoder minilm" in hint


def test_no_hint_when_the_model_learned_or_the_metric_is_not_accuracy(tmp_path):
    config = _config(tmp_path, [1] * 6 + [0] * 4)
    assert cli.not_blessed_hint(config, "sparse_categorical_accuracy", 0.7) == ""
    assert cli.not_blessed_hint(config, "entity_f1", 0.1) == ""
    config.input_format = "tfrecord"
    assert cli.not_blessed_hint(config, "sparse_categorical_accuracy", 0.6) == ""


def test_tasks_without_a_hint_say_nothing(tmp_path):
    config = _config(tmp_path, [1] * 6 + [0] * 4)
    config.task = "token_classification"
    assert cli.not_blessed_hint(config, "sparse_categorical_accuracy", 0.6) == ""
