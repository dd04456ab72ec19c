"""End to end: `python -m tfx_pipeline run --task translate` on 300 real English-Spanish Bible verse pairs, a
tiny Seq2SeqTransformer, vocabularies learned in the run.

An empty target stops the run at ExampleValidator; a clean run is blessed, pushed and translates from a fresh
server process; the Evaluator's BLEU equals sacrebleu's corpus BLEU on the pushed model's translations of the
same eval split; a re-run with the same inputs is served from the cache.
"""

import os

import pytest
from testlib.pipeline import eval_split_examples, latest_summary, run_cli

pytestmark = pytest.mark.e2e

PIPELINE = "translate_pipeline"
SMALL_RUN = ["--task", "translate", "--pipeline-name", PIPELINE, "--model-name", "translator", "--train-steps", "3",
             "--eval-steps", "1", "--max-seq-length", "32", "--batch-size", "16", "--min-bleu", "0.0"]


@pytest.fixture(scope="module")
def verses(tmp_path_factory):
    from tfmodels.datasets import bible

    if bible.missing_reason():
        pytest.skip(bible.missing_reason())
    from tfx_pipeline.data import prepare_bible_csv

    return prepare_bible_csv(str(tmp_path_factory.mktemp("bible")), max_rows=300)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, verses):
    work = tmp_path_factory.mktemp("work")
    code, output = run_cli(work, "--data-root", verses, *SMALL_RUN)
    return str(work), code, output


def test_clean_run_is_blessed_pushed_and_served(first_run):
    work, code, output = first_run
    assert code == 0, output[-5000:]
    summary = latest_summary(work, PIPELINE)
    for node in ("CsvExampleGen", "ExampleValidator", "Transform", "Trainer", "Evaluator", "Pusher"):
        assert summary.components[node] == "executed", summary.components
    assert summary.blessed is True and summary.pushed_destination
    # The vocabularies were learned from the data, and the export carries them (text in, text out).
    learned = os.listdir(os.path.join(work, "root", "learned_vocab"))
    assert len(learned) == 1
    assert os.path.exists(os.path.join(summary.pushed_destination, "assets.extra", "tf_serving_warmup_requests"))
    assert "gRPC Predict on serving_default (4 texts) answered" in output  # a fresh server process


def test_evaluator_bleu_equals_sacrebleu(first_run):
    import sacrebleu
    import tensorflow as tf

    from tfmodels.export import signatures

    work, code, _ = first_run
    assert code == 0
    summary = latest_summary(work, PIPELINE)
    records, rows = eval_split_examples(work, ("target",))
    served = tf.saved_model.load(summary.pushed_destination).signatures[signatures.TRANSLATE_EXAMPLES_SIGNATURE]
    translations = [t.decode() for t in served(examples=tf.constant(records))[signatures.TRANSLATE_OUTPUT].numpy()]
    expected = sacrebleu.corpus_bleu(translations, [[target for target, in rows]]).score
    assert summary.metrics["example_count"] == len(records)
    assert summary.metrics["bleu"] == pytest.approx(expected, abs=1e-6)
    assert expected > 0  # exponential smoothing: not zero once some word matches


def test_rerun_is_cached(first_run, verses):
    work, code, _ = first_run
    assert code == 0
    code, output = run_cli(work, "--data-root", verses, *SMALL_RUN, "--skip-infra-validation")
    assert code == 0, output[-5000:]
    summary = latest_summary(work, PIPELINE)
    for node in ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer"):
        assert summary.components[node] == "cached", (node, summary.components)


def test_empty_target_stops_the_run_before_transform(tmp_path, verses):
    import pandas as pd

    frame = pd.read_csv(os.path.join(verses, "bible.csv")).head(60)
    frame.loc[4, "target"] = "   "
    data = tmp_path / "bad"
    data.mkdir()
    frame.to_csv(data / "bad.csv", index=False)
    code, output = run_cli(tmp_path / "work", "--data-root", str(data), *SMALL_RUN)
    assert code == 2, output[-5000:]
    report = output[output.index("DATA ANOMALIES"):]
    assert "target is empty" in report and "row " in report
    summary = latest_summary(str(tmp_path / "work"), PIPELINE)
    for node in ("Transform", "Trainer", "Evaluator", "Pusher"):
        assert summary.components.get(node) != "executed", summary.components
