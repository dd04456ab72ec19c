"""End to end: the TFX pipeline CLI on ~200 IMDB rows with the tiny encoder, asserted from ML Metadata.

Like TFX's own e2e tests: every component executed once, the blessing, the pushed version directory, a
prediction from the pushed model in a fresh process; a re-run is cached; a model under the accuracy threshold
is not pushed, compressed (`--distill-into`, `--quantize`) or not; a CSV with anomalous rows makes ExampleValidator report it and the CLI say so.
"""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from testlib.pipeline import latest_summary, run_cli

pytestmark = pytest.mark.e2e

SMALL_RUN = ["--train-steps", "5", "--eval-steps", "2", "--max-seq-length", "32", "--batch-size", "8",
             "--model-name", "reviews"]
COMPONENTS = ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
              "Trainer", "latest_blessed_model_resolver", "Evaluator", "Pusher"]


def _cli(work_dir, *flags):
    return run_cli(work_dir, *flags)


def _summary(work_dir):
    return latest_summary(work_dir, "tfmodels_text_classifier")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, reviews):
    work = tmp_path_factory.mktemp("work")
    code, output = _cli(work, "--data-root", str(reviews), "--min-accuracy", "0.0", *SMALL_RUN)
    return work, code, output


def test_every_component_executes_once_and_the_model_is_blessed_and_pushed(first_run):
    work, code, output = first_run
    assert code == 0, output[-5000:]
    summary = _summary(work)
    assert {node: summary.components.get(node) for node in COMPONENTS} == {
        node: "executed" for node in COMPONENTS}
    assert summary.blessed is True
    assert summary.metrics["example_count"] > 0
    version_dir = summary.pushed_destination
    assert os.path.dirname(version_dir) == os.path.join(work, "serving", "reviews")
    assert os.path.basename(version_dir).isdigit()
    assert os.path.exists(os.path.join(version_dir, "saved_model.pb"))
    assert os.path.exists(os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests"))
    assert "Blessed: yes" in output and "Infra-validation: version" in output
    assert os.listdir(os.path.join(summary.model_run_dir, "logs"))  # TensorBoard


def test_pushed_model_predicts_in_a_fresh_process(first_run):
    work, _, _ = first_run
    version_dir = _summary(work).pushed_destination
    script = ("import json, sys, tensorflow as tf\n"
              "sys.modules['tensorflow_text'] = None\n"
              f"m = tf.saved_model.load({version_dir!r})\n"
              "out = m.signatures['predict_text'](text=tf.constant(['great film', 'awful film']))\n"
              "print(json.dumps(out['probabilities'].numpy().tolist()))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    probabilities = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(probabilities) == 2 and all(abs(sum(row) - 1) < 1e-4 for row in probabilities)


def test_second_run_is_cached_and_a_model_under_the_threshold_is_not_pushed(first_run, reviews):
    work, code, _ = first_run
    assert code == 0
    code, output = _cli(work, "--data-root", str(reviews), "--min-accuracy", "0.0", *SMALL_RUN)
    assert code == 0, output[-5000:]
    summary = _summary(work)
    for node in ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer"]:
        assert summary.components[node] == "cached", (node, summary.components)

    pushed_before = sorted(os.listdir(os.path.join(work, "serving", "reviews")))
    code, output = _cli(work, "--data-root", str(reviews), "--min-accuracy", "1.01", *SMALL_RUN)
    summary = _summary(work)
    assert code == 3, output[-5000:]
    assert summary.blessed is False and summary.pushed_destination is None
    assert "Not pushed." in output
    assert sorted(os.listdir(os.path.join(work, "serving", "reviews"))) == pushed_before

    # A compressed model (distilled, then int8) is what the Evaluator scores, and the same gate keeps it out.
    code, output = _cli(work, "--data-root", str(reviews), "--min-accuracy", "1.01", "--distill-into", "1",
                        "--distill-steps", "3", "--quantize", "int8", *SMALL_RUN)
    summary = _summary(work)
    assert code == 3, output[-5000:]
    assert summary.components["Trainer"] == "executed" and summary.blessed is False
    assert summary.pushed_destination is None
    assert sorted(os.listdir(os.path.join(work, "serving", "reviews"))) == pushed_before
    evaluated = os.path.join(summary.model_run_dir.replace("model_run", "model"), "Format-Serving")
    reader = tf.train.load_checkpoint(os.path.join(evaluated, "variables", "variables"))
    assert tf.int8 in set(reader.get_variable_to_dtype_map().values())


def test_anomalous_rows_are_reported(tmp_path, reviews):
    import pandas as pd

    frame = pd.read_csv(reviews / "reviews.csv").head(60).astype({"label": object})
    frame.loc[3, "label"] = None      # a missing label
    frame.loc[7, "label"] = "great"   # a label of the wrong type
    data = tmp_path / "bad"
    data.mkdir()
    frame.to_csv(data / "reviews.csv", index=False)
    code, output = _cli(tmp_path / "work", "--data-root", str(data), "--min-accuracy", "0.0", *SMALL_RUN)
    assert code == 2, output[-5000:]
    assert "DATA ANOMALIES (ExampleValidator)" in output
    assert "label" in output[output.index("DATA ANOMALIES"):]
    summary = _summary(str(tmp_path / "work"))
    assert summary.anomalies and summary.components["ExampleValidator"] == "executed"
    for node in ("Transform", "Trainer", "Evaluator", "Pusher"):
        assert summary.components.get(node) != "executed", summary.components


def test_header_only_csv_stops_at_the_example_validator(tmp_path):
    data = tmp_path / "empty"
    data.mkdir()
    (data / "reviews.csv").write_text("text,label\n")
    code, output = _cli(tmp_path / "work", "--data-root", str(data), *SMALL_RUN)
    assert code == 2, output[-5000:]
    assert "no examples" in output[output.index("DATA ANOMALIES"):]
    summary = _summary(str(tmp_path / "work"))
    assert summary.components["ExampleValidator"] == "executed"
    for node in ("Transform", "Trainer", "Evaluator", "Pusher"):
        assert summary.components.get(node) != "executed", summary.components
