"""REST front end (TF Serving's /v1 API), the readiness path and the Prometheus endpoint, on waitress.

POST /v1/models/NAME[/versions/N | /labels/L]:(predict|classify|regress)
GET  /v1/models/NAME[/versions/N | /labels/L][/metadata]
GET  /v1/ready -- 200 {"ready": true} once every configured model has a version AVAILABLE, else 503
Paths match case-insensitively and NAME / L are percent-decoded (UTF-8), as TF Serving does.
Errors answer {"error": "..."} with TF Serving's HTTP status for the canonical code.

HTTP/1.1 itself (keep-alive, pipelining, chunked bodies, conflicting Content-Length, body and header limits,
idle timeouts, listen backlog, TCP_NODELAY) is waitress's: a thread pool of `--rest_api_num_threads` behind an
asyncore loop, pure Python, maintained by the Pylons project.
"""

import json
import logging
import re
import threading
import time
from typing import Callable, Optional
from urllib.parse import unquote_to_bytes

import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from serving import json_codec
from serving.api import ServingApi
from serving.deadlines import request_deadline
from serving.errors import ServingError, http_status, invalid_argument, truncate
from serving.metrics import ServerMetrics
from serving.servable import predict_signature_missing

log = logging.getLogger(__name__)

ENTRYPOINT = "REST"
READY_PATH = "/v1/ready"
# How long stop() lets in-flight REST requests finish before their threads are abandoned.
SHUTDOWN_GRACE_SECONDS = 5.0

# (?i) as TF Serving's RE2 patterns in http_rest_api_handler.cc.
_MODEL = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
_POST = re.compile(_MODEL + r":(?P<method>predict|classify|regress)", re.IGNORECASE)
_GET = re.compile(_MODEL + r"(?P<metadata>/metadata)?", re.IGNORECASE)
_VERSION = re.compile(r"[0-9]+")  # ASCII digits only ("²".isdigit() is True)


def _decode_segment(text: str) -> str:
    """A percent-decoded path segment (the raw request URI arrives as latin-1 text, as WSGI passes it)."""
    try:
        return unquote_to_bytes(text.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise invalid_argument(f"Malformed request: path segment {text[:100]!r} is not UTF-8") from None


def _model_spec(match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=_decode_segment(match["name"]))
    if match["version"] is not None:
        version = match["version"]
        if not _VERSION.fullmatch(version) or int(version) >= 2 ** 63:
            raise invalid_argument(f"Failed to convert version: {version[:100]} to numeric.")
        spec.version.value = int(version)
    elif match["label"] is not None:
        spec.version_label = _decode_segment(match["label"])
    return spec


def _message_to_dict(message) -> dict:
    """Proto3 JSON with default-valued fields printed, as TF Serving's REST answers."""
    try:
        return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                         including_default_value_fields=True)
    except TypeError:  # protobuf >= 5 renamed the option
        return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)


class RestHandlers:
    """The REST routes, as plain methods from (method, path, body) to (HTTP status, JSON document)."""

    def __init__(self, api: ServingApi, timeout_seconds: Optional[float] = None):
        self._api = api
        self._timeout_seconds = timeout_seconds  # each request's deadline, as TF Serving's REST RunOptions

    def handle(self, method: str, path: str, body: bytes):
        deadline = None if self._timeout_seconds is None else time.monotonic() + self._timeout_seconds
        try:
            with self._api.tracked(), request_deadline(deadline):
                return 200, self._route(method, path, body)
        except ServingError as e:
            return http_status(e.code), {"error": truncate(e.message)}
        except Exception as e:  # a bug or odd input must answer 500, not drop the connection
            log.exception("REST %s %s failed", method, path[:200])
            return 500, {"error": truncate(f"{type(e).__name__}: {e}")}

    def _route(self, method: str, path: str, body: bytes):
        path_only = path.split("?", 1)[0]
        if method == "POST":
            match = _POST.fullmatch(path_only)
            if match:
                spec = _model_spec(match)
                document = json_codec.parse_body(body)
                return getattr(self, "_" + match["method"])(spec, document)
        elif method == "GET":
            match = _GET.fullmatch(path_only)
            if match:
                spec = _model_spec(match)
                return self._metadata(spec) if match["metadata"] else self._status(spec)
        raise invalid_argument(f"Malformed request: {method} {path}")

    def _predict(self, spec, document):
        spec.signature_name = json_codec.signature_name(document)
        row_format = []

        def prepare(servable, _):
            signature = servable.signature(spec.signature_name, predict_signature_missing)
            request, row = json_codec.predict_request(spec, document, signature)
            row_format.append(row)
            return request

        response = self._api.call("predict", ENTRYPOINT, predict_pb2.PredictRequest(model_spec=spec), prepare)
        outputs = {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}
        return json_codec.predict_response(outputs, row_format[0])

    def _classify(self, spec, document):
        response = self._api.call("classify", ENTRYPOINT, json_codec.classification_request(spec, document))
        return json_codec.classification_results(response)

    def _regress(self, spec, document):
        response = self._api.call("regress", ENTRYPOINT, json_codec.regression_request(spec, document))
        return json_codec.regression_results(response)

    def _status(self, spec):
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
        return _message_to_dict(self._api.call("get_model_status", ENTRYPOINT, request))

    def _metadata(self, spec):
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=["signature_def"])
        document = _message_to_dict(self._api.call("get_model_metadata", ENTRYPOINT, request))
        for value in document.get("metadata", {}).values():
            value.pop("@type", None)
        return document


