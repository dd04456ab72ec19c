"""Clients for TF Serving (ours or the real `tensorflow_model_server`): gRPC and REST, plus request helpers.

Every call has a deadline; a call that fails with UNAVAILABLE (gRPC) or 503 (REST) -- server starting, batch
queue full, a restart behind a load balancer -- is retried with exponential backoff. No other error is retried:
they would fail the same way again.

    client = GrpcClient("localhost:8500")
    client.predict("half_plus_two", {"x": [1.0, 2.0]})["y"]          # array([2.5, 3.])
    client.classify("bert", text_examples(["a fine film"]), signature_name="classify")
"""

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

# ---- request helpers ----------------------------------------------------------------------------------------------


def make_model_spec(name: str, version: Optional[int] = None, version_label: Optional[str] = None,
                    signature_name: str = "") -> model_pb2.ModelSpec:
    if version is not None and version_label is not None:
        raise ValueError("give a version or a version label, not both")
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
    if version is not None:
        spec.version.value = version
    elif version_label is not None:
        spec.version_label = version_label
    return spec


def make_tensor_proto(value, dtype=None):
    """A TensorProto from a Python / numpy value, typed as TF types it (Python floats are float32);
    text (str) becomes UTF-8 DT_STRING."""
    if isinstance(value, np.ndarray) and value.dtype.kind not in "SUO":
        return tf.make_tensor_proto(value, dtype=dtype)
    array = np.asarray(value, dtype=object)
    if array.size and all(isinstance(v, (str, bytes)) for v in array.ravel()):
        encoded = np.empty(array.shape, dtype=object)
        encoded.ravel()[:] = [v.encode("utf-8") if isinstance(v, str) else v for v in array.ravel()]
        return tf.make_tensor_proto(encoded, dtype=tf.string)
    return tf.make_tensor_proto(value, dtype=dtype)


def make_example(features: Mapping[str, Any]) -> tf.train.Example:
    """A tf.Example from {name: value or list}: ints -> int64_list, floats -> float_list, str/bytes -> bytes_list."""
    example = tf.train.Example()
    for name, value in features.items():
        values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
        feature = example.features.feature[name]
        if all(isinstance(v, (str, bytes)) for v in values):
            feature.bytes_list.value.extend(v.encode("utf-8") if isinstance(v, str) else v for v in values)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            feature.int64_list.value.extend(int(v) for v in values)
        else:
            feature.float_list.value.extend(float(v) for v in values)
    return example


def text_examples(texts: Iterable[str], feature_name: str = "text") -> List[tf.train.Example]:
    """One tf.Example per raw text, for classify/regress signatures that parse a text feature."""
    return [make_example({feature_name: text}) for text in texts]


def _fill_input(request, examples: Sequence[tf.train.Example], context: Optional[tf.train.Example]) -> None:
    if context is not None:
        request.input.example_list_with_context.context.CopyFrom(context)
        request.input.example_list_with_context.examples.extend(examples)
    else:
        request.input.example_list.examples.extend(examples)


def _retrying(call, attempts: int, backoff: float, retryable):
    """Run `call`, retrying while `retryable(error)`; backoff doubles between attempts."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:
            if attempt == attempts - 1 or not retryable(error):
                raise
            time.sleep(backoff * 2 ** attempt)


# ---- gRPC ---------------------------------------------------------------------------------------------------------
class GrpcClient:
    """PredictionService and ModelService calls with deadlines and retries on UNAVAILABLE."""

    def __init__(self, target: str = "localhost:8500", timeout: float = 10.0, max_attempts: int = 3,
                 backoff_seconds: float = 0.1, max_message_bytes: Optional[int] = None):
        options = []
        if max_message_bytes:
            options = [("grpc.max_receive_message_length", max_message_bytes),
                       ("grpc.max_send_message_length", max_message_bytes)]
        self._channel = grpc.insecure_channel(target, options=options)
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.model = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self.timeout, self.max_attempts, self.backoff_seconds = timeout, max_attempts, backoff_seconds

    def call(self, method, request):
        """One RPC (e.g. `client.call(client.prediction.Predict, request)`) with deadline and retries."""
        return _retrying(lambda: method(request, timeout=self.timeout), self.max_attempts, self.backoff_seconds,
                         lambda e: isinstance(e, grpc.RpcError) and e.code() == grpc.StatusCode.UNAVAILABLE)

    def predict(self, model_name: str, inputs: Mapping[str, Any], signature_name: str = "",
                version: Optional[int] = None, version_label: Optional[str] = None,
                output_filter: Sequence[str] = ()) -> Dict[str, np.ndarray]:
        request = predict_pb2.PredictRequest(
            model_spec=make_model_spec(model_name, version, version_label, signature_name),
            output_filter=list(output_filter))
        for alias, value in inputs.items():
            request.inputs[alias].CopyFrom(value if isinstance(value, tensor_pb2.TensorProto)
                                           else make_tensor_proto(value))
        response = self.call(self.prediction.Predict, request)
        return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}

    def classify(self, model_name: str, examples: Sequence[tf.train.Example], signature_name: str = "",
                 context: Optional[tf.train.Example] = None, version: Optional[int] = None,
                 version_label: Optional[str] = None) -> List[List[Tuple[str, float]]]:
        """Per example, its (label, score) pairs."""
        request = classification_pb2.ClassificationRequest(
            model_spec=make_model_spec(model_name, version, version_label, signature_name))
        _fill_input(request, examples, context)
        response = self.call(self.prediction.Classify, request)
        return [[(c.label, c.score) for c in row.classes] for row in response.result.classifications]

    def regress(self, model_name: str, examples: Sequence[tf.train.Example], signature_name: str = "",
                context: Optional[tf.train.Example] = None, version: Optional[int] = None,
                version_label: Optional[str] = None) -> List[float]:
        request = regression_pb2.RegressionRequest(
            model_spec=make_model_spec(model_name, version, version_label, signature_name))
        _fill_input(request, examples, context)
        return [r.value for r in self.call(self.prediction.Regress, request).result.regressions]

    def metadata(self, model_name: str, version: Optional[int] = None):
        """The model's SignatureDefs, {name: SignatureDef}."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=make_model_spec(model_name, version), metadata_field=["signature_def"])
        response = self.call(self.prediction.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return dict(signatures.signature_def)

    def status(self, model_name: str, version: Optional[int] = None) -> List[Dict[str, Any]]:
        """[{version, state ("AVAILABLE", ...), error_code, error_message}], newest first."""
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=make_model_spec(model_name, version))
        response = self.call(self.model.GetModelStatus, request)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [{"version": s.version, "state": state_name(s.state), "error_code": s.status.error_code,
                 "error_message": s.status.error_message} for s in response.model_version_status]

    def reload_config(self, config) -> None:
        """HandleReloadConfigRequest with a ModelServerConfig (returns once the models are loaded)."""
        self.call(self.model.HandleReloadConfigRequest, model_management_pb2.ReloadConfigRequest(config=config))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- REST ---------------------------------------------------------------------------------------------------------
