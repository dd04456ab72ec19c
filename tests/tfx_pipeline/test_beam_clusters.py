"""The flink/spark runner's set-up and flags, without starting a cluster (tests/tfx_pipeline/
test_beam_clusters_e2e.py starts them)."""

import os
import shutil
import subprocess

import pytest

from tfx_pipeline import beam_clusters
from tfx_pipeline.__main__ import main


def test_fetch_tool_without_java_says_what_to_install(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "cat"):  # all the script needs before its checks
        os.symlink(shutil.which(tool), bin_dir / tool)
    result = subprocess.run([shutil.which("bash"), beam_clusters.FETCH_TOOL, "flink"], capture_output=True,
                            text=True, env={"PATH": str(bin_dir), "TFMODELS_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 2
    assert "'java' not found" in result.stderr and "Java 17" in result.stderr and "Maven" in result.stderr
    assert not (tmp_path / "cache").exists()  # nothing half-fetched


def test_fetch_tool_refuses_an_unknown_runner():
    result = subprocess.run(["bash", beam_clusters.FETCH_TOOL, "storm"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown runner 'storm'" in result.stderr


def test_portable_runner_args_checks_its_arguments():
    with pytest.raises(ValueError, match="runner must be one of"):
        with beam_clusters.portable_runner_args("local"):
            pass
    with pytest.raises(ValueError, match="workers must be >= 1"):
        with beam_clusters.portable_runner_args("spark", workers=0):
            pass


def test_a_failed_runs_work_directory_keeps_its_logs_but_not_the_jar_copies(tmp_path):
    """What a failed run leaves: Flink's blob stores and Spark's copied jars go (hundreds of MB a run), the
    executors' logs and the cluster's settings stay."""
    kept = [tmp_path / "flink-conf" / "flink-conf.yaml", tmp_path / "worker0" / "app-1" / "0" / "stderr"]
    dropped = [tmp_path / "blobStore-1" / "job_2" / "blob_p-3", tmp_path / "worker0" / "app-1" / "0" / "beam.jar"]
    for path in kept + dropped:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    beam_clusters._drop_jar_copies(str(tmp_path))
    assert [path.exists() for path in kept] == [True, True]
    assert [path.exists() for path in dropped] == [False, False]
    assert not (tmp_path / "blobStore-1").exists()


@pytest.mark.parametrize("flags, message", [
    (["--flink-master", "localhost:8081"], "--flink-master: needs --runner flink, got --runner local"),
    (["--runner", "flink", "--spark-master", "spark://h:7077"], "--spark-master: needs --runner spark"),
    (["--runner", "spark", "--spark-master", "h:7077"], "--spark-master: a spark://host:port URL"),
])
def test_cluster_flags_are_checked_before_anything_runs(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--root", str(tmp_path), *flags])
    assert exit_info.value.code == 1
    assert message in capsys.readouterr().err
    assert not os.listdir(tmp_path)
