"""The expected schema: what ExampleValidator holds the data to."""

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from tfx_pipeline.schema import csv_columns, expected_schema, write_schema


def test_declared_columns_are_required_and_typed():
    schema = expected_schema(["review"], "sentiment", 3, {"source": schema_pb2.BYTES})
    features = {f.name: f for f in schema.feature}
    assert features["review"].type == schema_pb2.BYTES
    assert features["sentiment"].type == schema_pb2.INT
    for name in ("review", "sentiment"):
        assert features[name].presence.min_fraction == 1.0
        assert [d.size for d in features[name].shape.dim] == [1]
    assert (features["sentiment"].int_domain.min, features["sentiment"].int_domain.max) == (0, 2)
    # An extra column is declared (else "new column" anomaly) but unconstrained.
    assert features["source"].type == schema_pb2.BYTES and not features["source"].HasField("presence")


def test_csv_columns_types(csv_folder):
    directory = csv_folder([("good", 1, 0.5), ("bad", 0, 1.5)], columns=("t", "y", "w"))
    assert csv_columns(directory) == {"t": schema_pb2.BYTES, "y": schema_pb2.INT, "w": schema_pb2.FLOAT}


def test_write_schema_path_follows_content(tmp_path):
    first = write_schema(expected_schema(["text"], "label", 2), str(tmp_path))
    again = write_schema(expected_schema(["text"], "label", 2), str(tmp_path))
    other = write_schema(expected_schema(["text"], "label", 3), str(tmp_path))
    assert first == again != other
    parsed = schema_pb2.Schema()
    text_format.Parse(open(first).read(), parsed)
    assert [f.name for f in parsed.feature] == ["text", "label"]


def test_csv_columns_types_as_csv_example_gen_infers_them(csv_folder):
    """ExampleGen types a column from every row (int < float < string; a blank cell is no value); pandas read the
    first 1,000 rows and made an integer column with a blank a float one: the declared type then differed from
    the data's, an anomaly on a column the model never reads."""
    rows = [("good", 1, i) for i in range(1200)]
    rows[3] = ("blank id", 0, "")
    rows[1100] = ("late", "x", 5)
    directory = csv_folder(rows, columns=("t", "y", "id"))
    assert csv_columns(directory) == {"t": schema_pb2.BYTES, "y": schema_pb2.BYTES, "id": schema_pb2.INT}
