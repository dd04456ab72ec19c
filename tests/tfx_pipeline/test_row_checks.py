"""Row-level checks per task: each names the row and the problem; good rows pass."""

import json

from tfx_pipeline import row_checks

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
