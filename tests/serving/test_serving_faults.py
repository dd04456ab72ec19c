"""Malformed gRPC and REST requests: each gets TF Serving's error code, and the server stays up after all."""

import http.client as http_client

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_testlib import MODEL_NAME, examples_request, http
from serving_testlib import float_example as example
from serving_testlib import with_spec as spec
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
)

from serving.inference import CLASSIFY_METHOD, REGRESS_METHOD

C = grpc.StatusCode
PREDICT_PATH = "/tensorflow.serving.PredictionService/Predict"


def predict(x=(1.0,), **kwargs):
    request = spec(predict_pb2.PredictRequest(), **kwargs)
    if x is not None:
        request.inputs["x"].CopyFrom(x if isinstance(x, tensor_pb2.TensorProto) else tf.make_tensor_proto(
            np.asarray(x, np.float32)))
    return request


def tensor(dtype=types_pb2.DT_FLOAT, dims=(1,), **fields):
    proto = tensor_pb2.TensorProto(dtype=dtype, **fields)
    for d in dims:
        proto.tensor_shape.dim.add(size=d)
    return proto


def with_input(request, key, proto):
    request.inputs[key].CopyFrom(proto)
    return request


def classify(examples=(), signature="classify_x_to_y", context=None, cls=classification_pb2.ClassificationRequest):
    return examples_request(cls(), signature, examples, context)


def regress(examples=(), signature="regress_x_to_y"):
    return classify(examples, signature, cls=regression_pb2.RegressionRequest)


def multi(tasks):
    """A MultiInferenceRequest of (model, signature, method) tasks on one example."""
    request = inference_pb2.MultiInferenceRequest()
    for name, signature, method in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = name, signature
    request.input.example_list.examples.append(example(x=1.0))
    return request


def metadata(*fields):
    return spec(get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=list(fields)))


def status(name):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    return request


def reload(*models):
    request = model_management_pb2.ReloadConfigRequest()
    if models:
        for name, path in models:
            request.config.model_config_list.config.add(name=name, base_path=path)
    return request


