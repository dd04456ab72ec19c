"""Each run reports its own execution (issue 36 item 5, issue 33 point 4): the summary is the run this process
started, read from ML Metadata by its run id, never another run's; a reused --root prints nothing of the run
before; a second run on a --root in use is refused (a lock that a dead run does not hold).

The ML Metadata store here is written by hand, as TFX records a run: a `pipeline` context, one `pipeline_run`
context per run (its name the run id) under it, and each execution in its run's and its node's contexts.
"""

import os

import ml_metadata as mlmd
import pytest
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2

import tfx_pipeline  # noqa: F401  (environment before TFX)
from tfx_pipeline import cli
from tfx_pipeline.data_checks import DataError
from tfx_pipeline.pipeline import PipelineConfig

PIPELINE = "tfmodels_text_classifier"


def _store(path):
    config = mlmd_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = mlmd_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return mlmd.MetadataStore(config)


def _context(store, kind, name):
    type_id = store.put_context_type(mlmd_pb2.ContextType(name=kind))
    found = store.get_context_by_type_and_name(kind, name)
    return found.id if found else store.put_contexts([mlmd_pb2.Context(type_id=type_id, name=name)])[0]


def record_run(metadata_path, run_id, anomaly=None, pipeline=PIPELINE):
    """Records a run of CsvExampleGen and ExampleValidator; `anomaly` (a description) makes the validator report
    it on `label` in the train split."""
    store = _store(metadata_path)
    pipeline_id, run = _context(store, "pipeline", pipeline), _context(store, "pipeline_run", run_id)
    store.put_parent_contexts([mlmd_pb2.ParentContext(child_id=run, parent_id=pipeline_id)])
    for node in ("CsvExampleGen", "ExampleValidator"):
        execution = mlmd_pb2.Execution(type_id=store.put_execution_type(mlmd_pb2.ExecutionType(name=node)),
                                       last_known_state=mlmd_pb2.Execution.COMPLETE)
        outputs = []
        if node == "ExampleValidator":
            uri = os.path.join(os.path.dirname(metadata_path), run_id.replace(":", "_"), "anomalies")
            os.makedirs(os.path.join(uri, "Split-train"))
            found = anomalies_pb2.Anomalies()
            if anomaly:
                found.anomaly_info["label"].description = anomaly
            with open(os.path.join(uri, "Split-train", "SchemaDiff.pb"), "wb") as f:
                f.write(found.SerializeToString())
            artifact = mlmd_pb2.Artifact(
                type_id=store.put_artifact_type(mlmd_pb2.ArtifactType(name="ExampleAnomalies")), uri=uri)
            outputs.append((artifact, mlmd_pb2.Event(type=mlmd_pb2.Event.OUTPUT)))
        node_context = _context(store, "node", f"{pipeline}.{node}")
        store.put_execution(execution, outputs, [store.get_contexts_by_id([run])[0],
                                                 store.get_contexts_by_id([node_context])[0]])


@pytest.fixture
def config(tmp_path):
    return PipelineConfig(data_root=str(tmp_path / "data"), pipeline_root=str(tmp_path / "root"),
                          metadata_path=str(tmp_path / "metadata.sqlite"), serving_model_dir=str(tmp_path / "s"),
                          pipeline_name=PIPELINE)


def _fake_runs(monkeypatch, effect):
    """Replaces the pipeline's run with `effect(config, run_id)`."""
    from tfx_pipeline import runners

    calls = []

    def run(config, runner="local", master=None, run_id=None):
        calls.append(run_id)
        effect(config, run_id)

    monkeypatch.setattr(runners, "run", run)
    return calls


def test_a_run_that_fails_before_recording_prints_nothing_of_the_run_before(config, monkeypatch, capsys):
    record_run(config.metadata_path, "2026-01-01T00:00:00", anomaly="Expected data of type: INT")

    def fail(config, run_id):
        raise DataError("data.csv: line 3: a bad row")

    _fake_runs(monkeypatch, fail)
    outcome = cli.run_and_summarise(config, "local")
    out, err = capsys.readouterr()
    assert outcome.exit_code == cli.EXIT_FAILED and outcome.summary is None
    assert "FAILED: data.csv: line 3: a bad row" in err
    assert "DATA ANOMALIES" not in out + err and "2026-01-01" not in out + err
    assert "Pipeline time: 0.0 s" not in out


