"""Bad input data (issue 20, defect 13): a header-only CSV stops at ExampleValidator ("no examples"); a
non-UTF-8 file and an over-long cell fail before TFX starts, naming the file and where in it."""

import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

import tfx_pipeline  # noqa: F401  (environment before TFX)
from tfx_pipeline.__main__ import main
from tfx_pipeline.data_checks import MAX_CELL_CHARS, DataError, check_csv_folder


def test_header_only_split_is_an_anomaly_at_the_example_validator(tmp_path):
    from tfx.components.example_validator import labels
    from tfx.types import standard_component_specs as specs

    from tfx_pipeline import example_validator
    from tfx_pipeline.schema import expected_schema

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.datasets.add(num_examples=0)  # what StatisticsGen writes for a split of a header-only CSV
    anomalies = example_validator.Executor()._Validate(
        {specs.STATISTICS_KEY: stats, specs.SCHEMA_KEY: expected_schema(["text"], "label", 2),
         specs.CUSTOM_VALIDATION_CONFIG_KEY: None},
        {labels.SCHEMA_DIFF_PATH: str(tmp_path)})
    assert anomalies.data_missing and "no examples" in anomalies.dataset_anomaly_info.description
    written = anomalies_pb2.Anomalies.FromString((tmp_path / "SchemaDiff.pb").read_bytes())
    assert written.HasField("dataset_anomaly_info")  # what blesses (or not) and what the run summary prints


def test_the_pipeline_uses_that_validator(tmp_path, csv_folder):
    from tfx_pipeline import example_validator
    from tfx_pipeline.pipeline import PipelineConfig, create_pipeline

    config = PipelineConfig(data_root=csv_folder([("good", 1)]), pipeline_root=str(tmp_path / "root"),
                            metadata_path=str(tmp_path / "m.sqlite"), serving_model_dir=str(tmp_path / "s"))
    nodes = {node.id: node for node in create_pipeline(config).components}
    assert nodes["ExampleValidator"].executor_spec.executor_class is example_validator.Executor


def test_non_utf8_csv_names_file_line_and_byte(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "reviews.csv").write_bytes(b"text,label\ngood film,1\nbad \xe9 film,0\n")
    with pytest.raises(DataError, match=r"reviews.csv: not UTF-8 at line 3, byte 27 .*0xe9"):
        check_csv_folder(str(data))
    # The CLI says so, before any TFX component ran (it used to say "Cannot connect sqlite3 database").
    assert main(["run", "--data-root", str(data), "--root", str(tmp_path / "work")]) == 1
    err = capsys.readouterr().err
    assert "not UTF-8 at line 3" in err and "sqlite" not in err
    assert not os.path.exists(tmp_path / "work" / "metadata.sqlite")


def test_over_long_cell_names_row_and_column(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "reviews.csv").write_text(f"text,label\nfine,1\n{'x' * (MAX_CELL_CHARS + 1)},0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column 'text': a cell of 131,073 characters"):
        check_csv_folder(str(data))
    (data / "reviews.csv").write_text(f"text,label\n{'x' * MAX_CELL_CHARS},0\n", encoding="utf-8")
    assert check_csv_folder(str(data)) == 1  # at the limit is fine


def test_header_only_and_missing_csvs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(DataError, match="no \\*.csv file"):
        check_csv_folder(str(data))
    (data / "a.csv").write_text("text,label\n")
    assert check_csv_folder(str(data)) == 0  # ExampleValidator reports it, as the e2e test shows