# (id, stub method name, request, expected code)
GRPC_CASES = [
    ("path_traversal_name", "Predict", predict(name="../half_plus_two"), C.NOT_FOUND),
    ("slash_in_name", "Predict", predict(name="half_plus_two/../x"), C.NOT_FOUND),
    ("absolute_path_name", "Predict", predict(name="/etc/passwd"), C.NOT_FOUND),
    ("nul_in_name", "Predict", predict(name="half\x00plus"), C.NOT_FOUND),
    ("empty_name", "Predict", predict(name=""), C.INVALID_ARGUMENT),
    ("negative_version", "Predict", predict(version=-1), C.NOT_FOUND),
    ("max_version", "Predict", predict(version=2 ** 63 - 1), C.NOT_FOUND),
    ("empty_label", "Predict", predict(label=""), C.INVALID_ARGUMENT),
    ("invalid_dtype", "Predict", predict(tensor(dtype=types_pb2.DT_INVALID, float_val=[1.0])), C.INVALID_ARGUMENT),
    ("huge_shape_no_values", "Predict", predict(tensor(dims=(2 ** 40,))), C.INVALID_ARGUMENT),
    ("huge_2d_shape", "Predict", predict(tensor(dims=(2 ** 31, 2 ** 31), float_val=[1.0])), C.INVALID_ARGUMENT),
    ("negative_dim", "Predict", predict(tensor(dims=(-5,), float_val=[1.0])), C.INVALID_ARGUMENT),
    ("content_size_mismatch", "Predict", predict(tensor(dims=(3,), tensor_content=b"\x00" * 5)), C.INVALID_ARGUMENT),
    ("too_many_values", "Predict", predict(tensor(dims=(1,), float_val=[1.0, 2.0, 3.0])), C.INVALID_ARGUMENT),
    ("unknown_rank", "Predict", predict(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[1.0], tensor_shape={"unknown_rank": True})), C.INVALID_ARGUMENT),
    ("string_for_float", "Predict", predict(tf.make_tensor_proto(["a"])), C.INVALID_ARGUMENT),
    ("int64_for_float", "Predict", predict(tf.make_tensor_proto(np.array([1], np.int64))), C.INVALID_ARGUMENT),
    ("matrix_for_vector", "Predict", predict([[1.0, 2.0]]), C.INVALID_ARGUMENT),
    ("scalar_for_vector", "Predict", predict(1.0), C.INVALID_ARGUMENT),
    ("extra_input", "Predict", with_input(predict(), "z", tf.make_tensor_proto([1.0])), C.INVALID_ARGUMENT),
    ("no_inputs", "Predict", predict(x=None), C.INVALID_ARGUMENT),
    ("wrong_input_key", "Predict", with_input(predict(x=None), "X", tf.make_tensor_proto([1.0])),
     C.INVALID_ARGUMENT),
    ("unknown_output_filter", "Predict", predict_pb2.PredictRequest(
        model_spec=predict().model_spec, inputs=predict().inputs, output_filter=["nope"]), C.INVALID_ARGUMENT),
    ("unknown_signature", "Predict", predict(signature="nope"), C.FAILED_PRECONDITION),
    ("predict_on_classify_signature", "Predict", predict(signature="classify_x_to_y"), C.INVALID_ARGUMENT),
    ("classify_empty", "Classify", classify(), C.INVALID_ARGUMENT),
    ("classify_empty_with_context", "Classify", classify(context=example(x=1.0)), C.INVALID_ARGUMENT),
    ("classify_on_predict_signature", "Classify", classify([example(x=1.0)], "serving_default"),
     C.INVALID_ARGUMENT),
    ("classify_unknown_signature", "Classify", classify([example(x=1.0)], "nope"), C.INVALID_ARGUMENT),
    ("classify_wrong_feature_type", "Classify", classify([example(x=b"two")]), C.INVALID_ARGUMENT),
    ("classify_missing_feature", "Classify", classify([example(y=1.0)]), C.INVALID_ARGUMENT),
    ("regress_on_classify_signature", "Regress", regress([example(x=1.0)], "classify_x_to_y"), C.INVALID_ARGUMENT),
    ("regress_empty", "Regress", regress(), C.INVALID_ARGUMENT),
    ("multi_no_tasks", "MultiInference", multi([]), C.INVALID_ARGUMENT),
    ("multi_two_models", "MultiInference", multi([(MODEL_NAME, "regress_x_to_y", REGRESS_METHOD),
                                                  ("other", "classify_x_to_y", CLASSIFY_METHOD)]), C.INVALID_ARGUMENT),
    ("multi_bad_method", "MultiInference", multi([(MODEL_NAME, "regress_x_to_y", "tensorflow/serving/predict")]),
     C.INVALID_ARGUMENT),
    ("multi_duplicate_signature", "MultiInference", multi([(MODEL_NAME, "regress_x_to_y", REGRESS_METHOD),
                                                           (MODEL_NAME, "regress_x_to_y", REGRESS_METHOD)]),
     C.INVALID_ARGUMENT),
    ("multi_unknown_model", "MultiInference", multi([("nope", "regress_x_to_y", REGRESS_METHOD)]), C.NOT_FOUND),
    ("metadata_no_field", "GetModelMetadata", metadata(), C.INVALID_ARGUMENT),
    ("metadata_unknown_field", "GetModelMetadata", metadata("signature_def", "graph"), C.INVALID_ARGUMENT),
    ("metadata_unknown_model", "GetModelMetadata", spec(metadata("signature_def"), name="nope"), C.NOT_FOUND),
    ("status_empty_name", "GetModelStatus", status(""), C.INVALID_ARGUMENT),
    ("status_unknown_model", "GetModelStatus", status("../../etc"), C.NOT_FOUND),
    ("reload_empty_config", "HandleReloadConfigRequest", reload(), C.INVALID_ARGUMENT),
    ("reload_missing_base_path", "HandleReloadConfigRequest", reload(("m", "/nonexistent/path")), C.NOT_FOUND),
    ("reload_duplicate_names", "HandleReloadConfigRequest", reload(("m", "/tmp"), ("m", "/tmp")),
     C.INVALID_ARGUMENT),
    ("reload_empty_model_name", "HandleReloadConfigRequest", reload(("", "/tmp")), C.INVALID_ARGUMENT),
]


@pytest.fixture(scope="module")
def channel(shared_server):
    with grpc.insecure_channel(f"127.0.0.1:{shared_server.grpc_port}") as ch:
        yield ch


def _method(channel, name):
    service = "ModelService" if name in ("GetModelStatus", "HandleReloadConfigRequest") else "PredictionService"
    # raw bytes in and out, so the tests can also send bytes that are not a valid message
    return channel.unary_unary(f"/tensorflow.serving.{service}/{name}")


@pytest.mark.parametrize("method, request_proto, code", [c[1:] for c in GRPC_CASES], ids=[c[0] for c in GRPC_CASES])
def test_grpc_malformed(channel, method, request_proto, code):
    with pytest.raises(grpc.RpcError) as info:
        _method(channel, method)(request_proto.SerializeToString(), timeout=30)
    assert info.value.code() == code, info.value.details()
    assert info.value.details()


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff garbage", b"\x0a\x05abc", b"\x12" + b"\x80" * 12])
def test_grpc_garbage_protobuf(channel, payload):
    with pytest.raises(grpc.RpcError) as info:
        _method(channel, "Predict")(payload, timeout=30)
    assert info.value.code() in (C.INTERNAL, C.INVALID_ARGUMENT)


def test_unknown_rpc_is_unimplemented(channel):
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/tensorflow.serving.PredictionService/Explain")(b"", timeout=30)
    assert info.value.code() == C.UNIMPLEMENTED


def test_response_over_client_limit_is_resource_exhausted(channel):
    big = predict(np.ones(2_000_000, np.float32))  # the 8 MB answer exceeds the client's 4 MiB default
    with pytest.raises(grpc.RpcError) as info:
        _method(channel, "Predict")(big.SerializeToString(), timeout=60)
    assert info.value.code() == C.RESOURCE_EXHAUSTED


