"""The server's request entry points, shared by the gRPC and REST front ends.

`ServingApi.call` resolves the servable a request names, runs the inference function on it while holding it,
and records request count and latency under TF Serving's metric names.
"""

import contextlib
import logging
import threading
import time
from typing import Callable, Iterator, Optional

from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2

from serving import inference
from serving.errors import ServingError, deadline_exceeded, internal, invalid_argument, unavailable
from serving.manager import ServableManager
from serving.metrics import ServerMetrics
from serving.tensors import claimed_bytes

log = logging.getLogger(__name__)


def _multi_inference_spec(request):
    if not request.tasks:
        raise invalid_argument("MultiInferenceRequest must contain at least one task.")
    return request.tasks[0].model_spec


# api name -> (ModelSpec of the request, check made before the model lookup, function on the servable)
_SERVABLE_APIS = {
    "predict": (lambda r: r.model_spec, None, inference.predict),
    "classify": (lambda r: r.model_spec, None, inference.classify),
    "regress": (lambda r: r.model_spec, None, inference.regress),
    "multi_inference": (_multi_inference_spec, None, inference.multi_inference),
    "get_model_metadata": (lambda r: r.model_spec, inference.check_metadata_request, inference.get_model_metadata),
}


class ServingApi:
    """Answers requests by API name; the front ends only translate wire formats."""

    def __init__(self, manager: ServableManager, metrics: ServerMetrics,
                 reload_config: Callable[[object], None], max_request_bytes: Optional[int] = None,
                 max_string_bytes: Optional[int] = None):
        self.manager = manager
        self.max_request_bytes = max_request_bytes
        self.max_string_bytes = max_string_bytes
        self.metrics = metrics
        self._reload_config = reload_config
        self._in_flight = 0  # requests being answered by either front end
        self._idle = threading.Condition()
        self.draining = False  # set when the server shuts down: new requests get UNAVAILABLE

    @contextlib.contextmanager
    def tracked(self) -> Iterator[None]:
        """Count one request (REST or gRPC, parsing included) as in flight while it is answered."""
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.notify_all()

    def begin_drain(self) -> None:
        self.draining = True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in flight (True) or `timeout` seconds pass (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=max(timeout, 0))

    def check_size(self, request) -> None:
        """Refuse a request whose tensors would decode to more than --max_request_bytes, or that holds a string
        (one text) longer than --max_string_bytes, before decoding."""
        if not hasattr(request, "inputs"):
            return
        if self.max_string_bytes is not None:
            for alias, proto in request.inputs.items():
                longest = max((len(v) for v in proto.string_val), default=0)
                if longest > self.max_string_bytes:
                    raise invalid_argument(f"A string of input {alias} has {longest} bytes, over the server's limit "
                                           f"of {self.max_string_bytes} (--max_string_bytes)")
        if self.max_request_bytes is None:
            return
        total = sum(claimed_bytes(proto) for proto in request.inputs.values())
        if total > self.max_request_bytes:
            raise invalid_argument(f"Request tensors would take {total:.0f} bytes, over the server's limit of "
                                   f"{self.max_request_bytes} (--max_request_bytes)")

    def call(self, api: str, entrypoint: str, request, prepare: Optional[Callable] = None,
             deadline: Optional[float] = None):
        """Answer `request` for `api` ("predict", ..., "get_model_status", "reload_config").

        `prepare(servable, request) -> request`, when given, completes the request once the servable is resolved
        (REST needs the signature's dtypes to type JSON values), so both steps see the same version.
        `deadline` (time.monotonic() seconds; default: the thread's `deadlines.current_deadline()`): work is not
        started once it has passed, and a model run still going then is cancelled (DEADLINE_EXCEEDED).
        """
        if deadline is None:
            deadline = inference.current_deadline()
        start = time.monotonic()
        status = "OK"
        model_name = ""
        try:
            if self.draining:
                raise unavailable("The server is shutting down")
            if api == "get_model_status":
                model_name = request.model_spec.name
                return get_model_status_pb2.GetModelStatusResponse(
                    model_version_status=self.manager.version_statuses(request.model_spec))
            if api == "reload_config":
                self._reload_config(request.config)
                return model_management_pb2.ReloadConfigResponse()
            spec_of, precheck, run = _SERVABLE_APIS[api]
            spec = spec_of(request)
            model_name = spec.name
            if precheck is not None:
                precheck(request)
            self.check_size(request)
            if deadline is not None and time.monotonic() >= deadline:
                raise deadline_exceeded("Deadline exceeded before the request was started")
            with self.manager.acquire(spec) as servable:
                if prepare is not None:
                    request = prepare(servable, request)
                    self.check_size(request)
                with inference.request_deadline(deadline):
                    return run(servable, request)
        except ServingError as e:
            status = e.code.name
            raise
        except Exception as e:  # a bug must answer INTERNAL, never take the server down
            log.exception("%s failed", api)
            status = "INTERNAL"
            raise internal(f"{type(e).__name__}: {e}") from None
        finally:
            micros = (time.monotonic() - start) * 1e6
            # Only served models get series: client-chosen names must not grow the metrics page without bound.
            if self.manager.has_model(model_name):
                self.metrics.record_request(model_name, api, entrypoint, status, micros)
