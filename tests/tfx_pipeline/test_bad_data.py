"""Bad input data (issue 20, defect 13): a header-only CSV stops at ExampleValidator ("no examples"); a
non-UTF-8 file and an over-long cell fail before TFX starts, naming the file and where in it."""

import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

import tfx_pipeline  # noqa: F401  (environment before TFX)
from tfx_pipeline import tasks
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
    with pytest.raises(DataError, match=r"line 3 .*column 'text': a cell of 131,073 characters"):
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


# ---- CSVs read with CsvExampleGen's own rules (issue 36 items 4 and 9, issue 33 point 5) ---------------------------
def _folder(tmp_path, content: bytes, name="reviews.csv"):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / name).write_bytes(content)
    return str(data)


@pytest.mark.parametrize("content, phrases", [
    # ExampleGen keeps the third column's values in `text` (pandas saw `text.1`): trained on the wrong column.
    (b"text,label,text\ngood,1,other\n", ["line 1", "'text' more than once"]),
    # A BOM becomes part of the first column's name ('\ufefftext'): "Column is completely missing".
    (b"\xef\xbb\xbftext,label\ngood,1\n", ["line 1", "byte-order mark"]),
    # ExampleGen splits the header on commas without CSV quoting: the column is named '"text"'.
    (b'"text","label"\ngood,1\n', ["line 1", "quote"]),
    (b"text, label\ngood,1\n", ["line 1", "' label'", "spaces"]),
    (b"text,label,\ngood,1,\n", ["line 1", "column 3 has no name"]),
    # A ragged row: ExampleGen's "Columns do not match" with the raw bytes, no line.
    (b"text,label\ngood,1\nbad,0,extra\n", ["line 3", "3 cells", "2 columns"]),
    # A stray quote that another quote later closes: Beam's "new-line character seen in unquoted field".
    (b'text,label\ngood,1\na 5" screen,0\nfine,1\nsay "hi,1\nok,0\n', ["line 3", "lines 3-5", "quote"]),
    # A stray quote never closed: "Csv record had unbalanced quotes" with no line.
    (b'text,label\ngood,1\na 5" screen,0\nfine,1\n', ["line 3", "never closed"]),
    # Text after a closing quote: ExampleGen silently reads "abc"def as abcdef.
    (b'text,label\n"abc"def,1\n', ["line 2", "after the closing quote"]),
])
def test_a_csv_example_gen_would_reject_or_misread_is_refused_naming_file_and_line(tmp_path, content, phrases):
    data = _folder(tmp_path, content)
    with pytest.raises(DataError) as error:
        check_csv_folder(data)
    message = str(error.value)
    assert "reviews.csv" in message
    for phrase in phrases:
        assert phrase in message, (phrase, message)


def test_what_csv_example_gen_reads_well_passes(tmp_path):
    # Quoted cells with commas, doubled quotes and newlines; CRLF line ends; a blank line (ExampleGen skips it).
    data = _folder(tmp_path, b'text,label\r\n"a, b",1\r\n"say ""hi""\nthere",0\r\n\r\nplain,1\r\n')
    assert check_csv_folder(data) == 3


def test_every_file_example_gen_reads_must_share_the_header(tmp_path):
    data = _folder(tmp_path, b"text,label\ngood,1\n")
    _folder(tmp_path, b"review,label\nfine,0\n", name="more.csv")
    with pytest.raises(DataError, match=r"reviews.csv: its header 'text', 'label' differs from .*more.csv's "
                                        r"'review', 'label'"):
        check_csv_folder(data)
    os.remove(os.path.join(data, "more.csv"))
    _folder(tmp_path, b"notes\n", name="README.txt")  # CsvExampleGen reads every file of the folder
    with pytest.raises(DataError, match="README.txt"):
        check_csv_folder(data)


def test_duplicate_columns_stop_the_cli_before_any_component(tmp_path, capsys):
    data = _folder(tmp_path, b"text,label,text\ngood,1,other\n")
    assert main(["run", "--data-root", data, "--root", str(tmp_path / "work")]) == 1
    err = capsys.readouterr().err
    assert "reviews.csv" in err and "'text' more than once" in err
    assert not os.path.exists(tmp_path / "work" / "metadata.sqlite")


@pytest.mark.parametrize("task", tasks.TASKS)
def test_a_missing_column_fails_before_any_component_for_every_task(task, tmp_path, capsys):
    """token_classification used to fail with an uncaught pandas `ValueError: Usecols do not match`; the others
    inside TFX ("Column is completely missing"), after the components started."""
    data = _folder(tmp_path, b"unrelated,other\nsome text,1\n")
    code = main(["run", "--task", task, "--data-root", data, "--root", str(tmp_path / "work"),
                 "--skip-infra-validation"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "FAILED" in err and "reviews.csv: no column" in err and "'unrelated', 'other'" in err
    assert "Traceback" not in err
    assert not os.path.exists(tmp_path / "work" / "metadata.sqlite")
