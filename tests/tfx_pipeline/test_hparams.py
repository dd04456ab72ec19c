"""tfx_pipeline.hparams.ModelHParams: the custom_config of Transform and Trainer, typed and checked; the task's
options inside it."""

import json

import pytest

from tfx_pipeline.hparams import ModelHParams
from tfx_pipeline.tasks.classify import ClassifyOptions
from tfx_pipeline.tasks.translate import TranslateOptions

OPTIONS = ClassifyOptions(text_features=("review",), label_feature="y", vocab_file="/v.txt")
GOOD = dict(task="classify", options=OPTIONS, max_seq_length=32, batch_size=8, learning_rate=1e-3)


def test_json_round_trip_gives_the_same_record():
    options = ClassifyOptions(text_features=("review",), label_feature="y", vocab_file="/v.txt",
                              class_names=("neg", "pos"), quantize="int8")
    hparams = ModelHParams(**{**GOOD, "options": options}, precision="mixed_bfloat16", model_name="m",
                           jit_compile=False)
    config = json.loads(json.dumps(hparams.to_custom_config()))  # what TFX stores and hands back
    assert config["task"] == "classify" and config["batch_size"] == 8 and config["jit_compile"] is False
    assert config["options"]["text_features"] == ["review"] and config["options"]["class_names"] == ["neg", "pos"]
    assert ModelHParams.from_custom_config(config) == hparams
    with pytest.raises(AttributeError):
        hparams.batch_size = 4  # frozen
    with pytest.raises(AttributeError):
        options.encoder = "minilm"


def test_the_blessing_threshold_stays_out_of_transform_and_trainer():
    options = ClassifyOptions(min_accuracy=0.9)
    assert options.without_gate() == ClassifyOptions()
    assert TranslateOptions(min_bleu=30.0).without_gate().min_bleu == TranslateOptions().min_bleu


@pytest.mark.parametrize("change, message", [
    (dict(batch_size="8"), "batch_size must be an int, got '8'"),
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(learning_rate=0.0), "learning_rate must be > 0"),
    (dict(max_seq_length=True), "max_seq_length must be an int"),
    (dict(precision="fp16"), "precision must be one of"),
    (dict(jit_compile="no"), "jit_compile must be true or false, got 'no'"),
    (dict(task="ner"), "task must be one of"),
    (dict(task="translate"), "options must be TranslateOptions"),
])
def test_bad_values_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        ModelHParams(**{**GOOD, **change})


@pytest.mark.parametrize("options, message", [
    (dict(text_features=("a", "b", "c")), "text_features must be one or two"),
    (dict(class_names=("only",)), "2 classes but 1 class_names"),
    (dict(num_classes="2"), "num_classes must be an int"),
    (dict(quantize="int4"), "quantize must be one of"),
    (dict(distill_steps=5), "distill_steps=5 needs distill_layers"),
])
def test_bad_options_name_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        ClassifyOptions(**options)


def test_unknown_and_missing_keys_are_errors():
    config = ModelHParams(**GOOD).to_custom_config()
    with pytest.raises(ValueError, match=r"unknown custom_config keys \['batchsize'\]"):
        ModelHParams.from_custom_config({**config, "batchsize": 8})
    with pytest.raises(ValueError, match=r"unknown ClassifyOptions keys \['labels'\]"):
        ModelHParams.from_custom_config({**config, "options": {**config["options"], "labels": "y"}})
    del config["batch_size"]
    with pytest.raises(ValueError, match="batch_size"):
        ModelHParams.from_custom_config(config)
