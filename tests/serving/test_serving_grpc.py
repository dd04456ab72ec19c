"""gRPC behaviour mirrored from TF Serving's tensorflow_model_server_test.py, on half_plus_two."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_testlib import HALF_PLUS_TWO_VERSION, MODEL_NAME, examples_request, with_spec
from serving_testlib import float_example as example
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
)

from serving.inference import CLASSIFY_METHOD, REGRESS_METHOD


def predict_request(x, signature="", output_filter=(), version=None, label=None, name=MODEL_NAME):
    request = with_spec(predict_pb2.PredictRequest(), name, signature, version, label)
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray(x, np.float32)))
    request.output_filter.extend(output_filter)
    return request


def assert_rpc_error(call, request, code, message):
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    assert info.value.code() == code
    assert info.value.details() == message


def test_get_model_status(grpc_stubs):
    _, model = grpc_stubs
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL_NAME
    response = model.GetModelStatus(request, timeout=10)
    assert len(response.model_version_status) == 1
    status = response.model_version_status[0]
    assert status.version == HALF_PLUS_TWO_VERSION
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0 and status.status.error_message == ""


def test_get_model_status_errors(grpc_stubs):
    _, model = grpc_stubs
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.version.value = 7
    assert_rpc_error(model.GetModelStatus, request, grpc.StatusCode.NOT_FOUND,
                     f"Could not find version 7 of model {MODEL_NAME}")
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    assert_rpc_error(model.GetModelStatus, request, grpc.StatusCode.NOT_FOUND,
                     "Could not find any versions of model nope")


def test_get_model_metadata(grpc_stubs):
    prediction, _ = grpc_stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL_NAME
    response = prediction.GetModelMetadata(request, timeout=10)
    assert response.model_spec.name == MODEL_NAME
    assert response.model_spec.version.value == HALF_PLUS_TWO_VERSION
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_defs)
    default = signature_defs.signature_def["serving_default"]
    assert list(default.inputs) == ["x"] and list(default.outputs) == ["y"]
    assert default.inputs["x"].dtype == tf.float32.as_datatype_enum
    assert {"classify_x_to_y", "regress_x_to_y"} <= set(signature_defs.signature_def)


def test_get_model_metadata_errors(grpc_stubs):
    prediction, _ = grpc_stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL_NAME
    assert_rpc_error(prediction.GetModelMetadata, request, grpc.StatusCode.INVALID_ARGUMENT,
                     "GetModelMetadataRequest must specify at least one metadata_field")
    request.metadata_field.append("graph")
    assert_rpc_error(prediction.GetModelMetadata, request, grpc.StatusCode.INVALID_ARGUMENT,
                     "Metadata field graph is not supported")


def test_classify(grpc_stubs):
    prediction, _ = grpc_stubs
    request = examples_request(classification_pb2.ClassificationRequest(), "classify_x_to_y",
                               [example(x=2.0), example(x=4.0)])
    response = prediction.Classify(request, timeout=10)
    assert [c.classes[0].score for c in response.result.classifications] == [3.0, 4.0]
    assert response.model_spec.signature_name == "classify_x_to_y"
    assert response.model_spec.version.value == HALF_PLUS_TWO_VERSION


def test_classify_with_context(grpc_stubs):
    prediction, _ = grpc_stubs
    request = examples_request(classification_pb2.ClassificationRequest(), "classify_x_to_y",
                               [tf.train.Example(), example(x=2.0)], context=example(x=10.0))
    response = prediction.Classify(request, timeout=10)
    # the context fills in the first example; the second example's own x overrides it
    assert [c.classes[0].score for c in response.result.classifications] == [7.0, 3.0]


def test_regress(grpc_stubs):
    prediction, _ = grpc_stubs
    request = examples_request(regression_pb2.RegressionRequest(), "regress_x_to_y", [example(x=2.0)])
    response = prediction.Regress(request, timeout=10)
    assert [r.value for r in response.result.regressions] == [3.0]
    assert response.model_spec.signature_name == "regress_x_to_y"


def test_classify_regress_errors(grpc_stubs):
    prediction, _ = grpc_stubs
    empty = examples_request(classification_pb2.ClassificationRequest(), "classify_x_to_y")
    assert_rpc_error(prediction.Classify, empty, grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
    for call, request_class in ((prediction.Classify, classification_pb2.ClassificationRequest),
                                (prediction.Regress, regression_pb2.RegressionRequest)):
        unknown = examples_request(request_class(), "nope", [example(x=2.0)])
        assert_rpc_error(call, unknown, grpc.StatusCode.INVALID_ARGUMENT, "No signature was found with the name: nope")


def test_multi_inference(grpc_stubs):
    prediction, _ = grpc_stubs
    request = inference_pb2.MultiInferenceRequest()
    request.tasks.add(method_name=REGRESS_METHOD).model_spec.CopyFrom(
        predict_request([0], signature="regress_x_to_y").model_spec)
    request.tasks.add(method_name=CLASSIFY_METHOD).model_spec.CopyFrom(
        predict_request([0], signature="classify_x_to_y").model_spec)
    request.input.example_list.examples.append(example(x=2.0))
    response = prediction.MultiInference(request, timeout=10)
    assert response.results[0].regression_result.regressions[0].value == 3.0
    assert response.results[1].classification_result.classifications[0].classes[0].score == 3.0
    assert [r.model_spec.signature_name for r in response.results] == ["regress_x_to_y", "classify_x_to_y"]
    request.tasks[1].model_spec.signature_name = "missing"
    assert_rpc_error(prediction.MultiInference, request, grpc.StatusCode.INVALID_ARGUMENT,
                     "Requested signature not found in model graph: missing")


def test_predict(grpc_stubs):
    prediction, _ = grpc_stubs
    response = prediction.Predict(predict_request([2.0, 4.0]), timeout=10)
    assert list(response.outputs["y"].float_val) == [3.0, 4.0]
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [3.0, 4.0]
    assert response.model_spec.name == MODEL_NAME
    assert response.model_spec.version.value == HALF_PLUS_TWO_VERSION
    assert response.model_spec.signature_name == "serving_default"


def test_predict_with_output_filter(grpc_stubs):
    prediction, _ = grpc_stubs
    both = prediction.Predict(predict_request([2.0], signature="two_outputs"), timeout=10)
    assert set(both.outputs) == {"y", "x_copy"}
    filtered = prediction.Predict(predict_request([2.0], signature="two_outputs", output_filter=["y"]), timeout=10)
    assert set(filtered.outputs) == {"y"} and list(filtered.outputs["y"].float_val) == [3.0]


def test_predict_specific_version(grpc_stubs):
    prediction, _ = grpc_stubs
    response = prediction.Predict(predict_request([2.0], version=HALF_PLUS_TWO_VERSION), timeout=10)
    assert list(response.outputs["y"].float_val) == [3.0]


@pytest.mark.parametrize("request_kwargs, code, message", [
    ({"name": "unknown"}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(unknown)"),
    ({"version": 7}, grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Specific({MODEL_NAME}, 7)"),
    ({"name": ""}, grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified."),
    ({"label": "canary"}, grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: canary"),
    ({"signature": "nope"}, grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.'),
    ({"output_filter": ["z"]}, grpc.StatusCode.INVALID_ARGUMENT,
     "output tensor alias not found in signature: z Outputs expected to be in the set {y}."),
    ({"output_filter": ["y", "y"]}, grpc.StatusCode.INVALID_ARGUMENT, "duplicate output tensor alias: y"),
])
def test_predict_errors(grpc_stubs, request_kwargs, code, message):
    prediction, _ = grpc_stubs
    assert_rpc_error(prediction.Predict, predict_request([1.0], **request_kwargs), code, message)


def test_predict_input_errors(grpc_stubs):
    prediction, _ = grpc_stubs
    extra = predict_request([1.0])
    extra.inputs["z"].CopyFrom(tf.make_tensor_proto([1.0]))
    assert_rpc_error(prediction.Predict, extra, grpc.StatusCode.INVALID_ARGUMENT,
                     "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. "
                     "Missing but required: {}.")
    wrong_key = predict_pb2.PredictRequest()
    wrong_key.model_spec.name = MODEL_NAME
    wrong_key.inputs["z"].CopyFrom(tf.make_tensor_proto([1.0]))
    assert_rpc_error(prediction.Predict, wrong_key, grpc.StatusCode.INVALID_ARGUMENT,
                     "input tensor alias not found in signature: z. Inputs expected to be in the set {x}.")
    wrong_type = predict_pb2.PredictRequest()
    wrong_type.model_spec.name = MODEL_NAME
    wrong_type.inputs["x"].CopyFrom(tf.make_tensor_proto(["a"]))
    assert_rpc_error(prediction.Predict, wrong_type, grpc.StatusCode.INVALID_ARGUMENT,
                     "Expects arg[0] to be float but string is provided")
    wrong_shape = predict_request([[1.0]])
    with pytest.raises(grpc.RpcError) as info:
        prediction.Predict(wrong_shape, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "shape [?]" in info.value.details()


def test_long_messages_are_truncated(grpc_stubs):
    prediction, _ = grpc_stubs
    request = predict_request([1.0], name="m" * 2000)
    with pytest.raises(grpc.RpcError) as info:
        prediction.Predict(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(info.value.details()) == 1024 + len("...TRUNCATED")
    assert info.value.details().endswith("...TRUNCATED")


def test_raw_text_model_over_grpc(text_server):
    from serving.client import GrpcClient, text_examples
    with GrpcClient(f"127.0.0.1:{text_server.grpc_port}") as client:
        outputs = client.predict("text_classifier", {"text": ["a good film", "dull"]})
        assert outputs["scores"].tolist() == [[0.0, 1.0], [1.0, 0.0]]
        assert outputs["classes"].tolist() == [[b"negative", b"positive"]] * 2
        results = client.classify("text_classifier", text_examples(["good", "bad"]), signature_name="classify")
        assert results == [[("negative", 0.0), ("positive", 1.0)], [("negative", 1.0), ("positive", 0.0)]]
        signature = client.metadata("text_classifier")["classify"]
        assert signature.inputs["inputs"].dtype == tf.string.as_datatype_enum


def test_predict_over_unix_socket(model_base, tmp_path):
    from serving.client import GrpcClient
    from serving.server import ModelServer
    socket_path = str(tmp_path / "grpc.sock")
    with ModelServer(model_base_path=model_base, model_name=MODEL_NAME, rest_api_port=None,
                     file_system_poll_wait_seconds=0, grpc_socket_path=socket_path):
        with GrpcClient(f"unix:{socket_path}") as client:
            assert client.predict(MODEL_NAME, {"x": [2.0]})["y"].tolist() == [3.0]
