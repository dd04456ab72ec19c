"""Row-level checks per task: each names the row and the problem; good rows pass."""

import json
import os

import pytest

from tfx_pipeline import row_checks, tasks

TAGS = ["O", "B-person", "I-person"]


def test_token_classification_rows():
    check = row_checks.token_classification_check("tokens", "tags", TAGS)
    assert check({"tokens": [b"Anna lives here"], "tags": [b"B-person O O"]}) == []
    assert check({"tokens": "Anna lives", "tags": "B-person"}) == ["2 words but 1 tags"]
    assert check({"tokens": "Anna", "tags": "B-alien"}) == [
        "tags ['B-alien'] are not in the tag set ['B-person', 'I-person', 'O']"]
    assert check({"tokens": "  ", "tags": ""}) == ["tokens is empty"]
    assert check({"tags": "O"}) == ["tokens is empty"]  # a missing cell too


def test_span_qa_rows():
    check = row_checks.span_qa_check("question", "context", "answer", "answer_start")
    context = "Anna lives in Paris. Paris is big."
    assert check({"question": "Where?", "context": context, "answer": "Paris", "answer_start": 14}) == []
    several = {"question": "Where?", "context": context, "answer": json.dumps(["Paris", "Paris is big"]),
               "answer_start": json.dumps([14, 21])}
    assert check(several) == []
    assert check({**several, "answer_start": 14}) == ["2 answers but 1 answer starts"]
    assert check({"question": "Where?", "context": context, "answer": "Paris", "answer_start": 40}) == [
        "answer 'Paris' is not at character 40 of the context (34 characters)"]
    assert check({"question": " ", "context": "", "answer": "x", "answer_start": 0}) == [
        "question is empty", "context is empty", "answer 'x' is not at character 0 of the context (0 characters)"]
    assert check({"question": "Q", "context": context, "answer": "Anna", "answer_start": "zero"}) == [
        "answer_start 'zero' is not a number or a JSON list"]


def test_translation_rows_and_the_report():
    check = row_checks.translation_check("source", "target")
    rows = [{"source": "In the beginning", "target": "En el principio"}, {"source": "Amen", "target": ""},
            {"source": "", "target": " "}]
    assert row_checks.bad_rows(rows, check) == (2, ["row 2: target is empty",
                                                    "row 3: source is empty; target is empty"])
    assert row_checks.bad_rows(rows * 20, check, limit=3)[0] == 40
    assert len(row_checks.bad_rows(rows * 20, check, limit=3)[1]) == 3


def test_span_qa_row_whose_answer_transform_would_misread():
    check = row_checks.span_qa_check("question", "context", "answer", "answer_start")
    context = "El niño vive en Málaga."
    row = {"question": "¿Dónde?", "context": context, "answer_start": json.dumps([16])}
    assert check({**row, "answer": json.dumps(["Málaga"], ensure_ascii=False)}) == []
    # json.dumps' default \u escapes: json.loads reads them, Transform's graph ops would not.
    assert check({**row, "answer": json.dumps(["Málaga"])}) == [
        "answer's first answer 'Málaga' would be read as 'M\\\\u00e1laga': write the JSON list as UTF-8, "
        "without \\u escapes"]


def test_token_span_rows_and_transform_reading():
    import tensorflow as tf

    from tfx_pipeline.tasks.token_classification import words_and_tags

    check = row_checks.token_spans_check("text", "spans", ["O", "B-person", "I-person", "B-loc", "I-loc"])
    text = "Anna lives in  New York, USA."
    good = json.dumps([[0, 4, "person"], [15, 23, "loc"]])
    assert check({"text": text, "spans": good}) == []
    assert check({"text": text, "spans": json.dumps([[0, 4, "alien"], [2, 40, "loc"]])}) == [
        "type 'alien' is not in the tag set's types ['loc', 'person']",
        "span [2, 40) is not inside the text (29 characters)", "spans [0, 4) and [2, 40) overlap"]
    assert check({"text": text, "spans": json.dumps([[0, 4, "per son"]])})[-1].startswith(
        "spans would be read differently by Transform")
    assert check({"text": text, "spans": "[[0, 4]]"}) == ['spans \'[[0, 4]]\' is not a list of [start, end, "type"]']
    # Transform's graph reading: the same spans, then BIO tags of the whitespace-separated words.
    words, tags = words_and_tags(tf.constant([text, "no entity here", "x"]), tf.constant([good, "[]", " [ ] "]),
                                 spans=True)
    assert [[w.decode() for w in row] for row in words.to_list()][0] == ["Anna", "lives", "in", "New", "York,",
                                                                         "USA."]
    assert [[t.decode() for t in row] for row in tags.to_list()] == [
        ["B-person", "O", "O", "B-loc", "I-loc", "O"], ["O", "O", "O"], ["O"]]


def test_label_rows():
    check = row_checks.label_check("label", 2)
    assert check({"label": "1"}) == [] and check({"label": [0]}) == []
    assert check({"label": ""}) == ["label is empty"] and check({"label": []}) == ["label is empty"]
    assert check({"label": "positive"}) == ["label 'positive' is not an integer"]
    assert check({"label": "1.5"}) == ["label '1.5' is not an integer"]
    assert check({"label": "2"}) == ["label 2 is not a class id in [0, 2)"]


