"""`python -m tfx_pipeline compile --engine kubeflow-v2`: a Kubeflow Pipelines v2 JSON with every component."""

import json

import pytest

from tfx_pipeline.__main__ import main
from tfx_pipeline.runners import kubeflow_pipeline_name


def test_compile_kubeflow_v2_writes_a_pipeline_spec(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "reviews.csv").write_text("text,label\ngood,1\nbad,0\n")
    output = tmp_path / "pipeline.json"
    assert main(["compile", "--engine", "kubeflow-v2", "--output", str(output), "--root", str(tmp_path),
                 "--data-root", str(data)]) == 0
    spec = json.loads(output.read_text())
    assert spec["pipelineSpec"]["pipelineInfo"]["name"] == "tfmodels-text-classifier"
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    for node in ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
                 "Trainer", "Evaluator", "Pusher"]:
        assert node in tasks, sorted(tasks)
    assert list((tmp_path / "root" / "expected_schema").glob("*/schema.pbtxt"))


def test_compile_kubeflow_v2_for_token_classification(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "tweets.csv").write_text("tokens,tags\nAnna lives in Paris,B-person O O B-geo-loc\n")
    output = tmp_path / "pipeline.json"
    assert main(["compile", "--engine", "kubeflow-v2", "--output", str(output), "--root", str(tmp_path),
                 "--data-root", str(data), "--task", "token_classification", "--pipeline-name", "ner"]) == 0
    spec = json.loads(output.read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {"ExampleValidator", "Transform", "Trainer", "Evaluator", "Pusher"} <= set(tasks)
    # The row check and the tag set read from the data travel in the compiled spec.
    text = json.dumps(spec)
    assert "row_check" in text and "B-geo-loc" in text


def test_kubeflow_pipeline_name():
    assert kubeflow_pipeline_name("tfmodels_text_classifier") == "tfmodels-text-classifier"
    assert kubeflow_pipeline_name("My Pipeline.v2") == "my-pipeline-v2"
    with pytest.raises(ValueError, match="no character Kubeflow accepts"):
        kubeflow_pipeline_name("__")
