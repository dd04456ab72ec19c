"""Row-level checks a schema cannot state, which tasks pick by name (`CHECKS`): tags inside the tag set, answers
inside their contexts, no empty source or target.

TFDV validates statistics against the schema, which covers presence, types and value domains of whole
features; it cannot see that the third tag of a row is not in the tag set or that an answer's character
offset points outside its context. These checks read each row and say which row and what is wrong, in
the words ExampleValidator's report uses, so that a bad row stops the run before Transform instead of
vanishing into the training data.

Each check takes one row (feature name -> Python value: str, int, or a list of them) and returns a list
of problems (empty when the row is good).
"""

import json
import re
from typing import Callable, Dict, List, Sequence

Row = Dict[str, object]
RowCheck = Callable[[Row], List[str]]


def _one(row: Row, name: str):
    value = row.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else (None if not value else value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value


def _blank(row: Row, name: str) -> bool:
    """No value, or only whitespace: how an empty CSV cell or a missing tf.Example feature reads."""
    value = _one(row, name)
    return value is None or isinstance(value, str) and not value.strip()


def _text(row: Row, name: str) -> str:
    value = _one(row, name)
    return value if isinstance(value, str) else ""


def token_classification_check(words_feature: str, tags_feature: str, tag_set: Sequence[str]) -> RowCheck:
    """Whitespace-separated words and as many whitespace-separated tags, every tag in `tag_set`."""
    known = set(tag_set)

    def check(row: Row) -> List[str]:
        words, tags = _text(row, words_feature).split(), _text(row, tags_feature).split()
        if not words:
            return [f"{words_feature} is empty"]
        problems = []
        if len(words) != len(tags):
            problems.append(f"{len(words)} words but {len(tags)} tags")
        unknown = sorted({t for t in tags if t not in known})
        if unknown:
            problems.append(f"tags {unknown} are not in the tag set {sorted(known)}")
        return problems

    return check


# How Transform reads a JSON list of character spans `[[start, end, "type"], ...]` in graph ops
# (`tfx_pipeline.tasks.token_classification`): brackets, quotes and whitespace dropped, then every three
# comma-separated values are one span. The row check flags a cell Transform would read otherwise.
SPAN_NOISE = r'[\[\]"\s]'


def spans_as_transform_reads(cell: str) -> List[tuple]:
    """The spans Transform trains on (see SPAN_NOISE), as `(start, end, type)` strings."""
    values = [v for v in re.sub(SPAN_NOISE, "", cell).split(",")] if re.sub(SPAN_NOISE, "", cell) else []
    return [tuple(values[i:i + 3]) for i in range(0, len(values), 3)]


def token_spans_check(text_feature: str, spans_feature: str, tag_set: Sequence[str]) -> RowCheck:
    """A text and a JSON list of its entities' character spans `[[start, end, "type"], ...]` (end exclusive):
    inside the text, not overlapping, each type with a `B-` tag in `tag_set`."""
    known = {t[2:] for t in tag_set if t.startswith("B-")}

    def check(row: Row) -> List[str]:
        text, cell = _text(row, text_feature), _text(row, spans_feature)
        if not text.strip():
            return [f"{text_feature} is empty"]
        try:
            spans = json.loads(cell)
        except ValueError:
            return [f"{spans_feature} {cell[:80]!r} is not JSON"]
        if not isinstance(spans, list) or not all(
                isinstance(s, list) and len(s) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                            for v in s[:2]) and isinstance(s[2], str)
                for s in spans):
            return [f"{spans_feature} {cell[:80]!r} is not a list of [start, end, \"type\"]"]
        problems = []
        for start, end, kind in spans:
            if not 0 <= start < end <= len(text):
                problems.append(f"span [{start}, {end}) is not inside the text ({len(text)} characters)")
            if kind not in known:
                problems.append(f"type {kind!r} is not in the tag set's types {sorted(known)}")
        ordered = sorted(spans)
        problems += [f"spans [{a[0]}, {a[1]}) and [{b[0]}, {b[1]}) overlap"
                     for a, b in zip(ordered, ordered[1:]) if b[0] < a[1]]
        if spans_as_transform_reads(cell) != [(str(s), str(e), k) for s, e, k in spans]:
            problems.append(f"{spans_feature} would be read differently by Transform: a type holds a comma, "
                            f"quote, bracket or whitespace")
        return problems

    return check


def gold_answers(value) -> List[str]:
    """A SQuAD answer-text cell: a JSON list of answers, or one answer as plain text."""
    if isinstance(value, str) and value.startswith("["):
        try:
            answers = json.loads(value)
        except ValueError:
            return [value]
        if isinstance(answers, list) and all(isinstance(a, str) for a in answers):
            return answers
    return [value] if isinstance(value, str) else []


# How Transform reads a span-QA row in graph ops (`tfx_pipeline.tasks.span_qa`, with RE2, which reads these patterns
# as Python's `re` does): the first string of a JSON list of answers, with JSON's \", \/ and \\ escapes undone
# in this order, and the first integer of the answer-start cell. The row check below flags a row whose answer
# Transform would read differently from `json.loads` (e.g. \u escapes: write the JSON as UTF-8).
FIRST_JSON_STRING = r'(?s)^\[\s*"((?:[^"\\]|\\.)*)".*$'
JSON_UNESCAPES = ((r'\"', '"'), (r"\/", "/"), ("\\\\", "\\"))
FIRST_INTEGER = r"(?s)^\D*?(-?\d+).*$"


