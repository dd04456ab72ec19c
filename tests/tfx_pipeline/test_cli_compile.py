"""`python -m tfx_pipeline compile --engine kubeflow-v2`: a Kubeflow Pipelines v2 JSON with every component."""

import json

from tfx_pipeline.__main__ import main


def test_compile_kubeflow_v2_writes_a_pipeline_spec(tmp_path):
    output = tmp_path / "pipeline.json"
    assert main(["compile", "--engine", "kubeflow-v2", "--output", str(output)]) == 0
    spec = json.loads(output.read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    for node in ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExpectedSchema", "ExampleValidator", "Transform",
                 "Trainer", "Evaluator", "Pusher"]:
        assert node in tasks, sorted(tasks)
    assert list((tmp_path / "expected_schema").glob("*/schema.pbtxt"))
