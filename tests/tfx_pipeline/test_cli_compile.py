"""`python -m tfx_pipeline compile --engine kubeflow-v2`: a Kubeflow Pipelines v2 JSON with every component."""

import json

import pytest

from tfx_pipeline.__main__ import main

# TFX's Kubeflow V2 compiler needs the `tfx[kfp]` extra (kfp, kfp-pipeline-spec>=0.2.2, protobuf 4), which
# this venv (protobuf 3.20) does not have.
pytest.importorskip("kfp.pipeline_spec", reason="tfx[kfp] extra not installed")


def test_compile_kubeflow_v2_writes_a_pipeline_spec(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "reviews.csv").write_text("text,label\ngood,1\nbad,0\n")
    output = tmp_path / "pipeline.json"
    assert main(["compile", "--engine", "kubeflow-v2", "--output", str(output), "--root", str(tmp_path),
                 "--data-root", str(data)]) == 0
    spec = json.loads(output.read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    for node in ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
                 "Trainer", "Evaluator", "Pusher"]:
        assert node in tasks, sorted(tasks)
    assert list((tmp_path / "root" / "expected_schema").glob("*/schema.pbtxt"))
