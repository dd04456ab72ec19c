"""`python -m tfx_pipeline.demo` (`make demo`), end to end on small settings: the pipeline blesses and pushes a
model, a fresh `python -m serving.server` process serves it, and gRPC Predict/Classify answer held-out reviews.

The e2e test runs the tiny random encoder on 300 IMDB rows (the real demo fine-tunes MiniLM); what it checks
does not depend on the encoder: exit status, the pushed SavedModel, one valid answer per review from both APIs,
reviews the pipeline never saw, and a server that was stopped.
"""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROWS = 300
SMALL_DEMO = ["--encoder", "tiny", "--imdb-rows", str(ROWS), "--train-steps", "10", "--eval-steps", "2",
              "--max-seq-length", "32", "--batch-size", "8", "--learning-rate", "1e-3", "--min-accuracy", "0.0",
              "--reviews", "4"]
CLASS_NAMES = ["negative", "positive"]


def _run_demo(tmp_path, flags):
    """`python -m tfx_pipeline.demo --root <tmp>/demo FLAGS` in a fresh process; returns (root, its summary JSON,
    its output), having checked that it exited 0."""
    root, summary_file = tmp_path / "demo", tmp_path / "summary.json"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", "tfx_pipeline.demo", "--root", str(root),
                             "--summary-json", str(summary_file), *flags],
                            capture_output=True, text=True, timeout=1500, env=env, cwd=REPO)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = json.loads(summary_file.read_text())
    assert summary["exit_code"] == 0
    return root, summary, output


@pytest.mark.e2e
def test_demo_pushes_a_model_and_serves_it_over_grpc(tmp_path):
    root, summary, output = _run_demo(tmp_path, SMALL_DEMO)

    # The pipeline ran, blessed and pushed a TF Serving version directory.
    assert summary["blessed"] is True
    assert all(summary["components"][node] == "executed" for node in ("Transform", "Trainer", "Evaluator",
                                                                      "Pusher")), summary["components"]
    assert summary["metrics"]["example_count"] > 0
    assert 0.0 <= summary["metrics"]["sparse_categorical_accuracy"] <= 1.0
    version_dir = summary["pushed"]
    assert os.path.dirname(version_dir) == str(root / "serving" / "imdb_sentiment")
    assert os.path.basename(version_dir).isdigit()
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))

    # The server answered for the pushed version, once per review, with probabilities and a label.
    answers, reviews = summary["answers"], summary["reviews"]
    assert answers["version"] == int(os.path.basename(version_dir))
    assert len(reviews) == len(answers["labels"]) == len(answers["probabilities"]) == len(answers["classify"]) == 4
    for label, row, classes in zip(answers["labels"], answers["probabilities"], answers["classify"]):
        assert label in CLASS_NAMES
        assert len(row) == 2 and all(0.0 <= p <= 1.0 for p in row) and abs(sum(row) - 1) < 1e-4
        assert label == CLASS_NAMES[row.index(max(row))]
        assert [name for name, _ in classes] == CLASS_NAMES
        assert [score for _, score in classes] == pytest.approx(row, abs=1e-4)

    # The reviews are real labelled IMDB reviews, both labels, none of them in the pipeline's data.
    import pandas as pd

    data = pd.read_csv(root / "data" / f"imdb_{ROWS}" / "imdb.csv")
    assert len(data) == ROWS
    seen = set(data["text"].astype(str))
    assert sorted({r["label"] for r in reviews}) == [0, 1]
    for review in reviews:
        assert len(review["text"]) > 50 and review["text"] not in seen

    # The printed report, and the server process is gone.
    assert "Held-out sparse_categorical_accuracy (Evaluator" in output and "Demo OK" in output
    for review, label in zip(reviews, answers["labels"]):
        start = " ".join(review["text"].replace("<br />", " ").split())[:30]
        assert any(label in line and start in line for line in output.splitlines()), start
    assert summary["server_exit_code"] == 0
    with pytest.raises(ProcessLookupError):
        os.kill(summary["server_pid"], 0)


@pytest.mark.e2e
def test_task_demo_runs_that_task_and_its_served_model_answers(tmp_path):
    """`make demo TASK=translate` on small settings: the Bible pairs, vocabularies learned, translations served."""
    from tfmodels.datasets import bible

    if bible.missing_reason():
        pytest.skip(bible.missing_reason())
    root, summary, output = _run_demo(tmp_path, [
        "--task", "translate", "--encoder", "tiny", "--rows", "300", "--train-steps", "3", "--eval-steps", "1",
        "--max-seq-length", "32", "--batch-size", "16", "--min-bleu", "0", "--reviews", "2", "--no-xla"])
    assert summary["blessed"] is True
    assert os.path.dirname(summary["pushed"]) == str(root / "serving" / "bible_en_es")
    assert summary["answers"]["version"] == int(os.path.basename(summary["pushed"]))
    assert len(summary["answers"]["translations"]) == 2 and all(summary["answers"]["translations"])
    assert "Held-out bleu (Evaluator" in output and "Demo OK" in output
    assert summary["metrics"]["bleu"] >= 0


def test_demo_refuses_to_wipe_a_directory_it_did_not_create(tmp_path, capsys):
    from tfx_pipeline.demo import main

    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["--root", str(tmp_path)]) == 1
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert "not created by the demo" in capsys.readouterr().err


def test_wrong_answers_are_reported():
    from tfx_pipeline.tasks.base import DemoError
    from tfx_pipeline.tasks.classify import check_answers

    good = {"labels": ["positive"], "probabilities": [[0.2, 0.8]],
            "classify": [[["negative", 0.2], ["positive", 0.8]]]}
    check_answers(good, 1, CLASS_NAMES)
    for bad in ({**good, "labels": ["negative"]},
                {**good, "probabilities": [[0.2, 0.9]]},
                {**good, "classify": [[["negative", 0.5], ["positive", 0.5]]]},
                {**good, "labels": []}):
        with pytest.raises(DemoError):
            check_answers(bad, 1, CLASS_NAMES)
