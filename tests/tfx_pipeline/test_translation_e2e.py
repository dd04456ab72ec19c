"""End to end: `python -m tfx_pipeline run --task translate` on 300 real English-Spanish Bible verse pairs, a
tiny Seq2SeqTransformer, vocabularies learned in the run.

An empty target stops the run at ExampleValidator; a clean run is blessed, pushed and translates from a fresh
server process; the Evaluator's BLEU equals sacrebleu's corpus BLEU on the pushed model's translations of the
same eval split; a re-run with the same inputs is served from the cache.
"""

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
    assert_clean_run(work, code, output, PIPELINE, "gRPC Predict on serving_default (4 texts) answered")
    # The vocabularies were learned from the data (the export carries them: text in, text out).
    assert len(os.listdir(os.path.join(work, "root", "learned_vocab"))) == 1


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
    assert_rerun_is_cached(work, PIPELINE, "--data-root", verses, *SMALL_RUN)


def test_empty_target_stops_the_run_before_transform(tmp_path, verses):
    import pandas as pd

    frame = pd.read_csv(os.path.join(verses, "bible.csv")).head(60)
    frame.loc[4, "target"] = "   "
    data = tmp_path / "bad"
    data.mkdir()
    frame.to_csv(data / "bad.csv", index=False)
    assert_anomalies_stop_the_run(tmp_path / "work", PIPELINE, ["--data-root", str(data), *SMALL_RUN],
                                  "target is empty")


def test_tfrecord_input_with_given_vocabularies(first_run, verses, tmp_path):
    """The same pairs as TFRecords of tf.Example (`--input-format tfrecord`), with the vocabularies given."""
    import glob

    import pandas as pd
    import tensorflow as tf

    work, code, _ = first_run
    assert code == 0
    source_vocab, = glob.glob(os.path.join(work, "root", "learned_vocab", "*", "source_vocab.txt"))
    data = tmp_path / "records"
    data.mkdir()
    frame = pd.read_csv(os.path.join(verses, "bible.csv"))
    with tf.io.TFRecordWriter(str(data / "pairs.tfrecord")) as writer:
        for source, target in zip(frame["source"], frame["target"]):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))
                for name, text in (("source", source), ("target", target))})).SerializeToString())
    code, output = run_cli(tmp_path / "work", "--data-root", str(data), "--input-format", "tfrecord", *SMALL_RUN,
                           "--source-vocab", source_vocab,
                           "--target-vocab", source_vocab.replace("source_vocab", "target_vocab"),
                           "--skip-infra-validation")
    assert code == 0, output[-5000:]
    summary = latest_summary(str(tmp_path / "work"), PIPELINE)
    assert summary.components["ImportExampleGen"] == "executed" and summary.pushed_destination
    assert not os.path.exists(os.path.join(tmp_path, "work", "root", "learned_vocab"))
