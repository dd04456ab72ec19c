"""`ModelServer`: a TF Serving-compatible model server, in process or as `python -m serving.server`.

It serves the numeric version directories under each model's base path over gRPC (PredictionService,
ModelService) and REST, polls the base paths for new versions, and optionally batches requests and exports
Prometheus metrics, taking the flags of `tensorflow_model_server`.
"""

import sys

if __name__ == "__main__":  # answer --help and flag errors before TensorFlow loads (and prints its noise)
    from serving.flags import parse_args as _parse_args

    _parse_args()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402
from typing import Optional  # noqa: E402

import grpc  # noqa: E402

from serving import deadlines, inference, model_config, protos, warmup  # noqa: E402
from serving.api import ServingApi  # noqa: E402
from serving.batching import BatchingOptions, BatchScheduler  # noqa: E402
from serving.errors import ServingError, deadline_exceeded  # noqa: E402
from serving.flags import (  # noqa: E402
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_STRING_BYTES,
    DEFAULT_SHUTDOWN_GRACE_SECONDS,
    parse_args,
)
from serving.grpc_service import add_services  # noqa: E402
from serving.manager import (  # noqa: E402
    DEFAULT_LOAD_RETRY_INTERVAL_SECONDS,
    DEFAULT_MAX_NUM_LOAD_RETRIES,
    ServableManager,
)
from serving.metrics import DEFAULT_PATH, ServerMetrics  # noqa: E402
from serving.servable import Servable  # noqa: E402

log = logging.getLogger("serving.server")

# After the shutdown grace period, how long cancelled requests get to send their answers.
CANCELLED_ANSWER_SECONDS = 2.0
# TF Serving accepts messages up to INT_MAX bytes.
MAX_MESSAGE_BYTES = 2 ** 31 - 1


def batching_options_from_file(path: str) -> BatchingOptions:
    """BatchingOptions from a `--batching_parameters_file` (text-format BatchingParameters)."""
    return BatchingOptions.from_proto(protos.parse_text(protos.read_text(path), protos.BatchingParameters,
                                                        "Invalid batching parameters file"))


def prometheus_path_from_file(path: str) -> Optional[str]:
    """The metrics path a `--monitoring_config_file` enables (None when Prometheus is off)."""
    config = protos.parse_text(protos.read_text(path), protos.MonitoringConfig, "Invalid monitoring config file")
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or DEFAULT_PATH