def test_the_summary_is_this_runs_own_even_when_another_run_recorded_later(config, monkeypatch, capsys):
    """What went wrong: a good run printed another run's "DATA ANOMALIES ... nothing was trained", exit 2."""
    record_run(config.metadata_path, "2026-01-01T00:00:00", anomaly="old")

    def run_then_another_records(config, run_id):
        record_run(config.metadata_path, run_id)  # this run: clean data
        record_run(config.metadata_path, "9999-12-31T00:00:00", anomaly="someone else's")  # newer, not ours

    calls = _fake_runs(monkeypatch, run_then_another_records)
    outcome = cli.run_and_summarise(config, "local")
    out = capsys.readouterr().out
    assert calls and calls[0] and outcome.summary.run_id == calls[0]
    assert outcome.summary.anomalies == {} and "DATA ANOMALIES" not in out
    assert outcome.exit_code != cli.EXIT_ANOMALIES
    assert f"Pipeline run {calls[0]}:" in out and "Pipeline time:" in out


def test_a_second_run_on_a_root_in_use_is_refused(config, monkeypatch, capsys):
    calls = _fake_runs(monkeypatch, lambda config, run_id: record_run(config.metadata_path, run_id))
    with cli.run_lock(config.metadata_path):  # another run holds the root
        outcome = cli.run_and_summarise(config, "local")
    err = capsys.readouterr().err
    assert outcome.exit_code == cli.EXIT_FAILED and not calls
    assert f"pid {os.getpid()}" in err and "another run" in err and "--root" in err
    # Released on exit: the next run goes ahead.
    assert cli.run_and_summarise(config, "local").summary.run_id == calls[0]


def test_a_lock_left_by_a_dead_run_does_not_block(config, monkeypatch):
    os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
    with open(config.metadata_path + ".lock", "w") as f:
        f.write("pid 999999999 on a crashed host\n")  # the file stays after a crash; the kernel's lock does not
    calls = _fake_runs(monkeypatch, lambda config, run_id: record_run(config.metadata_path, run_id))
    assert cli.run_and_summarise(config, "local").summary.run_id == calls[0]


def test_run_summary_reads_the_run_it_is_asked_for(config):
    from tfx_pipeline.run_summary import latest_run_summary, run_summary

    record_run(config.metadata_path, "2026-01-01T00:00:00", anomaly="mine")
    record_run(config.metadata_path, "2026-01-02T00:00:00")
    assert run_summary(config.metadata_path, "2026-01-01T00:00:00").anomalies == {"train": ["label: mine"]}
    assert latest_run_summary(config.metadata_path, PIPELINE).run_id == "2026-01-02T00:00:00"
    with pytest.raises(LookupError, match="no run 2027"):
        run_summary(config.metadata_path, "2027")


def test_a_problem_found_in_both_splits_is_printed_once():
    """The bad rows are found in the input files, so both splits report the same lines."""
    from tfx_pipeline.run_summary import RunSummary

    rows = "label: 1 bad rows: data.csv line 3 (data row 2) 'x,': label is empty"
    summary = RunSummary(run_id="r", components={}, anomalies={"eval": [rows], "train": [rows, "text: odd"]},
                         metrics={}, blessed=None, pushed_destination=None, model_run_dir=None)
    text = summary.format()
    assert text.count("data.csv line 3") == 1 and f"  [eval, train] {rows}" in text and "  [train] text: odd" in text


def test_the_demo_does_not_wipe_a_root_another_run_is_using(tmp_path):
    from tfx_pipeline import demo

    root = str(tmp_path / "demo")
    demo.prepare_root(root, reuse=False)  # a root the demo made (its marker inside)
    open(os.path.join(root, "metadata.sqlite"), "w").close()
    with cli.run_lock(os.path.join(root, "metadata.sqlite")), pytest.raises(cli.RootInUse, match="another run"):
        demo.prepare_root(root, reuse=False)
    assert os.path.exists(os.path.join(root, "metadata.sqlite"))
    demo.prepare_root(root, reuse=False)  # once it is free, the demo starts afresh
    assert not os.path.exists(os.path.join(root, "metadata.sqlite"))
