"""ExampleValidator with two additions: a split without examples is an anomaly, and a task's row checks.

TFDV marks statistics of zero examples as `data_missing` and reports no anomaly, so the stock ExampleValidator
blesses an empty split and Transform, Trainer and Evaluator run on nothing (a header-only CSV "trained").

A schema describes whole features; whether a row's tags are in the tag set or its answer lies inside its
context is a property of the row (`tfx_pipeline.row_checks`). With `row_check` set, the executor also reads
each split's examples, runs the task's check on every row and reports the bad rows as a CUSTOM_VALIDATION
anomaly of the checked feature, in the same anomalies file: the split is not blessed and the pipeline stops
before Transform, as for any schema anomaly.
"""

import json
import os
from typing import Dict, Iterator, Optional

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.example_validator import executor as tfx_executor
from tfx.components.example_validator import labels
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_component_specs import ExampleValidatorSpec
from tfx.utils import writer_utils

from tfx_pipeline import row_checks

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
        example = tf.train.Example.FromString(record)
        row = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            row[name] = [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in values]
        yield row


def add_row_anomalies(anomalies: anomalies_pb2.Anomalies, feature: str, count: int, lines) -> None:
    info = anomalies.anomaly_info[feature]
    info.severity = anomalies_pb2.AnomalyInfo.ERROR
    info.short_description = f"{count} bad rows"
    info.description = f"{count} bad rows: " + " | ".join(lines) + (" | ..." if count > len(lines) else "")
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
        if row_check and self._examples_uri:
            split = os.path.basename(os.path.normpath(outputs[labels.SCHEMA_DIFF_PATH]))[len("Split-"):]
            count, lines = row_checks.bad_rows(read_rows(self._examples_uri, split),
                                               row_checks.check_from_config(row_check))
            if count:
                add_row_anomalies(anomalies, row_check["feature"], count, lines)
                changed = True
        if changed:  # rewrite what the stock executor wrote
            writer_utils.write_anomalies(
                os.path.join(outputs[labels.SCHEMA_DIFF_PATH], tfx_executor.DEFAULT_FILE_NAME), anomalies)
        return anomalies


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