P = f"/v1/models/{MODEL_NAME}:predict"
REST_CASES = [
    ("not_json", "POST", P, b"{not json", 400),
    ("json_array_body", "POST", P, b"[1, 2]", 400),
    ("empty_body", "POST", P, b"", 400),
    ("invalid_utf8", "POST", P, b'{"instances": ["\xff"]}', 400),
    ("deep_nesting", "POST", P, b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    ("instances_not_list", "POST", P, b'{"instances": 1.0}', 400),
    ("instances_empty", "POST", P, b'{"instances": []}', 400),
    ("ragged_instances", "POST", P, b'{"instances": [[1.0], [1.0, 2.0]]}', 400),
    ("null_value", "POST", P, b'{"instances": [null]}', 400),
    ("bool_for_float", "POST", P, b'{"instances": [true]}', 400),
    ("b64_for_float", "POST", P, b'{"instances": [{"b64": "AAAA"}]}', 400),
    ("bad_b64", "POST", f"/v1/models/{MODEL_NAME}:classify",
     b'{"signature_name": "classify_x_to_y", "examples": [{"x": {"b64": "%%%"}}]}', 400),
    ("signature_name_not_string", "POST", P, b'{"signature_name": 3, "instances": [1.0]}', 400),
    ("unknown_verb", "POST", f"/v1/models/{MODEL_NAME}:explain", b"{}", 400),
    ("dot_dot_path", "POST", "/v1/models/../../etc/passwd:predict", b'{"instances": [1.0]}', 400),
    ("encoded_dot_dot", "POST", "/v1/models/%2e%2e:predict", b'{"instances": [1.0]}', 404),
    ("version_not_numeric", "POST", f"/v1/models/{MODEL_NAME}/versions/abc:predict", b'{"instances": [1.0]}', 400),
    ("version_overflow", "POST", f"/v1/models/{MODEL_NAME}/versions/99999999999999999999:predict",
     b'{"instances": [1.0]}', 400),
    ("unknown_input_key", "POST", P, b'{"inputs": {"z": [1.0]}}', 400),
    ("named_instance_missing_key", "POST", P, b'{"signature_name": "two_outputs", "instances": [{"x": 1.0}, {}]}',
     400),
    ("mixed_instances", "POST", P, b'{"instances": [{"x": 1.0}, 2.0]}', 400),
    ("examples_not_list", "POST", f"/v1/models/{MODEL_NAME}:classify", b'{"examples": {"x": 1.0}}', 400),
    ("example_not_object", "POST", f"/v1/models/{MODEL_NAME}:classify",
     b'{"signature_name": "classify_x_to_y", "examples": [1.0]}', 400),
    ("feature_null", "POST", f"/v1/models/{MODEL_NAME}:regress",
     b'{"signature_name": "regress_x_to_y", "examples": [{"x": null}]}', 400),
    ("feature_empty_list", "POST", f"/v1/models/{MODEL_NAME}:regress",
     b'{"signature_name": "regress_x_to_y", "examples": [{"x": []}]}', 400),
    ("feature_int_overflow", "POST", f"/v1/models/{MODEL_NAME}:regress",
     b'{"signature_name": "regress_x_to_y", "examples": [{"x": 99999999999999999999999}]}', 400),
    ("missing_examples", "POST", f"/v1/models/{MODEL_NAME}:regress", b'{"signature_name": "regress_x_to_y"}', 400),
    ("metadata_unknown_model", "GET", "/v1/models/nope/metadata", None, 404),
    ("delete_method", "DELETE", f"/v1/models/{MODEL_NAME}", None, 400),
    ("unknown_root", "GET", "/", None, 400),
]


@pytest.mark.parametrize("method, path, body, code", [c[1:] for c in REST_CASES], ids=[c[0] for c in REST_CASES])
def test_rest_malformed(shared_server, method, path, body, code):
    status, document = http(shared_server, method, path, raw=body)
    assert status == code, document
    assert isinstance(document, dict) and document["error"]


@pytest.mark.parametrize("content_length, code", [("abc", 400), (str(2 ** 40), 413), ("-1", 400)])
def test_rest_bad_content_length(shared_server, content_length, code):
    connection = http_client.HTTPConnection("127.0.0.1", shared_server.rest_port, timeout=30)
    connection.putrequest("POST", P)
    connection.putheader("Content-Length", content_length)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == code  # a length over --max_request_bytes is refused before any byte is read
    connection.close()


def test_server_alive_after_all_faults(shared_server, channel):
    """Runs last in this module: after every malformed request the server still answers correctly."""
    answer = predict_pb2.PredictResponse.FromString(
        _method(channel, "Predict")(predict([4.0]).SerializeToString(), timeout=30))
    assert list(answer.outputs["y"].float_val) == [4.0]
    assert http(shared_server, "POST", P, {"instances": [4.0]}) == (200, {"predictions": [4.0]})
    assert http(shared_server, "GET", f"/v1/models/{MODEL_NAME}")[0] == 200
    assert len(GRPC_CASES) + len(REST_CASES) >= 40
