"""The pipeline's Beam components on Apache Flink and Apache Spark clusters (separate processes on 127.0.0.1),
through `python -m tfx_pipeline run --runner flink|spark`, against the same data on the local runner.

Every Beam output must be the same as the local run's: ExampleGen's and Transform's examples (as multisets),
StatisticsGen's exact statistics, the anomalies, the Evaluator's metrics and the blessing
(`tfx_pipeline.run_outputs`). The Trainer is not a Beam component and its model depends on the order of its
input, which a runner does not keep; so these runs train at a learning rate (1e-12) whose updates vanish in
float32, making the model the seeded initial one on every runner, and what the Evaluator computes on Beam is
then compared exactly. Each run must also leave no process of its cluster behind.
"""

import json
import os
import re
import shutil

import pytest
from testlib.pipeline import latest_summary, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    shutil.which("java") is None or shutil.which("mvn") is None,
    reason="--runner flink|spark needs Java and Maven (tools/beam_runners.sh)"),
    # Under pytest-xdist, one worker runs them in turn: one local run for both, and never two clusters (up to
    # 8 JVMs) at once on a 2-core machine.
    pytest.mark.xdist_group("beam_clusters")]

PIPELINE = "tfmodels_text_classifier"
RUN = ["--train-steps", "3", "--eval-steps", "2", "--max-seq-length", "32", "--batch-size", "8",
       "--learning-rate", "1e-12", "--min-accuracy", "0.0", "--model-name", "reviews", "--skip-infra-validation",
       "--no-xla", "--encoder", "tiny"]
COMPONENTS = ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer",
              "Evaluator", "Pusher")


def _outputs(work):
    from tfx_pipeline.run_outputs import beam_outputs

    return beam_outputs(latest_summary(work, PIPELINE))


@pytest.fixture(scope="module")
def local_outputs(tmp_path_factory, reviews):
    work = tmp_path_factory.mktemp("local")
    code, output = run_cli(work, "--data-root", str(reviews), *RUN)
    assert code == 0, output[-5000:]
    return _outputs(work)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited; only its parent has not reaped it
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.parametrize("runner, processes", [
    ("flink", {"flink-jobmanager", "flink-taskmanager0", "flink-taskmanager1", "flink-job-server"}),
    ("spark", {"spark-master", "spark-worker0", "spark-worker1", "spark-job-server"}),
])
def test_pipeline_on_a_local_cluster_gives_the_local_runs_outputs(tmp_path, reviews, local_outputs, runner,
                                                                  processes):
    from tfx_pipeline.beam_clusters import PROCESSES_FILE
    from tfx_pipeline.run_outputs import differences

    code, output = run_cli(tmp_path, "--data-root", str(reviews), "--runner", runner, *RUN,
                           *(["--strategy", "mirrored"] if runner == "flink" else []), timeout=900)
    assert code == 0, output[-5000:]
    summary = latest_summary(tmp_path, PIPELINE)
    assert {node: summary.components.get(node) for node in COMPONENTS} == {node: "executed" for node in COMPONENTS}
    assert summary.blessed is True and os.path.exists(os.path.join(summary.pushed_destination, "saved_model.pb"))

    outputs = _outputs(tmp_path)
    assert outputs["examples"]["train"]["count"] + outputs["examples"]["eval"]["count"] == 200
    assert differences(local_outputs, outputs) == []

    # The cluster was separate processes, every one of them stopped when the run ended.
    logs = tmp_path / "root" / f"{runner}-cluster-logs"
    started = json.loads((logs / PROCESSES_FILE).read_text())
    assert set(started) == processes
    assert [name for name, pid in started.items() if _alive(pid)] == []
    # The Beam components ran there: ExampleGen, StatisticsGen, Transform and the Evaluator, one job each.
    if runner == "flink":
        finished = (logs / "flink-jobmanager.log").read_text().count("switched from state RUNNING to FINISHED.")
        assert finished >= 4, (logs / "flink-jobmanager.log").read_text()[-3000:]
        for worker in ("flink-taskmanager0", "flink-taskmanager1"):
            log = (logs / f"{worker}.log").read_text()
            assert "Received task" in log, worker
            # The jobs shipped no jars (tools/beam_staging, where a JDK built it): Beam's classes were on the
            # TaskManagers' classpath, and no job waited for 152 MB of them to go through the JobManager.
            if shutil.which("javac"):
                assert "BlobClient - Downloading" not in log, worker
    else:
        # One Spark application (the local cluster's job server keeps its context), a Beam job on it each.
        master = (logs / "spark-master.log").read_text()
        assert master.count("Registered app BeamApp") == 1, master[-3000:]
        jobs = re.findall(r"SparkPipelineRunner - Job (BeamApp-\S+) finished", (logs / "spark-job-server.log").read_text())
        assert len(set(jobs)) >= 4, jobs
        for worker in ("spark-worker0", "spark-worker1"):
            assert "Asked to launch executor" in (logs / f"{worker}.log").read_text(), worker


def test_a_killed_run_stops_its_cluster(tmp_path, reviews):
    """SIGTERM to `python -m tfx_pipeline run --runner flink` once its cluster is up (what a scheduler's timeout
    sends) ends the run as an exception does, and the way out stops every process of the cluster, though
    each runs in a session of its own that the signal does not reach."""
    import signal
    import subprocess
    import time

    from testlib.pipeline import REPO, cli_command

    from tfx_pipeline.beam_clusters import PROCESSES_FILE

    started_file = tmp_path / "root" / "flink-cluster-logs" / PROCESSES_FILE
    command, env = cli_command(tmp_path, "--data-root", str(reviews), "--runner", "flink", *RUN)
    run = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def started_processes():
        try:
            return json.loads(started_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):  # not yet, or being written
            return {}

    deadline = time.monotonic() + 300
    while len(started_processes()) < 4:  # the job server, the last, has been started
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0][-3000:]
        time.sleep(0.5)
    run.send_signal(signal.SIGTERM)
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert [name for name, pid in started_processes().items() if _alive(pid)] == []
