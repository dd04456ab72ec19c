"""BeamDagRunner with Beam's DirectRunner in multi-processing mode, through the CLI's --runner/--beam-arg.

The data has a row without a label, so the run stops after ExampleValidator: ExampleGen and StatisticsGen
(the Beam-heavy part of that path) run on worker processes, and the test stays short.
"""

import pytest
from testlib.pipeline import run_cli

pytestmark = pytest.mark.e2e


def test_beam_dag_runner_with_multi_processing_direct_runner(tmp_path, csv_folder):
    rows = [(f"review number {i} was {'good' if i % 2 else 'bad'}", i % 2) for i in range(40)]
    rows[5] = ("a review whose label is missing", "")
    data = csv_folder(rows)
    work = tmp_path / "work"
    code, output = run_cli(work, "--runner", "beam", "--data-root", data,
                           "--beam-arg=--direct_running_mode=multi_processing", "--beam-arg=--direct_num_workers=2",
                           timeout=600)
    assert code == 2, output[-5000:]

    from tfx_pipeline.run_summary import latest_run_summary

    summary = latest_run_summary(str(work / "metadata.sqlite"), "tfmodels_text_classifier")
    for node in ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator"):
        assert summary.components[node] == "executed", summary.components
    assert any(problem.startswith("label:") for problems in summary.anomalies.values() for problem in problems)
    # The worker processes really ran: Beam's multi-processing runner logs its workers.
    assert "multi_processing" in output or "worker" in output.lower(), output[-3000:]
