"""End to end: `python -m tfx_pipeline run --task span_qa` on 120 real SQuAD v1.1 questions, tiny encoder.

A row whose answer is not at its start in the context stops the run at ExampleValidator; a clean run is blessed,
pushed and answers `answer_question` from a fresh server process; the Evaluator's SQuAD EM / F1 equal
`tfmodels.metrics.squad_em_f1` on the pushed model's answers for the same eval split; a re-run with the same
inputs is served from the cache.
"""

import json
import os

import pytest
from testlib.pipeline import (
    assert_anomalies_stop_the_run,
    assert_clean_run,
    assert_rerun_is_cached,
    eval_split_examples,
    latest_summary,
    run_cli,
)

pytestmark = pytest.mark.e2e

PIPELINE = "qa_pipeline"
SMALL_RUN = ["--task", "span_qa", "--pipeline-name", PIPELINE, "--model-name", "reader", "--train-steps", "2",
             "--eval-steps", "1", "--max-seq-length", "96", "--batch-size", "8", "--min-f1", "0.0"]


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    from tfx_pipeline.data import prepare_squad_csv

    return prepare_squad_csv(str(tmp_path_factory.mktemp("squad")), max_rows=120)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, questions):
    work = tmp_path_factory.mktemp("work")
    code, output = run_cli(work, "--data-root", questions, *SMALL_RUN)
    return str(work), code, output


def test_clean_run_is_blessed_pushed_and_served(first_run):
    work, code, output = first_run
    assert_clean_run(work, code, output, PIPELINE, "gRPC Predict on answer_question (4 questions) answered")


def test_evaluator_squad_scores_equal_the_library_metric(first_run):
    import tensorflow as tf

    from tfmodels.export import signatures
    from tfmodels.metrics import squad_em_f1

    work, code, _ = first_run
    assert code == 0
    summary = latest_summary(work, PIPELINE)
    records, rows = eval_split_examples(work, ("context", "answers"))
    served = tf.saved_model.load(summary.pushed_destination).signatures[signatures.DEFAULT_SIGNATURE]
    answers = served(examples=tf.constant(records))[signatures.ANSWER_TEXT_OUTPUT].numpy()
    scores = [squad_em_f1(a.decode(), json.loads(gold)) for a, (_, gold) in zip(answers, rows)]
    # The answers are spans of their contexts, and they score above zero: not an empty comparison.
    assert all(a.decode() in context for a, (context, _) in zip(answers, rows))
    assert summary.metrics["example_count"] == len(records)
    assert summary.metrics["squad_f1"] == pytest.approx(sum(f1 for _, f1 in scores) / len(scores), abs=1e-6)
    assert summary.metrics["squad_exact_match"] == pytest.approx(sum(em for em, _ in scores) / len(scores), abs=1e-6)
    assert summary.metrics["squad_f1"] > 0


def test_rerun_is_cached(first_run, questions):
    work, code, _ = first_run
    assert code == 0
    assert_rerun_is_cached(work, PIPELINE, "--data-root", questions, *SMALL_RUN)


def test_answer_outside_its_context_stops_the_run_before_transform(tmp_path, questions):
    import pandas as pd

    frame = pd.read_csv(os.path.join(questions, "squad.csv")).head(40)
    frame.loc[7, "answer_start"] = json.dumps([len(frame.loc[7, "context"]) + 5] * len(
        json.loads(frame.loc[7, "answers"])))
    data = tmp_path / "bad"
    data.mkdir()
    frame.to_csv(data / "bad.csv", index=False)
    assert_anomalies_stop_the_run(tmp_path / "work", PIPELINE, ["--data-root", str(data), *SMALL_RUN],
                                  "is not at character")