def first_answer_as_transform_reads(cell: str) -> str:
    """The answer Transform trains on (see FIRST_JSON_STRING): the first of a JSON list, else the cell."""
    match = re.match(FIRST_JSON_STRING, cell)
    if not match:
        return cell
    text = match.group(1)
    for escaped, plain in JSON_UNESCAPES:
        text = text.replace(escaped, plain)
    return text


def span_qa_check(question_feature: str, context_feature: str, answer_feature: str,
                  answer_start_feature: str) -> RowCheck:
    """A question and a context; each gold answer found at its character start inside the context.

    Starts are one int, or a JSON list with one start per answer (as the answer texts).
    """

    def check(row: Row) -> List[str]:
        question, context = _text(row, question_feature), _text(row, context_feature)
        problems = [f"{name} is empty" for name, value in ((question_feature, question),
                                                           (context_feature, context)) if not value.strip()]
        answers = gold_answers(_one(row, answer_feature))
        starts = _one(row, answer_start_feature)
        if isinstance(starts, str):
            try:
                starts = json.loads(starts)
            except ValueError:
                return problems + [f"{answer_start_feature} {starts!r} is not a number or a JSON list"]
        starts = starts if isinstance(starts, list) else [starts]
        if not answers:
            return problems + [f"{answer_feature} holds no answer"]
        if len(starts) != len(answers):
            return problems + [f"{len(answers)} answers but {len(starts)} answer starts"]
        for answer, start in zip(answers, starts):
            if not isinstance(start, int) or isinstance(start, bool):
                problems.append(f"answer start {start!r} is not an integer")
            elif not answer.strip():
                problems.append("an answer is empty")
            elif context[start:start + len(answer)] != answer:
                problems.append(f"answer {answer!r} is not at character {start} of the context "
                                f"({len(context)} characters)")
        cell = _one(row, answer_feature)
        if isinstance(cell, str) and first_answer_as_transform_reads(cell) != answers[0]:
            problems.append(f"{answer_feature}'s first answer {answers[0]!r} would be read as "
                            f"{first_answer_as_transform_reads(cell)!r}: write the JSON list as UTF-8, "
                            f"without \\u escapes")
        return problems

    return check


def translation_check(source_feature: str, target_feature: str) -> RowCheck:
    """A non-empty source and a non-empty target."""

    def check(row: Row) -> List[str]:
        return [f"{name} is empty" for name in (source_feature, target_feature) if not _text(row, name).strip()]

    return check


def label_check(label_feature: str, num_classes: int) -> RowCheck:
    """A class id: an integer in [0, num_classes)."""

    def check(row: Row) -> List[str]:
        if _blank(row, label_feature):
            return [f"{label_feature} is empty"]
        value = _one(row, label_feature)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                return [f"{label_feature} {value!r} is not an integer"]
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{label_feature} {value!r} is not an integer"]
        if not 0 <= value < num_classes:
            return [f"{label_feature} {value} is not a class id in [0, {num_classes})"]
        return []

    return check


def required_check(required: Sequence[str]) -> RowCheck:
    """A value in each of the `required` columns (what the schema requires in every row; blank counts as none)."""

    def check(row: Row) -> List[str]:
        return [f"{name} is empty" for name in required if _blank(row, name)]

    return check


def bad_rows(rows, check: RowCheck, limit: int = 10):
    """`(count of bad rows, up to `limit` "row N: problem; problem" lines)` over an iterable of rows
    (numbered from 1, in the order given)."""
    return located_bad_rows(((f"row {number}", "", row) for number, row in enumerate(rows, start=1)), check, limit)


def located_bad_rows(located_rows, check: RowCheck, limit: int = 10):
    """`(count of bad rows, up to `limit` "<where> <excerpt>: problem; problem" lines)` over `(where, excerpt,
    row)` triples (e.g. "data.csv line 7 (data row 6)", a short quote of the row)."""
    count, lines = 0, []
    for where, excerpt, row in located_rows:
        problems = check(row)
        if problems:
            count += 1
            if len(lines) < limit:
                lines.append(f"{where}{' ' + excerpt if excerpt else ''}: " + "; ".join(problems))
    return count, lines


CHECKS = {check.__name__: check for check in (token_classification_check, token_spans_check, span_qa_check,
                                             translation_check, label_check)}


def check_from_config(config: Dict[str, object]) -> RowCheck:
    """The check a JSON-able config names (what the pipeline hands ExampleValidator): `{"check": <a CHECKS name>,
    "feature": <the feature anomalies are reported on>, ...the check's arguments}`, and optionally "required"
    (columns every row must fill: `required_check`, before the task's check; each problem said once) and
    "source" (where the rows are read: `tfx_pipeline.example_validator.source_rows`' arguments)."""
    config = dict(config)
    name = config.pop("check", None)
    required = config.pop("required", ())
    for key in ("feature", "source"):
        config.pop(key, None)
    if name is not None and name not in CHECKS:
        raise ValueError(f"no row check {name!r}; known: {sorted(CHECKS)}")
    checks = [required_check(required)] + ([CHECKS[name](**config)] if name is not None else [])

    def check(row: Row) -> List[str]:
        problems = [problem for one in checks for problem in one(row)]
        return sorted(set(problems), key=problems.index)

    return check