class ModelServer:
    """A model server over SavedModel version directories.

    Ports: 0 picks a free port; `rest_api_port=None` turns REST off. Use as a context manager or call
    `start()` / `stop()`; `grpc_port` and `rest_port` tell where it listens.
    """

    def __init__(self, model_base_path: Optional[str] = None, model_name: str = "default",
                 model_config_file: Optional[str] = None, port: int = 0, rest_api_port: Optional[int] = 0,
                 host: str = "127.0.0.1", enable_batching: bool = False,
                 batching_parameters_file: Optional[str] = None,
                 batching_options: Optional[BatchingOptions] = None,
                 monitoring_config_file: Optional[str] = None, prometheus_path: Optional[str] = None,
                 enable_model_warmup: bool = True, file_system_poll_wait_seconds: float = 1.0,
                 model_config_file_poll_wait_seconds: float = 0.0, grpc_max_workers: int = 64,
                 grpc_socket_path: Optional[str] = None, rest_api_num_threads: int = 16,
                 rest_api_timeout_in_ms: int = 30000, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
                 enable_grpc_healthcheck_service: bool = False,
                 shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE_SECONDS,
                 max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES,
                 load_retry_interval_seconds: float = DEFAULT_LOAD_RETRY_INTERVAL_SECONDS,
                 max_string_bytes: Optional[int] = DEFAULT_MAX_STRING_BYTES,
                 xla_cpu_compilation_enabled: bool = True):
        if (model_base_path is None) == (model_config_file is None):
            raise ValueError("Give exactly one of model_base_path and model_config_file")
        self.model_base_path, self.model_name = model_base_path, model_name
        self.model_config_file = model_config_file
        self.host, self._port, self._rest_api_port = host, port, rest_api_port
        if enable_batching and batching_options is None:
            batching_options = (batching_options_from_file(batching_parameters_file)
                                if batching_parameters_file else BatchingOptions())
        self.batching_options = batching_options if enable_batching else None
        if monitoring_config_file:
            prometheus_path = prometheus_path_from_file(monitoring_config_file)
        self.prometheus_path = prometheus_path
        self.enable_model_warmup = enable_model_warmup
        self.xla_cpu_compilation_enabled = xla_cpu_compilation_enabled
        self.file_system_poll_wait_seconds = file_system_poll_wait_seconds
        self.model_config_file_poll_wait_seconds = model_config_file_poll_wait_seconds
        self.grpc_max_workers = grpc_max_workers
        self.grpc_socket_path = grpc_socket_path
        self.rest_api_num_threads, self.rest_api_timeout_in_ms = rest_api_num_threads, rest_api_timeout_in_ms
        self.max_request_bytes = max_request_bytes
        self.enable_grpc_healthcheck_service = enable_grpc_healthcheck_service
        self.shutdown_grace_seconds = shutdown_grace_seconds

        self.metrics = ServerMetrics()
        self.manager = ServableManager(self._load_servable, self._unload_servable,
                                       max_num_load_retries=max_num_load_retries,
                                       load_retry_interval_seconds=load_retry_interval_seconds)
        self.api = ServingApi(self.manager, self.metrics, self.manager.apply_config,
                              max_request_bytes=max_request_bytes, max_string_bytes=max_string_bytes)
        self._scheduler: Optional[BatchScheduler] = None
        self._queues = {}  # id(servable) -> batch queues of its signatures
        self._grpc_server = None
        self._rest_server = None
        self._stop_event = threading.Event()
        self._threads = []
        self._config_text = ""  # the model config last applied, to notice when the file changes
        self._config_error = None  # the last config-file error logged, so that a poll logs it only once
        self.grpc_port: Optional[int] = None
        self.rest_port: Optional[int] = None

    # ---- servable lifecycle -------------------------------------------------------------------------------------
    def _load_servable(self, name: str, version: int, path: str) -> Servable:
        start = time.monotonic()
        try:
            servable = Servable.load(name, version, path,
                                     xla_cpu_compilation_enabled=self.xla_cpu_compilation_enabled)
            if self._scheduler is not None:
                self._attach_batching(servable)
            if self.enable_model_warmup:
                try:
                    warmup.run_warmup(servable)
                except Exception:
                    self._unload_servable(servable)
                    raise
        except Exception:
            self.metrics.record_load(path, False, 0)
            raise
        self.metrics.record_load(path, True, (time.monotonic() - start) * 1e6)
        return servable

    def _attach_batching(self, servable: Servable) -> None:
        """Route the servable's signature runs through one batch queue per signature."""
        def on_batch(size, padded, name=servable.name):
            self.metrics.record_batch(name, size, padded)

        queues = {key: self._scheduler.add_queue(signature, on_batch)
                  for key, signature in servable.signatures.items()}
        self._queues[id(servable)] = queues
        def run(signature, arrays):
            deadline = inference.current_deadline()
            future = queues[signature.name].submit(arrays, deadline=deadline)
            try:
                return future.result(timeout=None if deadline is None else max(deadline - time.monotonic(), 0))
            except futures.TimeoutError:  # the batch thread drops the task when it reaches it
                raise deadline_exceeded("Deadline exceeded while the request was queued") from None

        servable.runner = run

    def _unload_servable(self, servable: Servable) -> None:
        for queue in self._queues.pop(id(servable), {}).values():
            self._scheduler.remove_queue(queue)

    # ---- start / stop -----------------------------------------------------------------------------------------------
    def _initial_config(self):
        if self.model_config_file:
            return model_config.read_model_config_file(self.model_config_file)
        return model_config.single_model_config(self.model_name, self.model_base_path)

    def start(self) -> "ModelServer":
        """Load the models, then listen; raises (and releases everything) when a model cannot be served."""
        try:
            if self.batching_options is not None:
                self._scheduler = BatchScheduler(self.batching_options)
            config = self._initial_config()
            self._config_text = str(config)
            self.manager.apply_config(config)
            self._start_grpc()
            if self._rest_api_port is not None:
                from serving.rest import RestServer
                self._rest_server = RestServer(self.api, self.host, self._rest_api_port, self.metrics,
                                               self.prometheus_path, threads=self.rest_api_num_threads,
                                               timeout_seconds=self.rest_api_timeout_in_ms / 1000,
                                               max_request_bytes=self.max_request_bytes,
                                               ready=self.ready)
                self._rest_server.start()
                self.rest_port = self._rest_server.port
            self._start_pollers()
        except BaseException:
            self.stop()
            raise
        log.info("Running gRPC ModelServer at %s:%s ...", self.host, self.grpc_port)
        if self.rest_port is not None:
            log.info("Exporting HTTP/REST API at:%s:%s ...", self.host, self.rest_port)
        return self

    def _start_grpc(self) -> None:
        # A message beyond --max_request_bytes is refused by gRPC itself (RESOURCE_EXHAUSTED) before parsing.
        options = [("grpc.max_receive_message_length", min(self.max_request_bytes, MAX_MESSAGE_BYTES)),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.so_reuseport", 0)]
        self._grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.grpc_max_workers,
                                                                   thread_name_prefix="grpc"),
                                        options=options)
        add_services(self._grpc_server, self.api, health=self.ready if self.enable_grpc_healthcheck_service else None)
        self.grpc_port = self._grpc_server.add_insecure_port(f"{self.host}:{self._port}")
        if not self.grpc_port:
            raise OSError(f"Could not bind gRPC port {self.host}:{self._port}")
        if self.grpc_socket_path:  # local clients may skip TCP, as with --grpc_socket_path
            self._grpc_server.add_insecure_port(f"unix:{self.grpc_socket_path}")
        self._grpc_server.start()

    def ready(self) -> bool:
        """Model-independent readiness: listening, not stopping, and every configured model has a version
        AVAILABLE (REST `GET /v1/ready`, grpc.health.v1 with `--enable_grpc_healthcheck_service`)."""
        return not self._stop_event.is_set() and self.manager.all_models_available()

    def _start_pollers(self) -> None:
        if self.file_system_poll_wait_seconds > 0:
            self._spawn("fs-poll", self.file_system_poll_wait_seconds, self.manager.poll)
        if self.model_config_file and self.model_config_file_poll_wait_seconds > 0:
            self._spawn("config-poll", self.model_config_file_poll_wait_seconds, self._reload_config_file)

    def _spawn(self, name: str, period: float, work) -> None:
        def loop():
            while not self._stop_event.wait(period):
                try:
                    work()
                except Exception:  # keep polling; the next pass may succeed
                    log.exception("%s failed", name)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _reload_config_file(self) -> None:
        """Apply the config file when it changed. A file that does not parse, or a config that cannot be
        applied, keeps the current config serving; it is logged once (and again when the error changes) and
        retried on the next poll, so a base path that appears later is still picked up."""
        try:
            config = model_config.read_model_config_file(self.model_config_file)
        except ServingError as e:
            self._config_failed(e.message)
            return
        text = str(config)
        if text == self._config_text:
            self._config_error = None
            return
        try:
            self.manager.apply_config(config)
        except ServingError as e:
            self._config_failed(f"{e.message}; keeping the current model config")
            return
        self._config_text, self._config_error = text, None
        log.info("Applied the model config from %s", self.model_config_file)

    def _config_failed(self, message: str) -> None:
        if message != self._config_error:
            log.error("Model config file %s: %s", self.model_config_file, message)
            self._config_error = message

    def reload(self) -> None:
        """What SIGHUP asks for: re-read the model config file (when serving one), then poll the base paths."""
        if self.model_config_file:
            self._reload_config_file()
        self.manager.poll()

    def stop(self, grace: Optional[float] = None) -> None:
        """Drain, then release everything: stop accepting (REST listener closed, gRPC refuses new calls, requests
        arriving on open connections get UNAVAILABLE / 503), give the requests in flight up to `grace` seconds
        (default `shutdown_grace_seconds`) to finish, cancel the model runs still going after that (their
        clients get UNAVAILABLE / 503 instead of a dropped connection), then unload every version."""
        grace = self.shutdown_grace_seconds if grace is None else grace
        end = time.monotonic() + grace
        self._stop_event.set()
        self.api.begin_drain()
        if self._rest_server is not None:
            self._rest_server.stop_accepting()
        grpc_stopped = None
        if self._grpc_server is not None:
            grpc_stopped = self._grpc_server.stop(grace + CANCELLED_ANSWER_SECONDS)
        if not self.api.wait_idle(end - time.monotonic()):
            cancelled = deadlines.cancel_all("shutdown")
            log.warning("Shutdown grace period of %.1f s is over: cancelled %d model run(s) in flight", grace,
                        cancelled)
            self.api.wait_idle(CANCELLED_ANSWER_SECONDS)
        if self._rest_server is not None:
            self._rest_server.stop(grace=CANCELLED_ANSWER_SECONDS)
            self._rest_server = None
        if grpc_stopped is not None:
            grpc_stopped.wait()
            self._grpc_server = None
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []
        self.manager.unload_all(timeout=CANCELLED_ANSWER_SECONDS)
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---- command line -----------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    server = ModelServer(
        model_base_path=args.model_base_path or None, model_name=args.model_name,
        model_config_file=args.model_config_file or None, port=args.port,
        rest_api_port=args.rest_api_port or None, host=args.host, enable_batching=args.enable_batching,
        batching_parameters_file=args.batching_parameters_file or None,
        monitoring_config_file=args.monitoring_config_file or None,
        enable_model_warmup=args.enable_model_warmup,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        grpc_max_workers=args.grpc_max_threads, grpc_socket_path=args.grpc_socket_path or None,
        rest_api_num_threads=args.rest_api_num_threads, rest_api_timeout_in_ms=args.rest_api_timeout_in_ms,
        max_request_bytes=args.max_request_bytes,
        enable_grpc_healthcheck_service=args.enable_grpc_healthcheck_service,
        shutdown_grace_seconds=args.shutdown_grace_seconds, max_num_load_retries=args.max_num_load_retries,
        load_retry_interval_seconds=args.load_retry_interval_micros / 1e6,
        max_string_bytes=args.max_string_bytes or None,
        xla_cpu_compilation_enabled=args.xla_cpu_compilation_enabled)
    stop, reload = threading.Event(), threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # SIGHUP (the terminal hung up, or `kill -HUP` from an operator) re-reads the config instead of killing a
    # server that is answering requests; SIGTERM / SIGINT drain and exit.
    def on_hangup(*_):
        reload.set()
        stop.set()  # wakes the main thread, which sees `reload` and goes on serving

    signal.signal(signal.SIGHUP, on_hangup)
    try:
        server.start()
    except Exception as e:
        log.error("Server failed to start: %s", getattr(e, "message", e))
        return 1
    print(f"serving: gRPC on {server.host}:{server.grpc_port}"
          + (f", REST on {server.host}:{server.rest_port}" if server.rest_port else ""), flush=True)
    if args.port_file:  # written whole, then renamed, so a reader never sees half a file
        with open(args.port_file + ".tmp", "w") as f:
            json.dump({"grpc_port": server.grpc_port, "rest_port": server.rest_port, "pid": os.getpid()}, f)
        os.replace(args.port_file + ".tmp", args.port_file)
    while True:
        stop.wait()
        if not reload.is_set():
            break
        reload.clear()
        stop.clear()
        log.info("SIGHUP: reloading the model config and polling the base paths")
        try:
            server.reload()
        except Exception as e:  # keep serving what is loaded
            log.error("Reload failed: %s", getattr(e, "message", e))
    log.info("Shutting down (grace period %.1f s)", server.shutdown_grace_seconds)
    server.stop()
    log.info("Stopped")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is released by now; interpreter teardown (joining gRPC's executor and TF's threads) was seen to
    # hang a loaded machine past the 30 s SIGKILL grace, so leave without it.
    os._exit(code)
