"""ExampleValidator with two additions: a split without examples is an anomaly, and a task's row checks.

TFDV marks statistics of zero examples as `data_missing` and reports no anomaly, so the stock ExampleValidator
blesses an empty split and Transform, Trainer and Evaluator run on nothing (a header-only CSV "trained").

A schema describes whole features; whether a row's tags are in the tag set or its answer lies inside its
context is a property of the row (`tfx_pipeline.row_checks`). With `row_check` set, the executor also reads
every row, runs the task's check (and `required`: no empty cell in a column the task needs) and reports the bad
rows as a CUSTOM_VALIDATION anomaly of the checked feature, before what TFDV said of it, in the same anomalies
file: the split is not blessed and the pipeline stops before Transform, as for any schema anomaly. With the
check's "source" (what the pipeline sets) the rows are read from the input files as ExampleGen read them and
named by file and line (TFRecord: record number), in each split's report; without it, from the split's
examples, named by their place in the split.
"""

import json
import os
from typing import Dict, Iterator, Optional, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.example_validator import executor as tfx_executor
from tfx.components.example_validator import labels
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_component_specs import ExampleValidatorSpec
from tfx.utils import writer_utils

from tfx_pipeline import (
    row_checks,
    tasks,  # noqa: F401  (a task's module may add its check to row_checks.CHECKS)
)

NO_EXAMPLES = "no examples in this split (is the input empty, or only a header?)"


def mark_missing_data(anomalies: anomalies_pb2.Anomalies) -> bool:
    """Turns TFDV's silent `data_missing` into a dataset anomaly (in place); returns whether it did."""
    if anomalies.data_missing and not anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        info.description = NO_EXAMPLES
        info.severity = anomalies_pb2.AnomalyInfo.ERROR
        info.short_description = "no examples"
        info.reason.add(type=anomalies_pb2.AnomalyInfo.DATASET_LOW_NUM_EXAMPLES, short_description="no examples",
                        description=NO_EXAMPLES)
        return True
    return False


def read_rows(examples_uri: str, split: str) -> Iterator[Dict[str, object]]:
    """The tf.Examples of one split of an Examples artifact as dicts of Python lists (str / int / float)."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        yield example_row(record)


def example_row(record: bytes) -> Dict[str, list]:
    """A serialized tf.Example as a dict of Python lists (str / int / float)."""
    import tensorflow as tf

    row = {}
    for name, feature in tf.train.Example.FromString(record).features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        row[name] = [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in values]
    return row


def source_rows(data_root: str, input_format: str) -> Iterator[Tuple[str, str, Dict[str, object]]]:
    """`(where, excerpt, row)` of every row of the input ExampleGen reads: a CSV's rows by file and line (read
    with ExampleGen's rules, `tfx_pipeline.data_checks.csv_rows`), a TFRecord file's tf.Examples by file and
    record number (from 1)."""
    import tensorflow as tf

    from tfx_pipeline.data_checks import csv_rows, example_gen_files, excerpt

    for path in example_gen_files(data_root):
        name = os.path.basename(path)
        if input_format == "csv":
            for number, (line, record, row) in enumerate(csv_rows(path), start=1):
                yield f"{name} line {line} (data row {number})", excerpt(record), row
            continue
        compression = "GZIP" if path.endswith(".gz") else ""  # as Beam's ReadFromTFRecord guesses it
        records = tf.data.TFRecordDataset([path], compression_type=compression).as_numpy_iterator()
        for number, record in enumerate(records, start=1):
            row = example_row(record)
            text = " | ".join(str(v) for values in row.values() for v in values if isinstance(v, str))
            yield f"{name} record {number}", excerpt(text), row


def source_bad_rows(row_check: Dict, limit: int = 10):
    """`row_checks.located_bad_rows` of the task's check (`row_check`, with its "source") over `source_rows`."""
    return row_checks.located_bad_rows(source_rows(**row_check["source"]), row_checks.check_from_config(row_check),
                                       limit)


def add_row_anomalies(anomalies: anomalies_pb2.Anomalies, feature: str, count: int, lines) -> None:
    """Reports the bad rows on `feature`; what TFDV said of that feature follows them, never alone."""
    info = anomalies.anomaly_info[feature]
    tfdv = f" | then TFDV on the whole column: {info.description}" if info.description else ""
    info.severity = anomalies_pb2.AnomalyInfo.ERROR
    info.short_description = f"{count} bad rows"
    info.description = (f"{count} bad rows: " + " | ".join(lines) + (" | ..." if count > len(lines) else "")
                        + tfdv)
    info.reason.add(type=anomalies_pb2.AnomalyInfo.CUSTOM_VALIDATION, short_description=info.short_description,
                    description=info.description)


class Executor(tfx_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):
        self._row_check = json.loads(exec_properties.get("row_check") or "null")
        examples = input_dict.get("examples") or []
        self._examples_uri = examples[0].uri if examples else None
        return super().Do(input_dict, output_dict, exec_properties)

    def _Validate(self, inputs, outputs) -> anomalies_pb2.Anomalies:
        anomalies = super()._Validate(inputs, outputs)
        changed = mark_missing_data(anomalies)
        row_check = getattr(self, "_row_check", None)
        if row_check and (self._examples_uri or "source" in row_check):
            count, lines = self._bad_rows(row_check, outputs)
            if count:
                add_row_anomalies(anomalies, row_check["feature"], count, lines)
                changed = True
        if changed:  # rewrite what the stock executor wrote
            writer_utils.write_anomalies(
                os.path.join(outputs[labels.SCHEMA_DIFF_PATH], tfx_executor.DEFAULT_FILE_NAME), anomalies)
        return anomalies

    def _bad_rows(self, row_check, outputs):
        """The bad rows of the input by file and line (read once, reported in every split: a split holds rows of
        any file), or without a "source" those of the split being validated, by their place in it."""
        if "source" in row_check:
            if getattr(self, "_source_bad_rows", None) is None:
                self._source_bad_rows = source_bad_rows(row_check)
            return self._source_bad_rows
        split = os.path.basename(os.path.normpath(outputs[labels.SCHEMA_DIFF_PATH]))[len("Split-"):]
        return row_checks.bad_rows(read_rows(self._examples_uri, split), row_checks.check_from_config(row_check))


EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)


class RowCheckingExampleValidatorSpec(ExampleValidatorSpec):
    PARAMETERS = {**ExampleValidatorSpec.PARAMETERS, "row_check": ExecutionParameter(type=str, optional=True)}
    INPUTS = {**ExampleValidatorSpec.INPUTS,
              "examples": ChannelParameter(type=standard_artifacts.Examples, optional=True)}


class ExampleValidator(base_component.BaseComponent):
    """TFX's ExampleValidator (statistics against the schema) plus the executor above.

    Args:
        statistics: StatisticsGen's output. schema: the expected schema.
        examples: ExampleGen's output, read only when `row_check` is given.
        row_check: `tfx_pipeline.row_checks.check_from_config`'s config (a dict), or None.
    """

    SPEC_CLASS = RowCheckingExampleValidatorSpec
    EXECUTOR_SPEC = EXECUTOR_SPEC

    def __init__(self, statistics, schema, examples=None, row_check: Optional[dict] = None):
        super().__init__(spec=RowCheckingExampleValidatorSpec(
            statistics=statistics, schema=schema, examples=examples,
            row_check=json.dumps(row_check, sort_keys=True) if row_check else None,
            anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies)))