def test_required_columns_join_the_tasks_check_once_each():
    check = row_checks.check_from_config({
        "check": "label_check", "feature": "label", "label_feature": "label", "num_classes": 2,
        "required": ["text", "label"], "source": {"data_root": "/nowhere", "input_format": "csv"}})
    assert check({"text": "fine", "label": "1"}) == []
    assert check({"text": " ", "label": ""}) == ["text is empty", "label is empty"]
    only_required = row_checks.check_from_config({"feature": "text", "required": ["text"]})
    assert only_required({"text": []}) == ["text is empty"]


# ---- bad rows named by file and line (issue 33 point 3) --------------------------------------------------------
def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _config(data, task, tmp_path, *flags):
    """The PipelineConfig the CLI makes for `task` on `data` with the default flags (and `flags`)."""
    from tfx_pipeline.__main__ import build_parser
    from tfx_pipeline.cli import check_args, config_from_args

    parser = build_parser()
    return config_from_args(check_args(parser, parser.parse_args(
        ["run", "--task", task, "--data-root", data, "--root", str(tmp_path / "work"), *flags])))


def _validator_row_check(config):
    """The row check create_pipeline hands ExampleValidator."""
    from tfx_pipeline.pipeline import create_pipeline

    nodes = {node.id: node for node in create_pipeline(config).components}
    return json.loads(nodes["ExampleValidator"].exec_properties["row_check"])


@pytest.mark.parametrize("task", tasks.TASKS)
def test_every_task_names_a_bad_row_by_file_line_and_excerpt(task, tmp_path):
    """A row whose every needed cell is blank, after a header of the columns the task needs and a row of "1"s
    (words for the vocabularies a task may learn from the data): named by file and line, in plain words (it used
    to be "[eval] row 4", its position in the hashed split, or TFDV's text alone)."""
    from tfx_pipeline import example_validator

    probe = str(tmp_path / "probe")
    _write(os.path.join(probe, "data.csv"), "x\n")
    options = _config(probe, task, tmp_path, "--tag", "B-x").options
    needed = [f.name for f in tasks.get(task).schema(options, {}).feature if f.presence.min_fraction >= 1]
    data = str(tmp_path / "data")
    rows = [needed, ["1"] * len(needed), [" "] * len(needed)]
    _write(os.path.join(data, "data.csv"), "".join(",".join(row) + "\n" for row in rows))
    _, lines = example_validator.source_bad_rows(_validator_row_check(_config(data, task, tmp_path)))
    named = [line for line in lines if line.startswith("data.csv line 3 (data row 2) ")]
    assert named and f"{needed[0]} is empty" in named[0], lines


def test_classify_labels_named_by_file_line_with_tfdv_after(tmp_path):
    """Issue 33 point 3's case: an empty label at data row 57 and "positive" at row 200 printed only TFDV's
    messages ("Expected data of type: INT but got STRING"), no row."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    from tfx_pipeline import example_validator

    rows = [f"review {i},{i % 2}" for i in range(1, 201)]
    rows[56], rows[199] = "an unlabelled review,", "a review labelled by name,positive"
    data = str(tmp_path / "data")
    _write(os.path.join(data, "reviews.csv"), "text,label\n" + "\n".join(rows) + "\n")
    row_check = _validator_row_check(_config(data, tasks.DEFAULT_TASK, tmp_path))
    count, lines = example_validator.source_bad_rows(row_check)
    assert count == 2
    assert lines[0] == "reviews.csv line 58 (data row 57) 'an unlabelled review,': label is empty"
    assert lines[1] == ("reviews.csv line 201 (data row 200) 'a review labelled by name,positive': label "
                        "'positive' is not an integer")
    # In ExampleValidator's report, TFDV's text on the same feature follows the rows; it never stands alone.
    anomalies = anomalies_pb2.Anomalies()
    anomalies.anomaly_info["label"].description = "Expected data of type: INT but got STRING"
    example_validator.add_row_anomalies(anomalies, "label", count, lines)
    description = anomalies.anomaly_info["label"].description
    assert description.index("line 58") < description.index("line 201") < description.index("Expected data")


def test_tfrecord_rows_named_by_file_and_record(tmp_path):
    import tensorflow as tf

    from tfx_pipeline import example_validator

    def example(text, labels):
        return tf.train.Example(features=tf.train.Features(feature={
            "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=labels))})).SerializeToString()

    data = tmp_path / "data"
    data.mkdir()
    with tf.io.TFRecordWriter(str(data / "part-0.tfrecord")) as writer:
        for text, labels in (("good", [1]), ("no label", []), ("wrong class", [7])):
            writer.write(example(text, labels))
    row_check = {"check": "label_check", "feature": "label", "label_feature": "label", "num_classes": 2,
                 "required": ["text", "label"], "source": {"data_root": str(data), "input_format": "tfrecord"}}
    count, lines = example_validator.source_bad_rows(row_check)
    assert count == 2
    assert lines[0].startswith("part-0.tfrecord record 2 ") and "'no label'" in lines[0]
    assert lines[0].endswith(": label is empty")
    assert lines[1].startswith("part-0.tfrecord record 3 ") and lines[1].endswith(
        ": label 7 is not a class id in [0, 2)")
