"""gRPC front end: PredictionService and ModelService servicers over `ServingApi`."""

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.api import ServingApi
from serving.errors import ServingError, truncate

ENTRYPOINT = "GRPC"


def _handler(api_name: str):
    """A servicer method that answers through ServingApi and maps ServingError to a gRPC status."""

    def method(self, request, context):
        try:
            return self._api.call(api_name, ENTRYPOINT, request)
        except ServingError as e:
            context.abort(e.code, truncate(e.message))

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


def add_services(server: grpc.Server, api: ServingApi) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(api), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(api), server)
