"""What a run's Beam components produced, in a form two runs can be compared in: the same data through the
DirectRunner, Flink and Spark must give the same outputs (tests/tfx_pipeline/test_beam_clusters_e2e.py,
bench/beam_scale.py).

`beam_outputs(summary)` reads, for the run `summary` describes (`tfx_pipeline.run_summary`):
- ExampleGen's and Transform's examples per split, as a multiset: a runner may write other shards in
  another order, so records are compared sorted (a count and a SHA-256 of the sorted, canonically serialized
  records);
- StatisticsGen's statistics per split and feature, every exact statistic (counts, min/max, means,
  unique values, top values); the approximate ones (quantile and equal-width histograms, which depend on how a
  runner splits the data into bundles) are left out;
- ExampleValidator's anomalies, the Evaluator's metrics and blessing (as `run_summary` reads them).

`differences(a, b)` lists where two of them differ (floats compared to a relative 1e-6: sums in another order).
"""

import hashlib
import math
import os
from typing import Any, Dict, List

from tfx_pipeline.run_summary import split_name

# Approximate statistics: a sketch's result depends on the order and partitioning of its input.
APPROXIMATE_STATISTICS = ("histograms", "weighted_numeric_stats", "rank_histogram", "num_values_histogram",
                          "weighted_common_stats", "feature_list_length_histogram",
                          "weighted_string_stats")
FLOAT_TOLERANCE = 1e-6


def examples_digest(uri: str) -> Dict[str, Any]:
    """Split -> {"count", "sha256" of the sorted serialized records} for an Examples artifact at `uri`."""
    import tensorflow as tf

    digests = {}
    for split_dir in sorted(tf.io.gfile.glob(os.path.join(uri, "Split-*"))):
        files = sorted(tf.io.gfile.glob(os.path.join(split_dir, "*")))
        # Parsed and re-serialized deterministically: a tf.Example's feature map has no fixed byte order.
        records = sorted(tf.train.Example.FromString(record.numpy()).SerializeToString(deterministic=True)
                         for record in tf.data.TFRecordDataset(files, compression_type="GZIP"))
        digest = hashlib.sha256()
        for record in records:
            digest.update(len(record).to_bytes(8, "little") + record)
        digests[split_name(split_dir)] = {"count": len(records), "sha256": digest.hexdigest()}
    return digests


def statistics(uri: str) -> Dict[str, Any]:
    """Split -> feature -> its exact statistics (a nested dict) for an ExampleStatistics artifact at `uri`."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow_metadata.proto.v0 import statistics_pb2

    found = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(uri, "Split-*", "FeatureStats.pb"))):
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(tf.io.gfile.GFile(path, "rb").read())
        split = split_name(os.path.dirname(path))
        for dataset in stats.datasets:
            features = {"num_examples": dataset.num_examples}
            for feature in dataset.features:
                name = feature.path.step[0] if feature.path.step else feature.name
                features[name] = _without(json_format.MessageToDict(feature), APPROXIMATE_STATISTICS)
            found[split] = features
    return found


def _without(value, keys):
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def beam_outputs(summary) -> Dict[str, Any]:
    """The comparable outputs of the run `summary` (a `run_summary.RunSummary`) describes."""
    outputs = summary.outputs
    example_gen = next(node for node in outputs if node.endswith("ExampleGen"))
    result = {"examples": examples_digest(outputs[example_gen]["Examples"][0]),
              "statistics": statistics(outputs["StatisticsGen"]["ExampleStatistics"][0]),
              "anomalies": summary.anomalies}
    if "Transform" in outputs:
        result["transformed_examples"] = examples_digest(outputs["Transform"]["Examples"][0])
    if "Evaluator" in outputs:
        result["metrics"] = summary.metrics
        result["blessed"] = summary.blessed
    return result


def differences(a, b, path: str = "") -> List[str]:
    """Where `a` and `b` (nested dicts/lists of numbers and strings) differ, one line each; [] when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        lines = [f"{path}/{key}: only in the {'first' if key in a else 'second'}"
                 for key in sorted(set(a) ^ set(b), key=str)]
        for key in sorted(set(a) & set(b), key=str):
            lines += differences(a[key], b[key], f"{path}/{key}")
        return lines
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (x, y) in enumerate(zip(a, b)) for line in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)) or isinstance(b, float) and isinstance(a, (int, float)):
        if math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE):
            return []
    elif a == b:
        return []
    return [f"{path}: {a!r} != {b!r}"]
