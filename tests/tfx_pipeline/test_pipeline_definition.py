"""The pipeline's shape (components, wiring, gating, thresholds) and its CLI flags."""

import json

import pytest
import tensorflow_model_analysis as tfma

import tfx_pipeline  # noqa: F401  (environment before TFX)
from tfx_pipeline.cli import add_pipeline_args, config_from_args
from tfx_pipeline.pipeline import PipelineConfig, create_pipeline
from tfx_pipeline.tasks.classify import ClassifyOptions, eval_config

COMPONENTS = ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer",
              "latest_blessed_model_resolver", "Evaluator", "Pusher"]


@pytest.fixture
def config(tmp_path, csv_folder):
    data = csv_folder([("a fine film", 1), ("a poor film", 0)], columns=("review", "sentiment"))
    return PipelineConfig(data_root=data, pipeline_root=str(tmp_path / "root"),
                          metadata_path=str(tmp_path / "m.sqlite"), serving_model_dir=str(tmp_path / "serving"),
                          options=ClassifyOptions(text_features=("review",), label_feature="sentiment",
                                                  min_accuracy=0.7),
                          beam_pipeline_args=["--direct_num_workers=2"])


def test_components_wiring_and_gate(config):
    pipeline = create_pipeline(config)
    nodes = {node.id: node for node in pipeline.components}
    assert sorted(nodes) == sorted(COMPONENTS)
    assert pipeline.beam_pipeline_args == ["--direct_num_workers=2"]
    evaluator, pusher = nodes["Evaluator"], nodes["Pusher"]
    assert evaluator.inputs["baseline_model"].producer_component_id == "latest_blessed_model_resolver"
    assert pusher.inputs["model_blessing"].producer_component_id == "Evaluator"
    destination = json.loads(pusher.exec_properties["push_destination"])
    assert destination["filesystem"]["base_directory"] == config.model_base_path()
    assert config.model_base_path().endswith("serving/text_classifier")
    # Transform and everything after it only run when ExampleValidator blessed the data.
    contexts = lambda name: [type(c).__name__ for c in pipeline.dsl_context_registry.get_contexts(nodes[name])]  # noqa: E731
    for name in ("Transform", "Trainer", "Evaluator", "Pusher"):
        assert contexts(name) == ["CondContext"], name
    for name in ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "latest_blessed_model_resolver"):
        assert contexts(name) == [], name


def test_transform_and_trainer_get_the_hyper_parameters(config):
    nodes = {node.id: node for node in create_pipeline(config).components}
    for name in ("Transform", "Trainer"):
        custom = json.loads(nodes[name].exec_properties["custom_config"])
        assert custom["task"] == "classify"
        options = custom["options"]
        assert options["text_features"] == ["review"] and options["label_feature"] == "sentiment"
        assert options["vocab_file"].endswith("vocab.txt")
        assert options["min_accuracy"] == ClassifyOptions().min_accuracy  # the gate is the Evaluator's only


def test_eval_config_thresholds(config):
    assert config.gate() == ("sparse_categorical_accuracy", 0.7)
    config = eval_config(ClassifyOptions(min_accuracy=0.75))
    accuracy = [m for spec in config.metrics_specs for m in spec.metrics
                if m.class_name == "SparseCategoricalAccuracy"][0]
    assert accuracy.threshold.value_threshold.lower_bound.value == 0.75
    assert accuracy.threshold.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    names = {m.class_name for spec in config.metrics_specs for m in spec.metrics}
    assert names == {"ExampleCount", "SparseCategoricalAccuracy", "AUC"}
    auc_spec = [s for s in config.metrics_specs if s.metrics[0].class_name == "AUC"][0]
    assert list(auc_spec.binarize.class_ids.values) == [1]


def test_cli_flags_map_onto_the_config(tmp_path, csv_folder):
    import argparse

    parser = argparse.ArgumentParser()
    add_pipeline_args(parser)
    data = csv_folder([("x", 0)])
    args = parser.parse_args([
        "--data-root", data, "--root", str(tmp_path), "--text-feature", "q", "--text-feature", "a",
        "--label-feature", "y", "--model-name", "m", "--encoder", "minilm", "--train-steps", "7",
        "--eval-steps", "2", "--max-seq-length", "48", "--batch-size", "4", "--min-accuracy", "0.8",
        "--beam-arg=--direct_running_mode=multi_processing", "--beam-arg=--direct_num_workers=2", "--no-xla"])
    config = config_from_args(args)
    assert config.jit_compile is False and config.hparams().jit_compile is False
    assert config.options.text_features == ("q", "a") and config.options.label_feature == "y"
    assert (config.train_steps, config.eval_steps, config.max_seq_length, config.batch_size) == (7, 2, 48, 4)
    assert config.options.encoder == "minilm" and config.learning_rate == 5e-5 and config.options.min_accuracy == 0.8
    assert config.beam_pipeline_args == ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert config.serving_model_dir == str(tmp_path / "serving")


@pytest.mark.parametrize("task, encoder, learning_rate", [
    ("classify", "minilm", 5e-5), ("token_classification", "minilm", 5e-5), ("span_qa", "minilm", 5e-5),
    ("text_generation", "smollm2", 1e-3), ("translate", "tiny", 2e-3)])
def test_a_run_starts_from_the_pretrained_model_by_default(tmp_path, csv_folder, task, encoder, learning_rate):
    """Without --encoder the pipeline fine-tunes the pretrained model at its learning rate (the random tiny one is
    for tests), from the CLI and from Python alike."""
    import argparse
    import dataclasses

    field = "size" if task == "translate" else "encoder"  # translate's --encoder names a size

    def model(config):
        return config.learning_rate, getattr(config.options, field)

    parser = argparse.ArgumentParser()
    add_pipeline_args(parser)
    data = csv_folder([("a b", "O B-person")], ("tokens", "tags")) if task == "token_classification" else \
        csv_folder([("x", 0)])  # the tagger's tag set is read from the data
    flags = ["--task", task, "--data-root", data, "--root", str(tmp_path)]
    config = config_from_args(parser.parse_args(flags))
    assert model(config) == (learning_rate, encoder)
    # From Python: the options' default model, and no learning rate given (the tagger's options need its tags).
    default = next(f.default for f in dataclasses.fields(config.options) if f.name == field)
    in_python = PipelineConfig(data_root="d", pipeline_root="r", metadata_path="m", serving_model_dir="s", task=task,
                               options=config.options)
    assert (in_python.learning_rate, default) == (learning_rate, encoder)
    assert model(config_from_args(parser.parse_args([*flags, "--encoder", "tiny"])))[1] == "tiny"


def test_the_pipeline_imports_tfx_without_its_cloud_extensions_until_asked():
    """`tfx_pipeline` keeps `from tfx import v1` from importing Google Cloud AI Platform (seconds of every
    pipeline process's start); a Vertex AI run still finds TFX's Vertex Trainer, imported then."""
    import subprocess
    import sys

    script = ("import sys, tfx_pipeline.pipeline as p; before = 'google.cloud.aiplatform' in sys.modules; "
              "trainer = p.tfx.extensions.google_cloud_ai_platform.Trainer; "
              "print(before, 'google.cloud.aiplatform' in sys.modules, trainer.__module__)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["False", "True", "tfx.extensions.google_cloud_ai_platform.trainer.component"]
