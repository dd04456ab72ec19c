"""The schema the data must satisfy, written from the declared columns, for ImportSchemaGen.

SchemaGen infers a schema from the very data it describes: a label column with one "abc" in it is inferred as
a string column, and a label missing from some rows as an optional feature, so ExampleValidator, comparing the
data with that schema, finds nothing. The expectations are known up front (text features are strings and the
label an integer class id, all present in every row), so we state them; ExampleValidator then reports rows
with a missing label or a label of the wrong type, and the pipeline stops before Transform.
"""

import hashlib
import os
from typing import Dict, Optional, Sequence

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

SCHEMA_FILE = "schema.pbtxt"


def expected_schema(text_features: Sequence[str], label_feature: Optional[str], num_classes: int,
                    other_columns: Dict[str, int] = None, required: Dict[str, int] = None) -> schema_pb2.Schema:
    """Texts: one string per row; label: one int in [0, num_classes) per row; other columns: optional.

    `other_columns` maps further CSV columns to their `schema_pb2.FeatureType`; they are declared (a column
    missing from the schema is an anomaly) without constraints, since the model does not read them.
    `required` maps columns of other types the model reads (one value per row) to their FeatureType.
    """
    schema = schema_pb2.Schema()
    for name in text_features:
        _required(schema.feature.add(name=name, type=schema_pb2.BYTES))
    for name, feature_type in sorted((required or {}).items()):
        _required(schema.feature.add(name=name, type=feature_type))
    if label_feature is not None:  # None: every declared column is text (words and tags, for NER)
        label = schema.feature.add(name=label_feature, type=schema_pb2.INT)
        _required(label)
        label.int_domain.min, label.int_domain.max = 0, num_classes - 1
    for name, feature_type in sorted((other_columns or {}).items()):
        schema.feature.add(name=name, type=feature_type)
    return schema


def _required(feature: schema_pb2.Feature) -> None:
    feature.presence.min_fraction = 1.0
    feature.presence.min_count = 1
    feature.shape.dim.add(size=1)


def csv_columns(data_root: str) -> Dict[str, int]:
    """Column name -> FeatureType of the CSV files in `data_root`, as CsvExampleGen infers them from every row
    (`tfx_pipeline.data_checks.csv_column_types`; a column with no value at all: FLOAT, as pandas read it)."""
    from tfx_pipeline import data_checks

    kinds = {data_checks.INT: schema_pb2.INT, data_checks.STRING: schema_pb2.BYTES}
    return {name: kinds.get(kind, schema_pb2.FLOAT) for name, kind in data_checks.csv_column_types(data_root).items()}


def example_columns(data_root: str, max_records: int = 1000) -> Dict[str, int]:
    """Feature name -> FeatureType of the serialized tf.Examples in the TFRecord files of `data_root` (the first
    `max_records`; ImportExampleGen reads every file of the folder)."""
    files = sorted(path for path in tf.io.gfile.glob(os.path.join(data_root, "*")) if not tf.io.gfile.isdir(path))
    types = {}
    kinds = {"bytes_list": schema_pb2.BYTES, "int64_list": schema_pb2.INT, "float_list": schema_pb2.FLOAT}
    for record in tf.data.TFRecordDataset(files).take(max_records):
        example = tf.train.Example.FromString(record.numpy())
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            if kind:
                types.setdefault(name, kinds[kind])
    return types


def write_schema(schema: schema_pb2.Schema, directory: str) -> str:
    """Write `schema` to `<directory>/<content hash>/schema.pbtxt`; returns the path.

    ImportSchemaGen's cache key is the file path, not its content: a path per content keeps a rerun with the
    same expectations cached and makes changed expectations re-run everything downstream.
    """
    text = text_format.MessageToString(schema)
    path = os.path.join(directory, hashlib.sha256(text.encode()).hexdigest()[:16], SCHEMA_FILE)
    if not tf.io.gfile.exists(path):
        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
    return path
