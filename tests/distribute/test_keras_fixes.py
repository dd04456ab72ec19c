"""`tfmodels.distribute.keras_fixes` is still needed, and does its job.

Two worker processes (`TF_CONFIG` on localhost) run `tests/distribute/mwms_probe.py`, which adds the fixes one
at a time: without each fix Keras' own `fit` under `MultiWorkerMirroredStrategy` must still fail as the module's
docstring says for every fix that `keras_fixes.applicable()` names for the running Keras (when one of these
asserts fails, upstream changed: narrow that fix's `KERAS_VERSIONS`), and with all of them `fit` on dict inputs
with XLA trains to the losses of one worker. Run at both ends of the supported range (Keras 3.12 and 3.15).
"""

import json
import pathlib
import sys

import pytest

from tfmodels.distribute import keras_fixes, local_cluster

PROBE = pathlib.Path(__file__).with_name("mwms_probe.py")
UPSTREAM_ERRORS = {
    "symbolic_build": "with an unsupported type (<class 'dict'>) to a Tensor",
    "scalar_logs": "Invalid reduction dimension 0 for input with 0 dimensions",
    "cpu_xla_collectives": "Collectives are not yet implemented for CPU devices when compiling with XLA",
}


def _run_probe(workers, log_dir):
    processes = local_cluster.start_workers([sys.executable, str(PROBE)], workers, str(log_dir))
    try:
        codes = local_cluster.wait(processes, timeout=300)
    finally:
        local_cluster.stop(processes)
    logs = [(log_dir / f"worker{i}.log").read_text() for i in range(workers)]
    assert codes == [0] * workers, "\n\n".join(log[-3000:] for log in logs)
    return [json.loads(log.strip().splitlines()[-1]) for log in logs]


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    cluster = _run_probe(2, tmp_path_factory.mktemp("cluster"))
    single = _run_probe(1, tmp_path_factory.mktemp("single"))[0]
    return cluster, single


def test_every_fix_has_its_upstream_error():
    assert set(UPSTREAM_ERRORS) == set(keras_fixes.FIXES)


def test_the_running_keras_is_a_checked_one_and_the_fixes_that_apply_are_named():
    # Both ends of the supported range run this file (make test, make test-newest).
    assert keras_fixes.is_checked(), keras_fixes.describe()
    assert (
        keras_fixes.applicable("3.12.4")
        == keras_fixes.applicable("3.15.1")
        == list(keras_fixes.FIXES)
    )
    assert keras_fixes.describe("3.15.1") == (
        "Keras 3.15.1: checked; fixes that apply: symbolic_build, scalar_logs, cpu_xla_collectives"
    )
    assert "not checked" in keras_fixes.describe("3.16.0")
    assert keras_fixes.applicable("3.16.0") == list(
        keras_fixes.FIXES
    )  # unknown Keras: keep them all


@pytest.mark.parametrize("fix", list(UPSTREAM_ERRORS))
def test_upstream_fit_still_fails_without_each_fix_that_applies(probes, fix):
    cluster, _ = probes
    needed = fix in keras_fixes.applicable()
    for worker in cluster:
        assert (UPSTREAM_ERRORS[fix] in worker[fix]["status"]) == needed, (
            keras_fixes.describe(),
            worker[fix]["status"],
        )


def test_one_worker_needs_no_fix(probes):
    _, single = probes
    assert all(single[fix]["status"] == "ok" for fix in UPSTREAM_ERRORS), single


def test_fixed_fit_with_xla_matches_one_worker(probes):
    cluster, single = probes
    for worker in cluster:
        assert worker["all"]["status"] == "ok", worker["all"]["status"]
        assert worker["all"]["losses"] == pytest.approx(single["all"]["losses"], abs=1e-6)
    assert single["all"]["losses"][-1] < single["all"]["losses"][0]
