"""`ServerProcess`: `python -m serving.server` in a fresh process, started, awaited and stopped in one place.

    with ServerProcess(["--model_name=m", "--model_base_path=/models/m"], model_name="m", rest=True) as server:
        GrpcClient(server.grpc_target) ...; RestClient(server.rest_url) ...

Entering starts the child with `--port=0 --port_file=...` (gRPC on a free port the child reports in that
file once it listens; REST, when asked for, on a port picked here), then waits until `model_name` has a version
AVAILABLE according to the server itself (REST `GET /v1/models/NAME`, or gRPC GetModelStatus without REST).
The child's stdout and stderr go to a log file; `log_tail()` gives its end for error messages. Leaving (also on
an exception) sends SIGTERM, then SIGKILL after `stop_timeout` seconds. This module imports no TensorFlow.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ServerProcessError(RuntimeError):
    """The server process exited, or did not get its model AVAILABLE in time; the message has its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (another process may still take it before it is bound)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """A `python -m serving.server ARGS` child process (see the module docstring).

    Args:
        args: server flags besides `--port`, `--rest_api_port` and `--port_file`.
        model_name: the model whose availability entering waits for (None: only wait until it listens).
        rest: also serve REST (on a free port); `rest_port` / `rest_url` tell where.
        log_path: where the child's output goes (default: a temporary file, deleted when the server exits with
            status 0 and kept for inspection otherwise; `log_tail` still answers after the deletion).
        start_timeout / stop_timeout: seconds to wait for AVAILABLE / for exit after SIGTERM.
        env: extra environment for the child (TF_CPP_MIN_LOG_LEVEL=2 and PYTHONPATH=repo are set).
    """

    def __init__(self, args: Sequence[str], model_name: Optional[str] = None, rest: bool = False,
                 log_path: Optional[str] = None, start_timeout: float = 300.0, stop_timeout: float = 30.0,
                 env: Optional[Dict[str, str]] = None, host: str = "127.0.0.1"):
        self.args, self.model_name, self.rest, self.host = list(args), model_name, rest, host
        self.start_timeout, self.stop_timeout, self.extra_env = start_timeout, stop_timeout, env or {}
        self.log_path = log_path
        self.process: Optional[subprocess.Popen] = None
        self.grpc_port: Optional[int] = None
        self.rest_port: Optional[int] = None
        self.exit_code: Optional[int] = None
        self._log = None
        self._own_log = log_path is None  # a temporary log we made (and clean up after a clean exit)
        self._final_log: Optional[str] = None  # the log's text once a clean exit has deleted the file

    # ---- where it listens ------------------------------------------------------------------------------------
    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process else None

    # ---- start -------------------------------------------------------------------------------------------------
    def start(self) -> "ServerProcess":
        """Start the child and wait for it (once: a started ServerProcess may still be used in `with`)."""
        if self.process is not None:
            return self
        if self.log_path is None:
            handle, self.log_path = tempfile.mkstemp(prefix="serving-", suffix=".log")
            os.close(handle)
        port_file = self.log_path + ".ports.json"
        if os.path.exists(port_file):
            os.remove(port_file)
        command = [sys.executable, "-m", "serving.server", "--port=0", f"--port_file={port_file}", *self.args]
        if self.rest:
            command.append(f"--rest_api_port={free_port(self.host)}")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        try:
            deadline = time.monotonic() + self.start_timeout
            ports = self._wait(lambda: _read_json(port_file), deadline, "listen")
            self.grpc_port, self.rest_port = ports["grpc_port"], ports.get("rest_port")
            if self.model_name is not None:
                self._wait(self._model_available, deadline, f"get model {self.model_name} AVAILABLE")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, probe, deadline: float, what: str):
        while True:
            value = probe()
            if value:
                return value
            if self.process.poll() is not None:
                raise ServerProcessError(f"the server exited with status {self.process.returncode} before it "
                                         f"did {what}; log {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServerProcessError(f"the server did not {what} within {self.start_timeout:.0f} s; "
                                         f"log {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.1)

    def _model_available(self) -> bool:
        return "AVAILABLE" in self.model_states()

    def model_states(self) -> list:
        """The states of `model_name`'s versions, as the server reports them ([] while it cannot answer)."""
        if self.rest_port:
            url = f"{self.rest_url}/v1/models/{urllib.parse.quote(self.model_name, safe='')}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    document = json.loads(response.read())
            except (urllib.error.URLError, OSError, ValueError):
                return []
            return [s.get("state") for s in document.get("model_version_status", [])]
        import grpc  # gRPC only when there is no REST port; the client brings in TensorFlow

        from serving.client import GrpcClient

        try:
            with GrpcClient(self.grpc_target, timeout=5, max_attempts=1) as client:
                return [s["state"] for s in client.status(self.model_name)]
        except grpc.RpcError:
            return []

    # ---- output and stop ---------------------------------------------------------------------------------------
    def log_tail(self, chars: int = 3000) -> str:
        if self._final_log is not None:
            return self._final_log[-chars:]
        if self._log is not None and not self._log.closed:
            self._log.flush()
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL after `stop_timeout`; returns the exit status (idempotent)."""
        if self.process is None or self.exit_code is not None:
            return self.exit_code
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.exit_code = self.process.returncode
        self._log.close()
        _remove(self.log_path + ".ports.json")
        if self._own_log and self.exit_code == 0:
            self._final_log = self.log_tail(chars=10 ** 7)
            _remove(self.log_path)
        return self.exit_code

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
