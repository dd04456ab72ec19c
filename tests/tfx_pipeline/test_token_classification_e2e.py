"""End to end: `python -m tfx_pipeline run --task token_classification` on 150 real WNUT-16 tweets, tiny encoder.

Anomalous rows (a tag outside the tag set, fewer tags than words) stop the run at ExampleValidator; a clean
run is blessed, pushed and answers `extract_entities` from a fresh server process; the Evaluator's entity
scores equal `tfmodels.metrics.entity_scores` on the pushed model's predictions for the same eval split; a
re-run with the same inputs is served from the cache.
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

PIPELINE = "ner_pipeline"
# Two optimizer steps at a small rate: the tagger still predicts entities all over (an untrained tagger), so
# the metric comparison below is between non-trivial numbers rather than 0 == 0.
SMALL_RUN = ["--task", "token_classification", "--pipeline-name", PIPELINE, "--model-name", "ner",
             "--train-steps", "2", "--eval-steps", "1", "--learning-rate", "1e-5", "--max-seq-length", "48",
             "--batch-size", "8", "--min-f1", "0.0"]


@pytest.fixture(scope="module")
def tweets(tmp_path_factory):
    from tfx_pipeline.data import prepare_wnut_csv

    return prepare_wnut_csv(str(tmp_path_factory.mktemp("wnut")), max_rows=150)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tweets):
    work = tmp_path_factory.mktemp("work")
    code, output = run_cli(work, "--data-root", tweets, *SMALL_RUN)
    return str(work), code, output


def test_clean_run_is_blessed_pushed_and_served(first_run):
    work, code, output = first_run
    assert_clean_run(work, code, output, PIPELINE, "gRPC Predict on extract_entities (4 texts) answered")


def test_evaluator_entity_scores_equal_the_library_metric(first_run):
    import tensorflow as tf

    from tfmodels.export import signatures
    from tfmodels.metrics import entity_scores

    work, code, _ = first_run
    assert code == 0
    summary = latest_summary(work, PIPELINE)
    records, rows = eval_split_examples(work, ("tokens", "tags"))
    words, gold = [w.split() for w, _ in rows], [t.split() for _, t in rows]
    served = tf.saved_model.load(summary.pushed_destination).signatures[signatures.DEFAULT_SIGNATURE]
    predicted = [t.decode().split() for t in
                 served(examples=tf.constant(records))[signatures.PREDICTED_TAGS_OUTPUT].numpy()]
    assert [len(p) for p in predicted] == [len(w) for w in words]
    expected = entity_scores(gold, predicted)
    assert summary.metrics["example_count"] == len(records)
    assert expected["recall"] > 0  # an untrained tagger, but not an empty comparison
    for name in ("precision", "recall", "f1"):
        assert summary.metrics[f"entity_{name}"] == pytest.approx(expected[name], abs=1e-6)


def test_rerun_is_cached(first_run, tweets):
    work, code, _ = first_run
    assert code == 0
    assert_rerun_is_cached(work, PIPELINE, "--data-root", tweets, *SMALL_RUN)


def test_bad_tags_stop_the_run_before_transform(tmp_path, tweets):
    import pandas as pd

    frame = pd.read_csv(os.path.join(tweets, "wnut16.csv")).head(40)
    frame.loc[5, "tags"] = " ".join(["B-alien"] + frame.loc[5, "tags"].split()[1:])
    frame.loc[9, "tags"] = " ".join(frame.loc[9, "tags"].split()[:-1])  # one tag short
    data = tmp_path / "bad"
    data.mkdir()
    frame.to_csv(data / "bad.csv", index=False)
    tags = sorted({t for cell in frame["tags"] for t in cell.split()} - {"B-alien"})
    assert_anomalies_stop_the_run(tmp_path / "work", PIPELINE,
                                  ["--data-root", str(data), *SMALL_RUN, *[f"--tag={t}" for t in tags]],
                                  "'B-alien'] are not in the tag set", "words but")


def _char_spans(words, tags):
    """BIO word tags -> JSON `[[start, end, "type"], ...]` character spans of `" ".join(words)`."""
    spans, start = [], 0
    for word, tag in zip(words, tags):
        if tag.startswith("B-") or (tag.startswith("I-") and (not spans or spans[-1][2] != tag[2:])):
            spans.append([start, start + len(word), tag[2:]])
        elif tag.startswith("I-"):
            spans[-1][1] = start + len(word)
        start += len(word) + 1
    return json.dumps(spans)


def test_text_with_character_spans_is_blessed_and_scored_like_tags(tmp_path, tweets):
    """The other input form: a text column and a JSON column of character spans (`--spans-feature`)."""
    import pandas as pd
    import tensorflow as tf

    from tfmodels.export import signatures
    from tfmodels.metrics import entity_scores

    frame = pd.read_csv(os.path.join(tweets, "wnut16.csv"))
    words, tags = [w.split() for w in frame["tokens"]], [t.split() for t in frame["tags"]]
    data = tmp_path / "spans"
    data.mkdir()
    pd.DataFrame({"text": [" ".join(w) for w in words],
                  "spans": [_char_spans(w, t) for w, t in zip(words, tags)]}).to_csv(data / "tweets.csv", index=False)
    work = tmp_path / "work"
    flags = [flag if flag != PIPELINE else "ner_spans" for flag in SMALL_RUN]
    code, output = run_cli(work, "--data-root", str(data), *flags, "--text-feature", "text",
                           "--spans-feature", "spans")
    summary = assert_clean_run(str(work), code, output, "ner_spans",
                               "gRPC Predict on extract_entities (4 texts) answered")
    records, rows = eval_split_examples(str(work), ("text", "spans"))
    served = tf.saved_model.load(summary.pushed_destination).signatures
    predicted = [t.decode().split() for t in
                 served[signatures.DEFAULT_SIGNATURE](examples=tf.constant(records))[
                     signatures.PREDICTED_TAGS_OUTPUT].numpy()]
    gold_by_row = {(" ".join(w), _char_spans(w, t)): t for w, t in zip(words, tags)}
    gold = [gold_by_row[row] for row in rows]
    # The export's gold_tags signature (what the Evaluator reads as labels) gives back the word tags.
    assert [t.decode().split() for t in served["gold_tags"](examples=tf.constant(records))["gold_tags"].numpy()] == gold
    expected = entity_scores(gold, predicted)
    assert expected["recall"] > 0
    for name in ("precision", "recall", "f1"):
        assert summary.metrics[f"entity_{name}"] == pytest.approx(expected[name], abs=1e-6)
