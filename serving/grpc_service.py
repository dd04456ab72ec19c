"""gRPC front end: PredictionService and ModelService servicers over `ServingApi`."""

import time

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.api import ServingApi
from serving.errors import ServingError, truncate

ENTRYPOINT = "GRPC"


def _handler(api_name: str):
    """A servicer method that answers through ServingApi and maps ServingError to a gRPC status."""

    def method(self, request, context):
        remaining = context.time_remaining()  # None without a client deadline
        deadline = None if remaining is None else time.monotonic() + remaining
        if not context.is_active() or (deadline is not None and remaining <= 0):
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded before the request was started")
        with self._api.tracked():
            try:
                return self._api.call(api_name, ENTRYPOINT, request, deadline=deadline)
            except ServingError as e:
                error = e
        context.abort(error.code, truncate(error.message))

    method.__name__ = api_name
    return method


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, api: ServingApi):
        self._api = api

    Predict = _handler("predict")
    Classify = _handler("classify")
    Regress = _handler("regress")
    MultiInference = _handler("multi_inference")
    GetModelMetadata = _handler("get_model_metadata")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, api: ServingApi):
        self._api = api

    GetModelStatus = _handler("get_model_status")
    HandleReloadConfigRequest = _handler("reload_config")


# grpc.health.v1.Health by hand (grpcio-health-checking is not in the working set): HealthCheckRequest is
# {string service = 1}, HealthCheckResponse {ServingStatus status = 1}; SERVING = 1, NOT_SERVING = 2,
# SERVICE_UNKNOWN = 3. Only the overall server ("") and our two services are known.
HEALTH_SERVICE = "grpc.health.v1.Health"
_KNOWN_SERVICES = ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")


def _health_service_name(data: bytes) -> str:
    """The `service` field of a serialized HealthCheckRequest (other fields are skipped)."""
    from google.protobuf.internal import decoder
    position, service = 0, ""
    while position < len(data):
        tag, position = decoder._DecodeVarint(data, position)
        wire = tag & 7
        if wire == 0:
            _, position = decoder._DecodeVarint(data, position)
        elif wire == 2:
            length, position = decoder._DecodeVarint(data, position)
            if tag >> 3 == 1:
                service = data[position:position + length].decode("utf-8", "replace")
            position += length
        elif wire in (1, 5):
            position += 8 if wire == 1 else 4
        else:
            raise ValueError("unsupported wire type")
    return service


def health_handler(ready):
    """A generic handler serving grpc.health.v1.Health/Check with `ready()` deciding SERVING/NOT_SERVING."""

    def check(request: bytes, context) -> bytes:
        try:
            service = _health_service_name(request)
        except (ValueError, IndexError):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed HealthCheckRequest")
        if service not in _KNOWN_SERVICES:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service}")
        return bytes([0x08, 1 if ready() else 2])

    method = grpc.unary_unary_rpc_method_handler(check, request_deserializer=None, response_serializer=None)
    return grpc.method_handlers_generic_handler(HEALTH_SERVICE, {"Check": method})


def add_services(server: grpc.Server, api: ServingApi, health=None) -> None:
    """PredictionService and ModelService; grpc.health.v1.Health too when `health` (a `ready()` callable)."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(api), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(api), server)
    if health is not None:
        server.add_generic_rpc_handlers((health_handler(health),))