def _json_reply(start_response, status: int, document) -> list:
    return _reply(start_response, status, json.dumps(document).encode("utf-8"), "application/json")


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 413: "Payload Too Large", 429: "Too Many Requests", 499: "Client Closed Request",
            500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
            504: "Gateway Timeout"}


def _reply(start_response, status: int, body: bytes, content_type: str) -> list:
    start_response(f"{status} {_REASONS.get(status, 'Error')}",
                   [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]  # one body chunk: waitress sends headers and body in one write


def wsgi_app(routes: RestHandlers, metrics: ServerMetrics, prometheus_path: Optional[str],
             ready: Optional[Callable[[], bool]] = None):
    """The WSGI application: our routes, the readiness path and Prometheus, behind any WSGI server."""

    def app(environ, start_response):
        method = environ["REQUEST_METHOD"]
        # REQUEST_URI is the raw target: PATH_INFO is already percent-decoded, which would let "%2F" split a name.
        path = (environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/").split("?", 1)[0]
        if method == "GET" and prometheus_path and path == prometheus_path:
            return _reply(start_response, 200, metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")
        if method == "GET" and path.lower() == READY_PATH:
            is_ready = ready() if ready is not None else True
            return _json_reply(start_response, 200 if is_ready else 503, {"ready": bool(is_ready)})
        body = environ["wsgi.input"].read()  # waitress has bounded it (max_request_body_size) and de-chunked it
        status, document = routes.handle(method, path, body)
        return _json_reply(start_response, status, document)

    return app


class RestServer:
    """The REST API (and Prometheus metrics at `prometheus_path`) on host:port; port 0 picks a free one.

    `threads` answer requests (`--rest_api_num_threads`); a connection idle or stalled mid-request for
    `timeout_seconds` is closed (`--rest_api_timeout_in_ms`), which is also each request's deadline; bodies over
    `max_request_bytes` get 413 before they are buffered in full.
    """

    def __init__(self, api: ServingApi, host: str, port: int, metrics: ServerMetrics,
                 prometheus_path: Optional[str] = None, threads: int = 16, timeout_seconds: float = 30.0,
                 max_request_bytes: int = 1 << 30, ready: Optional[Callable[[], bool]] = None,
                 backlog: int = 2048, connection_limit: int = 1000):
        from waitress.server import create_server

        self._server = create_server(
            wsgi_app(RestHandlers(api, timeout_seconds), metrics, prometheus_path, ready), host=host, port=port,
            threads=threads, backlog=backlog, connection_limit=connection_limit,
            channel_timeout=max(int(round(timeout_seconds)), 1), max_request_body_size=max_request_bytes,
            ident="tfmodels-serving", clear_untrusted_proxy_headers=True, expose_tracebacks=False,
            asyncore_loop_timeout=1)
        # waitress reports the port as getnameinfo's string; callers (and the port file) want an int.
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name="rest", daemon=True)
        self._accepting = True

    def start(self) -> None:
        self._thread.start()

    def stop_accepting(self) -> None:
        """Close the listening socket; open connections keep being served."""
        from waitress import wasyncore

        if self._accepting:
            self._accepting = False
            wasyncore.dispatcher.close(self._server)

    def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop accepting, let requests in progress finish (up to `grace` s) and their answers reach the
        clients, drop queued ones, close every connection."""
        self.stop_accepting()
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=grace)
        flushed = time.monotonic() + min(grace, 2.0) + 0.5  # answers written by now still have to be sent
        while time.monotonic() < flushed and any(
                getattr(channel, "total_outbufs_len", 0) for channel in list(self._server._map.values())):
            time.sleep(0.02)
        from waitress import wasyncore

        wasyncore.close_all(self._server._map)  # open connections and the trigger; the loop then ends
        self._thread.join(timeout=10)
