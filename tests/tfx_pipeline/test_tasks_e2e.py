"""End to end over the task registry: `python -m tfx_pipeline run --task <name>` on a small real sample of each
task's data with a tiny model, asserted from ML Metadata, the pushed model and the CLI's output.

For every task (`CASES`, one per registered task), ONE clean run, shared by the task's tests (a module-scoped
fixture; the tests of a task are one xdist group, so the run is not repeated per worker): every component
executed once, the model blessed, pushed with warmup requests and answering from a fresh server process; the
Evaluator's gate metric equals the library metric on the pushed model's predictions for the same eval split; a
re-run with the same inputs is cached; rows the task's schema or row check rejects stop the run at
ExampleValidator. Then what only one task has: the classifier's compressed model under the threshold (not
pushed) and a header-only CSV; the tagger's character-span input; the translator's TFRecord input with given
vocabularies.
"""

import dataclasses
import glob
import json
import os
import subprocess
import sys
from typing import Callable, Tuple

import pytest
from testlib.pipeline import (
    assert_anomalies_stop_the_run,
    assert_clean_run,
    assert_rerun_is_cached,
    eval_split_examples,
    imdb_sample,
    latest_summary,
    run_cli,
)

from tfx_pipeline import tasks

pytestmark = pytest.mark.e2e


@dataclasses.dataclass(frozen=True)
class Case:
    """What the suite needs of one task: its small real data, the flags of a small run, the line its
    infra-validation prints, how to check the served model, and how to break the data."""

    data: Callable[[str], str]  # (a new folder) -> the data folder, written there
    flags: Tuple[str, ...]  # --pipeline-name and --model-name included
    served: str
    check_served: Callable  # (work dir, run summary): the served model against the Evaluator's metrics
    bad_data: Callable  # (data folder, a new folder) -> (extra flags, phrases the anomaly report must hold)

    @property
    def pipeline(self) -> str:
        return self.flags[self.flags.index("--pipeline-name") + 1]

    @property
    def model(self) -> str:
        return self.flags[self.flags.index("--model-name") + 1]


def _read_csv(folder):
    import pandas as pd

    path, = glob.glob(os.path.join(folder, "*.csv"))
    return pd.read_csv(path)


def _write_bad(frame, folder):
    os.makedirs(folder, exist_ok=True)
    frame.to_csv(os.path.join(folder, "bad.csv"), index=False)
    return folder


def _served(work, summary, signature):
    """The pushed model's `signature`, loaded in this process."""
    import tensorflow as tf

    return tf.saved_model.load(summary.pushed_destination).signatures[signature]


