"""REST front end (TF Serving's /v1 API) and the Prometheus endpoint, on a threaded HTTP server.

POST /v1/models/NAME[/versions/N | /labels/L]:(predict|classify|regress)
GET  /v1/models/NAME[/versions/N | /labels/L][/metadata]
Errors answer {"error": "..."} with TF Serving's HTTP status for the canonical code.
"""

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

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
from serving.errors import ServingError, http_status, invalid_argument, truncate
from serving.metrics import ServerMetrics
from serving.servable import predict_signature_missing

log = logging.getLogger(__name__)

ENTRYPOINT = "REST"
# Bodies beyond this are refused before they are read (TF Serving's gRPC limit is 2 GiB; REST bodies are JSON).
MAX_BODY_BYTES = 1 << 30

_MODEL = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
_POST = re.compile(_MODEL + r":(?P<method>predict|classify|regress)")
_GET = re.compile(_MODEL + r"(?P<metadata>/metadata)?")


def _model_spec(match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=match["name"])
    if match["version"] is not None:
        version = match["version"]
        if not version.isdigit() or int(version) >= 2 ** 63:
            raise invalid_argument(f"Failed to convert version: {version} to numeric.")
        spec.version.value = int(version)
    elif match["label"] is not None:
        spec.version_label = match["label"]
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

    def __init__(self, api: ServingApi):
        self._api = api

    def handle(self, method: str, path: str, body: bytes):
        try:
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect from TF Serving
    timeout = 60  # seconds a connection may stall mid-request before it is dropped
    server_version = "tfmodels-serving"
    routes: RestHandlers = None
    metrics: ServerMetrics = None
    prometheus_path: Optional[str] = None

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, method: str) -> None:
        body = b""
        if method == "GET" and self.prometheus_path and self.path.split("?", 1)[0] == self.prometheus_path:
            self._reply(200, self.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            status, document = 400, {"error": f"Invalid Content-Length: {self.headers.get('Content-Length')}"}
        else:
            body = self.rfile.read(length) if length else b""
            status, document = self.routes.handle(method, self.path, body)
        self._reply(status, json.dumps(document).encode("utf-8"), "application/json")

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")

    def do_PUT(self):
        self._answer("PUT")

    def do_DELETE(self):
        self._answer("DELETE")

    def log_message(self, format, *args):  # per-request lines go to debug, not stderr
        log.debug("%s - %s", self.address_string(), format % args)


class RestServer:
    """The REST API (and Prometheus metrics at `prometheus_path`) on host:port; port 0 picks a free one."""

    def __init__(self, api: ServingApi, host: str, port: int, metrics: ServerMetrics,
                 prometheus_path: Optional[str] = None):
        handler = type("Handler", (_Handler,), {"routes": RestHandlers(api), "metrics": metrics,
                                                "prometheus_path": prometheus_path})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="rest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