class RestError(Exception):
    """A REST call answered with an error status; `message` is the server's {"error": ...} text."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


def b64(data: bytes) -> Dict[str, str]:
    """A binary value for REST JSON."""
    return {"b64": base64.b64encode(data).decode("ascii")}


class RestClient:
    """The /v1 REST API with deadlines and retries on 503."""

    def __init__(self, base_url: str = "http://localhost:8501", timeout: float = 10.0, max_attempts: int = 3,
                 backoff_seconds: float = 0.1):
        self.base_url = base_url.rstrip("/")
        self.timeout, self.max_attempts, self.backoff_seconds = timeout, max_attempts, backoff_seconds

    def _path(self, model_name: str, version: Optional[int], version_label: Optional[str]) -> str:
        path = f"/v1/models/{urllib.request.quote(model_name, safe='')}"
        if version is not None:
            path += f"/versions/{int(version)}"
        elif version_label is not None:
            path += f"/labels/{urllib.request.quote(version_label, safe='')}"
        return path

    def request(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None

        def once():
            req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                try:
                    message = json.loads(e.read()).get("error", "")
                except ValueError:
                    message = e.reason
                raise RestError(e.code, message) from None

        return _retrying(once, self.max_attempts, self.backoff_seconds,
                         lambda e: isinstance(e, RestError) and e.status == 503)

    def predict(self, model_name: str, instances=None, inputs=None, signature_name: Optional[str] = None,
                version: Optional[int] = None, version_label: Optional[str] = None):
        """Row format (`instances` -> predictions) or columnar (`inputs` -> outputs)."""
        if (instances is None) == (inputs is None):
            raise ValueError("give exactly one of instances and inputs")
        body = {"instances": instances} if instances is not None else {"inputs": inputs}
        if signature_name:
            body["signature_name"] = signature_name
        answer = self.request("POST", self._path(model_name, version, version_label) + ":predict", body)
        return answer["predictions"] if instances is not None else answer["outputs"]

    def _examples_call(self, verb, model_name, examples, context, signature_name, version, version_label):
        body = {"examples": list(examples)}
        if context is not None:
            body["context"] = context
        if signature_name:
            body["signature_name"] = signature_name
        return self.request("POST", self._path(model_name, version, version_label) + verb, body)["results"]

    def classify(self, model_name: str, examples: Sequence[Mapping[str, Any]], context=None,
                 signature_name: Optional[str] = None, version=None, version_label=None):
        """Per example, its [label, score] pairs."""
        return self._examples_call(":classify", model_name, examples, context, signature_name, version,
                                   version_label)

    def regress(self, model_name: str, examples: Sequence[Mapping[str, Any]], context=None,
                signature_name: Optional[str] = None, version=None, version_label=None):
        return self._examples_call(":regress", model_name, examples, context, signature_name, version,
                                   version_label)

    def metadata(self, model_name: str, version: Optional[int] = None):
        return self.request("GET", self._path(model_name, version, None) + "/metadata")

    def status(self, model_name: str, version: Optional[int] = None):
        return self.request("GET", self._path(model_name, version, None))["model_version_status"]