# ---- classify: 200 IMDB reviews --------------------------------------------------------------------------------
def _classifier_predicts_in_a_fresh_process(work, summary):
    """The pushed model loads and predicts in a fresh process, without tensorflow_text (core ops only)."""
    script = ("import json, sys, tensorflow as tf\n"
              "sys.modules['tensorflow_text'] = None\n"
              f"m = tf.saved_model.load({summary.pushed_destination!r})\n"
              "out = m.signatures['predict_text'](text=tf.constant(['great film', 'awful film']))\n"
              "print(json.dumps(out['probabilities'].numpy().tolist()))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    probabilities = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(probabilities) == 2 and all(abs(sum(row) - 1) < 1e-4 for row in probabilities)


def _bad_labels(data, folder):
    frame = _read_csv(data).head(60).astype({"label": object})
    frame.loc[3, "label"] = None      # a missing label
    frame.loc[7, "label"] = "great"   # a label of the wrong type
    _write_bad(frame, folder)
    return [], ["label"]


# ---- token_classification: 150 WNUT-16 tweets ------------------------------------------------------------------
def _tweets(folder):
    from tfx_pipeline.data import prepare_wnut_csv

    return prepare_wnut_csv(folder, max_rows=150)


def _assert_entity_scores(summary, records, predicted, gold):
    from tfmodels.metrics import entity_scores

    expected = entity_scores(gold, predicted)
    assert summary.metrics["example_count"] == len(records)
    assert expected["recall"] > 0  # an untrained tagger, but not an empty comparison
    for name in ("precision", "recall", "f1"):
        assert summary.metrics[f"entity_{name}"] == pytest.approx(expected[name], abs=1e-6)


def _predicted_tags(served, records):
    import tensorflow as tf

    from tfmodels.export import signatures

    return [t.decode().split() for t in
            served(examples=tf.constant(records))[signatures.PREDICTED_TAGS_OUTPUT].numpy()]


def _entity_scores_equal_the_library_metric(work, summary):
    from tfmodels.export import signatures

    records, rows = eval_split_examples(work, ("tokens", "tags"))
    words, gold = [w.split() for w, _ in rows], [t.split() for _, t in rows]
    predicted = _predicted_tags(_served(work, summary, signatures.TAG_EXAMPLES_SIGNATURE), records)
    assert [len(p) for p in predicted] == [len(w) for w in words]
    _assert_entity_scores(summary, records, predicted, gold)


def _bad_tags(data, folder):
    frame = _read_csv(data).head(40)
    frame.loc[5, "tags"] = " ".join(["B-alien"] + frame.loc[5, "tags"].split()[1:])
    frame.loc[9, "tags"] = " ".join(frame.loc[9, "tags"].split()[:-1])  # one tag short
    _write_bad(frame, folder)
    tags = sorted({t for cell in frame["tags"] for t in cell.split()} - {"B-alien"})
    return [f"--tag={t}" for t in tags], ["row ", "'B-alien'] are not in the tag set", "words but"]


# ---- span_qa: 120 SQuAD v1.1 questions -------------------------------------------------------------------------
def _questions(folder):
    from tfx_pipeline.data import prepare_squad_csv

    return prepare_squad_csv(folder, max_rows=120)


def _squad_scores_equal_the_library_metric(work, summary):
    import tensorflow as tf

    from tfmodels.export import signatures
    from tfmodels.metrics import squad_em_f1

    records, rows = eval_split_examples(work, ("context", "answers"))
    served = _served(work, summary, signatures.ANSWER_EXAMPLES_SIGNATURE)
    answers = served(examples=tf.constant(records))[signatures.ANSWER_TEXT_OUTPUT].numpy()
    scores = [squad_em_f1(a.decode(), json.loads(gold)) for a, (_, gold) in zip(answers, rows)]
    # The answers are spans of their contexts, and they score above zero: not an empty comparison.
    assert all(a.decode() in context for a, (context, _) in zip(answers, rows))
    assert summary.metrics["example_count"] == len(records)
    assert summary.metrics["squad_f1"] == pytest.approx(sum(f1 for _, f1 in scores) / len(scores), abs=1e-6)
    assert summary.metrics["squad_exact_match"] == pytest.approx(sum(em for em, _ in scores) / len(scores), abs=1e-6)
    assert summary.metrics["squad_f1"] > 0


def _answer_outside_its_context(data, folder):
    frame = _read_csv(data).head(40)
    frame.loc[7, "answer_start"] = json.dumps([len(frame.loc[7, "context"]) + 5] * len(
        json.loads(frame.loc[7, "answers"])))
    _write_bad(frame, folder)
    return [], ["row ", "is not at character"]


# ---- translate: 300 English-Spanish Bible verse pairs, vocabularies learned in the run ---------------------------
def _verses(folder):
    from tfmodels.datasets import bible

    if bible.missing_reason():
        pytest.skip(bible.missing_reason())
    from tfx_pipeline.data import prepare_bible_csv

    return prepare_bible_csv(folder, max_rows=300)


def _bleu_equals_sacrebleu(work, summary):
    import sacrebleu
    import tensorflow as tf

    from tfmodels.export import signatures

    # The vocabularies were learned from the data (the export carries them: text in, text out).
    assert len(os.listdir(os.path.join(work, "root", "learned_vocab"))) == 1
    records, rows = eval_split_examples(work, ("target",))
    served = _served(work, summary, signatures.TRANSLATE_EXAMPLES_SIGNATURE)
    translations = [t.decode() for t in served(examples=tf.constant(records))[signatures.TRANSLATE_OUTPUT].numpy()]
    expected = sacrebleu.corpus_bleu(translations, [[target for target, in rows]]).score
    assert summary.metrics["example_count"] == len(records)
    assert summary.metrics["bleu"] == pytest.approx(expected, abs=1e-6)
    assert expected > 0  # exponential smoothing: not zero once some word matches


def _empty_target(data, folder):
    frame = _read_csv(data).head(60)
    frame.loc[4, "target"] = "   "
    _write_bad(frame, folder)
    return [], ["row ", "target is empty"]


# ---- text_generation: 36 ACLSum papers (title -> challenge summary), a tiny random decoder ------------------------
def _papers(folder):
    """ACLSum train papers whose title and challenge summary are short enough for the tiny decoder's bytes."""
    import pandas as pd

    from tfmodels.datasets.aclsum import load_aclsum

    rows = [(p.title, p.summaries["challenge"]) for p in load_aclsum("train")
            if len((p.title + p.summaries["challenge"]).encode()) <= 200][:36]
    os.makedirs(folder, exist_ok=True)
    pd.DataFrame(rows, columns=["prompt", "target"]).to_csv(os.path.join(folder, "papers.csv"), index=False)
    return folder


def _rouge_equals_rouge_score(work, summary):
    """The Evaluator's ROUGE is rouge-score's on the pushed model's greedy completions of the eval split, which
    its `generate` signature (what clients call) gives too."""
    import tensorflow as tf

    from tfmodels.export import signatures
    from tfmodels.metrics import rouge_scores
    from tfx_pipeline.tasks.text_generation import chat_template_parts, preprocessor

    records, rows = eval_split_examples(work, ("prompt", "target"))
    served = tf.saved_model.load(summary.pushed_destination).signatures
    completions = [c.decode() for c in served[signatures.GENERATE_EXAMPLES_SIGNATURE](
        examples=tf.constant(records))[signatures.COMPLETION_OUTPUT].numpy()]
    expected = rouge_scores(completions, [target for _, target in rows])
    assert summary.metrics["example_count"] == len(records)
    for name in ("1", "2", "L"):
        assert summary.metrics[f"rouge_{name.lower()}"] == pytest.approx(expected[f"rouge{name}"], abs=1e-6)
    prefix, suffix = chat_template_parts(preprocessor("tiny", 8))  # --chat-template
    generated = served[signatures.GENERATE_SIGNATURE](
        prompt=tf.constant([prefix + prompt + suffix for prompt, _ in rows]),
        max_new_tokens=tf.constant([12] * len(rows)))
    assert [c.decode() for c in generated[signatures.COMPLETION_OUTPUT].numpy()] == completions
    assert all(0 <= n <= 12 for n in generated[signatures.NUM_GENERATED_TOKENS_OUTPUT].numpy())


def _empty_and_too_long_targets(data, folder):
    from tfmodels.datasets.aclsum import load_aclsum

    frame = _read_csv(data)
    frame.loc[4, "target"] = "   "
    frame.loc[9, "prompt"] = load_aclsum("test")[0].text()  # an abstract: far more bytes than 256
    _write_bad(frame, folder)
    return [], ["row ", "target is empty", "prompt + target are", "tokens, longer than the training length of 256"]


# A few steps, which XLA's compile would outlast (the demo, the README walkthrough and the notebooks train with it),
# of the random tiny model (the default is the pretrained one).
SMALL = ("--eval-steps", "1", "--no-xla", "--encoder", "tiny")
CASES = {
    "classify": Case(
        data=imdb_sample, served="Infra-validation: version",
        flags=("--pipeline-name", "tfmodels_text_classifier", "--model-name", "reviews", "--train-steps", "5",
               "--eval-steps", "2", "--max-seq-length", "32", "--batch-size", "8", "--min-accuracy", "0.0", "--no-xla",
               "--encoder", "tiny"),
        check_served=_classifier_predicts_in_a_fresh_process, bad_data=_bad_labels),
    # Two optimizer steps at a small rate: the tagger still predicts entities all over (an untrained tagger), so
    # the metric comparison is between non-trivial numbers rather than 0 == 0.
    "token_classification": Case(
        data=_tweets, served="gRPC Predict on extract_entities (4 texts) answered",
        flags=("--task", "token_classification", "--pipeline-name", "ner_pipeline", "--model-name", "ner",
               "--train-steps", "2", *SMALL, "--learning-rate", "1e-5", "--max-seq-length", "48", "--batch-size",
               "8", "--min-f1", "0.0"),
        check_served=_entity_scores_equal_the_library_metric, bad_data=_bad_tags),
    "span_qa": Case(
        data=_questions, served="gRPC Predict on answer_question (4 questions) answered",
        flags=("--task", "span_qa", "--pipeline-name", "qa_pipeline", "--model-name", "reader", "--train-steps",
               "2", *SMALL, "--max-seq-length", "96", "--batch-size", "8", "--min-f1", "0.0"),
        check_served=_squad_scores_equal_the_library_metric, bad_data=_answer_outside_its_context),
    "translate": Case(
        data=_verses, served="gRPC Predict on serving_default (4 texts) answered",
        flags=("--task", "translate", "--pipeline-name", "translate_pipeline", "--model-name", "translator",
               "--train-steps", "3", *SMALL, "--max-seq-length", "32", "--batch-size", "16", "--min-bleu", "0.0"),
        check_served=_bleu_equals_sacrebleu, bad_data=_empty_target),
    # Full fine-tuning would learn faster; LoRA (merged before export) is what the task is for.
    "text_generation": Case(
        data=_papers, served="gRPC Predict on generate (4 prompts) answered",
        flags=("--task", "text_generation", "--pipeline-name", "generate_pipeline", "--model-name", "writer",
               "--train-steps", "10", *SMALL, "--max-seq-length", "256", "--batch-size", "8", "--learning-rate",
               "1e-2", "--lora-rank", "4", "--chat-template", "--max-new-tokens", "12", "--min-rouge-l", "0.0"),
        check_served=_rouge_equals_rouge_score, bad_data=_empty_and_too_long_targets),
}
PARAMS = {name: pytest.param(name, marks=pytest.mark.xdist_group(f"tasks_e2e_{name}")) for name in CASES}
every_task = pytest.mark.parametrize("task", list(PARAMS.values()), scope="module")


def only(name):
    return pytest.mark.parametrize("task", [PARAMS[name]], scope="module")


@pytest.fixture(scope="module")
def task_data(task, tmp_path_factory):
    return str(CASES[task].data(str(tmp_path_factory.mktemp(f"{task}_data"))))


@pytest.fixture(scope="module")
def clean_run(task, task_data, tmp_path_factory):
    """The task's one clean run: (work dir, exit code, output)."""
    work = str(tmp_path_factory.mktemp(f"{task}_work"))
    code, output = run_cli(work, "--data-root", task_data, *CASES[task].flags)
    return work, code, output


def test_every_registered_task_has_a_case():
    assert set(CASES) == set(tasks.TASKS)


@every_task
def test_clean_run_is_blessed_pushed_and_served(task, clean_run):
    work, code, output = clean_run
    case = CASES[task]
    summary = assert_clean_run(work, code, output, case.pipeline, case.model, case.served)
    case.check_served(work, summary)


@every_task
def test_rerun_is_cached(task, clean_run, task_data):
    work, code, _ = clean_run
    assert code == 0
    assert_rerun_is_cached(work, CASES[task].pipeline, "--data-root", task_data, *CASES[task].flags)


@every_task
def test_bad_rows_stop_the_run_before_transform(task, task_data, tmp_path):
    case = CASES[task]
    flags, phrases = case.bad_data(task_data, str(tmp_path / "bad"))
    assert_anomalies_stop_the_run(tmp_path / "work", case.pipeline,
                                  ["--data-root", str(tmp_path / "bad"), *case.flags, *flags], *phrases)


# ---- what one task has ------------------------------------------------------------------------------------------
@only("classify")
def test_compressed_model_under_the_threshold_is_not_pushed(task, clean_run, task_data):
    """A compressed model (distilled, then int8) is what the Evaluator scores, and the gate keeps it out when it
    is under the threshold: exit 3, nothing pushed."""
    import tensorflow as tf

    work, code, _ = clean_run
    assert code == 0
    pushed_before = sorted(os.listdir(os.path.join(work, "serving", "reviews")))
    code, output = run_cli(work, "--data-root", task_data, *CASES[task].flags, "--min-accuracy", "1.01",
                           "--distill-into", "1", "--distill-steps", "3", "--quantize", "int8")
    summary = latest_summary(work, CASES[task].pipeline)
    assert code == 3, output[-5000:]
    assert "Not pushed." in output
    assert summary.components["Trainer"] == "executed" and summary.blessed is False
    assert summary.pushed_destination is None
    assert sorted(os.listdir(os.path.join(work, "serving", "reviews"))) == pushed_before
    evaluated = os.path.join(summary.model_run_dir.replace("model_run", "model"), "Format-Serving")
    reader = tf.train.load_checkpoint(os.path.join(evaluated, "variables", "variables"))
    assert tf.int8 in set(reader.get_variable_to_dtype_map().values())


@only("classify")
def test_header_only_csv_stops_at_the_example_validator(task, tmp_path):
    data = tmp_path / "empty"
    data.mkdir()
    (data / "reviews.csv").write_text("text,label\n")
    assert_anomalies_stop_the_run(tmp_path / "work", CASES[task].pipeline,
                                  ["--data-root", str(data), *CASES[task].flags], "no examples")


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


@only("token_classification")
def test_text_with_character_spans_is_blessed_and_scored_like_tags(task, task_data, tmp_path):
    """The other input form: a text column and a JSON column of character spans (`--spans-feature`)."""
    import pandas as pd
    import tensorflow as tf

    frame = _read_csv(task_data)
    words, tags = [w.split() for w in frame["tokens"]], [t.split() for t in frame["tags"]]
    data = tmp_path / "spans"
    data.mkdir()
    pd.DataFrame({"text": [" ".join(w) for w in words],
                  "spans": [_char_spans(w, t) for w, t in zip(words, tags)]}).to_csv(data / "tweets.csv", index=False)
    work = str(tmp_path / "work")
    case = CASES[task]
    flags = [flag if flag != case.pipeline else "ner_spans" for flag in case.flags]
    # Serving raw text is the same signature as after the clean run, whose infra-validation answered.
    code, output = run_cli(work, "--data-root", str(data), *flags, "--text-feature", "text", "--spans-feature", "spans",
                           "--skip-infra-validation")
    summary = assert_clean_run(work, code, output, "ner_spans", case.model, served_line=None)
    records, rows = eval_split_examples(work, ("text", "spans"))
    served = tf.saved_model.load(summary.pushed_destination).signatures
    gold_by_row = {(" ".join(w), _char_spans(w, t)): t for w, t in zip(words, tags)}
    gold = [gold_by_row[row] for row in rows]
    # The export's gold_tags signature (what the Evaluator reads as labels) gives back the word tags.
    assert [t.decode().split() for t in served["gold_tags"](examples=tf.constant(records))["gold_tags"].numpy()] == gold
    from tfmodels.export import signatures

    _assert_entity_scores(summary, records, _predicted_tags(served[signatures.TAG_EXAMPLES_SIGNATURE], records), gold)


@only("translate")
def test_tfrecord_input_with_given_vocabularies(task, clean_run, task_data, tmp_path):
    """The same pairs as TFRecords of tf.Example (`--input-format tfrecord`), with the vocabularies given."""
    import tensorflow as tf

    work, code, _ = clean_run
    assert code == 0
    source_vocab, = glob.glob(os.path.join(work, "root", "learned_vocab", "*", "source_vocab.txt"))
    data = tmp_path / "records"
    data.mkdir()
    frame = _read_csv(task_data).head(120)  # what ImportExampleGen reads is the point here, not the model
    with tf.io.TFRecordWriter(str(data / "pairs.tfrecord")) as writer:
        for source, target in zip(frame["source"], frame["target"]):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))
                for name, text in (("source", source), ("target", target))})).SerializeToString())
    # Verses cut at 16 tokens: the export's and the Evaluator's decoding loops run half as long.
    code, output = run_cli(tmp_path / "work", "--data-root", str(data), "--input-format", "tfrecord",
                           *CASES[task].flags, "--max-seq-length", "16", "--source-vocab", source_vocab,
                           "--target-vocab", source_vocab.replace("source_vocab", "target_vocab"),
                           "--skip-infra-validation")
    assert code == 0, output[-5000:]
    summary = latest_summary(str(tmp_path / "work"), CASES[task].pipeline)
    assert summary.components["ImportExampleGen"] == "executed" and summary.pushed_destination
    assert not os.path.exists(os.path.join(tmp_path, "work", "root", "learned_vocab"))
