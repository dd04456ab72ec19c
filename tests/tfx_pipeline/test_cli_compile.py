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
    assert "B-city" in text and "I-person" in text and "token_classification_spans" in text and "gold_tags" in text
