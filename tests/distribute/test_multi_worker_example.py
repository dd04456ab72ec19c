"""`python -m tfmodels.examples.multi_worker`: two worker processes on localhost (`TF_CONFIG`), XLA on.

The cluster's per-step losses and final weights match one worker's on the same global batches and seed; a
worker SIGKILLed mid-epoch and the cluster restarted resume from the chief's last backup and end on the
uninterrupted run's weights. Every worker process is stopped by the launcher, also when a check fails.
"""

import json
import subprocess
import sys

import pytest

TOLERANCE = 1e-5  # float32 all-reduce sums in another order than one worker's batch mean


def _launch(tmp_path, *flags):
    result = subprocess.run([sys.executable, "-m", "tfmodels.examples.multi_worker", "--output", str(tmp_path),
                             *flags], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.e2e
def test_classifier_matches_one_worker_and_resumes_after_a_killed_worker(tmp_path):
    report = _launch(tmp_path, "--workers", "2", "--steps", "20", "--steps-per-epoch", "5",
                     "--kill-worker-at-step", "7")
    assert report["workers"] == 2 and report["replicas"] == 2
    assert report["max_abs_loss_diff_vs_single_worker"] < TOLERANCE
    assert report["final_weights_max_abs_diff_vs_single_worker"] < TOLERANCE
    # Killed at step 7 (in the second epoch): the restart resumes from the backup after epoch 1, step 5.
    assert report["restarts"] == 1 and report["resumed_from_step"] == 5 and report["resumed_after_kill"]
    assert report["max_abs_loss_diff_after_resume"] < TOLERANCE
    assert report["final_weights_max_abs_diff"] < TOLERANCE
    assert (tmp_path / "killed" / "model.keras").exists()
    assert not list(tmp_path.glob("*/backup/*")), "the chief deletes its backup when training ends"


@pytest.mark.e2e
def test_seq2seq_matches_one_worker(tmp_path):
    report = _launch(tmp_path, "--model", "seq2seq", "--workers", "2", "--steps", "10", "--steps-per-epoch",
                     "5", "--sequence-length", "16")
    assert report["max_abs_loss_diff_vs_single_worker"] < TOLERANCE
    assert report["final_weights_max_abs_diff_vs_single_worker"] < TOLERANCE
    assert report["final_loss"] < report["first_loss"]
