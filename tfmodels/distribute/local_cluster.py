"""Worker processes on this machine, each with its own `TF_CONFIG`: what a cluster manager does, for examples
and tests (on a real cluster, Kubernetes or Vertex AI sets `TF_CONFIG` and restarts failed workers)."""

import os
import signal
import socket
import subprocess
import time
from typing import Optional, Sequence

from tfmodels.distribute.multi_worker import tf_config_for


def free_ports(count: int, host: str = "127.0.0.1") -> list:
    """`count` distinct TCP ports free on `host` now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_workers(command: Sequence[str], workers: int, log_dir: str,
                  env: Optional[dict] = None) -> list:
    """Starts `workers` copies of `command`, worker `i` with the TF_CONFIG of index `i` (none for one worker).

    Each runs in its own process group (so `stop` also ends what it started) and appends its output to
    `log_dir/worker{i}.log`. Returns the `subprocess.Popen` objects.
    """
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes = []
    for index in range(workers):
        worker_env = dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="2")
        if workers > 1:
            worker_env["TF_CONFIG"] = tf_config_for(addresses, index)
        else:
            worker_env.pop("TF_CONFIG", None)
        with open(os.path.join(log_dir, f"worker{index}.log"), "a") as log:
            processes.append(subprocess.Popen(list(command), env=worker_env, stdout=log, stderr=log,
                                              start_new_session=True))
    return processes


def wait(processes: list, timeout: float) -> list:
    """Waits until every worker has exited or one has failed (the rest then hang in a collective); returns the
    exit codes, None for a worker still running. Raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in processes) and not any(p.poll() not in (None, 0) for p in processes):
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers still running after {timeout:.0f} s")
        time.sleep(0.25)
    return [p.poll() for p in processes]


def stop(processes: list, grace: float = 10.0) -> None:
    """SIGTERM to each running worker's process group, SIGKILL after `grace` seconds."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
