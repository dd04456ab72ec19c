"""`python -m tfx_pipeline compile --engine kubeflow-v2`: a Kubeflow Pipelines v2 JSON with every component."""

import json

import pytest

from tfx_pipeline.__main__ import main
from tfx_pipeline.runners import kubeflow_pipeline_name


def _compile(tmp_path, csv_name, csv_text, *flags):
    """Compile the pipeline for one CSV; returns the Kubeflow V2 spec as a dict."""
    data = tmp_path / "data"
    data.mkdir(parents=True)
    (data / csv_name).write_text(csv_text)
    output = tmp_path / "pipeline.json"
    assert main(["compile", "--engine", "kubeflow-v2", "--output", str(output), "--root", str(tmp_path),
                 "--data-root", str(data), *flags]) == 0
    return json.loads(output.read_text())


def test_compile_kubeflow_v2_writes_a_pipeline_spec(tmp_path):
    spec = _compile(tmp_path, "reviews.csv", "text,label\ngood,1\nbad,0\n")
    assert spec["pipelineSpec"]["pipelineInfo"]["name"] == "tfmodels-text-classifier"
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    for node in ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
                 "Trainer", "Evaluator", "Pusher"]:
        assert node in tasks, sorted(tasks)
    assert list((tmp_path / "root" / "expected_schema").glob("*/schema.pbtxt"))


def test_compile_kubeflow_v2_for_token_classification(tmp_path):
    spec = _compile(tmp_path, "tweets.csv", "tokens,tags\nAnna lives in Paris,B-person O O B-geo-loc\n",
                    "--task", "token_classification", "--pipeline-name", "ner")
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


def test_compile_kubeflow_v2_for_span_qa_and_translate(tmp_path):
    qa = _compile(tmp_path / "qa", "squad.csv",
                  'question,context,answers,answer_start\nWho?,Anna lives in Paris.,"[""Anna""]",[0]\n',
                  "--task", "span_qa", "--pipeline-name", "qa")
    text = json.dumps(qa)
    assert {"ExampleValidator", "Transform", "Trainer", "Evaluator", "Pusher"} <= set(
        qa["pipelineSpec"]["root"]["dag"]["tasks"])
    assert "SquadScores" in text and "answer_start" in text
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "in", "the", "beginning", "en", "el",
                                "principio"]) + "\n")
    translate = _compile(tmp_path / "translate", "pairs.csv", "source,target\nIn the beginning,En el principio\n",
                         "--task", "translate", "--pipeline-name", "translate", "--source-vocab", str(vocab),
                         "--target-vocab", str(vocab))
    text = json.dumps(translate)
    assert "CorpusBleu" in text and "translate_examples" in text and str(vocab) in text


def test_compile_kubeflow_v2_for_token_classification_on_character_spans(tmp_path):
    spec = _compile(tmp_path, "texts.csv", 'text,spans\nAnna lives in Paris,"[[0, 4, ""person""], [14, 19, ""city""]]"\n',
                    "--task", "token_classification", "--pipeline-name", "ner_spans", "--spans-feature", "spans")
    text = json.dumps(spec)
    # The tag set read from the spans' types, the spans row check and the gold_tags preprocessing signature.
    assert "B-city" in text and "I-person" in text and "token_spans_check" in text and "gold_tags" in text


def test_compile_kubeflow_v2_trains_on_vertex_ai_worker_pools(tmp_path):
    """--vertex-*: the Trainer becomes TFX's Vertex AI Trainer with a chief pool of 1 and a worker pool of the
    rest, each running the image; several workers train with the multi_worker strategy (TF_CONFIG from Vertex)."""
    spec = _compile(tmp_path, "reviews.csv", "text,label\ngood,1\nbad,0\n", "--vertex-project", "my-project",
                    "--vertex-region", "europe-west4", "--vertex-workers", "3", "--vertex-machine-type",
                    "n1-highmem-16", "--image", "gcr.io/my-project/tfmodels:1")
    trainer = spec["pipelineSpec"]["deploymentSpec"]["executors"]["Trainer_executor"]["container"]
    assert "google_cloud_ai_platform" in json.dumps(trainer["args"])  # the Vertex executor, not the local one
    assert trainer["image"] == "gcr.io/my-project/tfmodels:1"
    parameters = spec["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
    custom_config = json.loads(parameters["custom_config"]["runtimeValue"]["constantValue"]["stringValue"])
    assert custom_config["ai_platform_enable_vertex"] is True
    assert custom_config["ai_platform_vertex_region"] == "europe-west4"
    training = custom_config["ai_platform_training_args"]
    assert training["project"] == "my-project"
    pools = training["job_spec"]["worker_pool_specs"]
    assert [pool["replica_count"] for pool in pools] == [1, 2]
    assert {pool["machine_spec"]["machine_type"] for pool in pools} == {"n1-highmem-16"}
    assert {pool["container_spec"]["image_uri"] for pool in pools} == {"gcr.io/my-project/tfmodels:1"}
    assert custom_config["strategy"] == "multi_worker"

    from tfx_pipeline.hparams import ModelHParams

    # run_fn reads the same custom_config: Vertex's own keys are skipped, ours checked.
    assert ModelHParams.from_custom_config(custom_config).strategy == "multi_worker"


def test_compile_refuses_half_a_vertex_config(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "reviews.csv").write_text("text,label\ngood,1\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", "--output", str(tmp_path / "p.json"), "--root", str(tmp_path), "--data-root", str(data),
              "--vertex-project", "my-project"])
    assert exit_info.value.code == 1
    assert "--vertex-region" in capsys.readouterr().err
