"""tfx_pipeline.hparams.ModelHParams: the custom_config of Transform and Trainer, typed and checked."""

import json

import pytest

from tfx_pipeline.hparams import ModelHParams

GOOD = dict(text_features=("review",), label_feature="y", vocab_file="/v.txt", max_seq_length=32, encoder="tiny",
            num_classes=2, batch_size=8, learning_rate=1e-3)


def test_json_round_trip_gives_the_same_record():
    hparams = ModelHParams(**GOOD, class_names=("neg", "pos"), precision="mixed_bfloat16", model_name="m")
    config = json.loads(json.dumps(hparams.to_custom_config()))  # what TFX stores and hands back
    assert config["text_features"] == ["review"] and config["class_names"] == ["neg", "pos"]
    assert ModelHParams.from_custom_config(config) == hparams
    with pytest.raises(AttributeError):
        hparams.batch_size = 4  # frozen


@pytest.mark.parametrize("change, message", [
    (dict(batch_size="8"), "batch_size must be an int, got '8'"),
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(learning_rate=0.0), "learning_rate must be > 0"),
    (dict(max_seq_length=True), "max_seq_length must be an int"),
    (dict(text_features=("a", "b", "c")), "text_features must be one or two"),
    (dict(class_names=("only",)), "2 classes but 1 class_names"),
    (dict(precision="fp16"), "precision must be one of"),
])
def test_bad_values_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        ModelHParams(**{**GOOD, **change})


def test_unknown_and_missing_keys_are_errors():
    config = ModelHParams(**GOOD).to_custom_config()
    with pytest.raises(ValueError, match=r"unknown custom_config keys \['batchsize'\]"):
        ModelHParams.from_custom_config({**config, "batchsize": 8})
    del config["vocab_file"]
    with pytest.raises(ValueError, match="vocab_file"):
        ModelHParams.from_custom_config(config)
