"""ExampleValidator's executor, plus one check: a split without examples is an anomaly.

TFDV marks statistics of zero examples as `data_missing` and reports no anomaly, so the stock ExampleValidator
blesses an empty split and Transform, Trainer and Evaluator run on nothing (a header-only CSV "trained").
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import executor as tfx_executor
from tfx.components.example_validator import labels
from tfx.dsl.components.base import executor_spec
from tfx.utils import writer_utils

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


class Executor(tfx_executor.Executor):
    def _Validate(self, inputs, outputs) -> anomalies_pb2.Anomalies:
        anomalies = super()._Validate(inputs, outputs)
        if mark_missing_data(anomalies):  # rewrite what the stock executor wrote
            writer_utils.write_anomalies(
                os.path.join(outputs[labels.SCHEMA_DIFF_PATH], tfx_executor.DEFAULT_FILE_NAME), anomalies)
        return anomalies


EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
