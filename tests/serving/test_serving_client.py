"""serving.client against a running server: gRPC and REST calls, helpers, deadlines and retries."""

import grpc
import pytest
import tensorflow as tf
from serving_testlib import HALF_PLUS_TWO_VERSION, MODEL_NAME

from serving.client import (
    GrpcClient,
    RestClient,
    RestError,
    make_example,
    make_tensor_proto,
    text_examples,
)


@pytest.fixture(scope="module")
def grpc_client(shared_server):
    with GrpcClient(f"127.0.0.1:{shared_server.grpc_port}", timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def rest_client(shared_server):
    return RestClient(f"http://127.0.0.1:{shared_server.rest_port}", timeout=10)


def test_grpc_client_calls(grpc_client):
    assert grpc_client.predict(MODEL_NAME, {"x": [1.0, 2.0]})["y"].tolist() == [2.5, 3.0]
    assert grpc_client.predict(MODEL_NAME, {"x": [1.0]}, version=HALF_PLUS_TWO_VERSION)["y"].tolist() == [2.5]
    assert grpc_client.classify(MODEL_NAME, [make_example({"x": 2.0})], "classify_x_to_y") == [[("", 3.0)]]
    assert grpc_client.regress(MODEL_NAME, [make_example({})], "regress_x_to_y",
                               context=make_example({"x": 4.0})) == [4.0]
    assert "serving_default" in grpc_client.metadata(MODEL_NAME)
    assert grpc_client.status(MODEL_NAME) == [{"version": HALF_PLUS_TWO_VERSION, "state": "AVAILABLE",
                                               "error_code": 0, "error_message": ""}]
    with pytest.raises(grpc.RpcError) as info:
        grpc_client.predict("nope", {"x": [1.0]})
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_rest_client_calls(rest_client):
    assert rest_client.predict(MODEL_NAME, instances=[1.0, 2.0]) == [2.5, 3.0]
    assert rest_client.predict(MODEL_NAME, inputs={"x": [1.0]}) == [2.5]
    assert rest_client.classify(MODEL_NAME, [{"x": 2.0}], signature_name="classify_x_to_y") == [[["", 3.0]]]
    assert rest_client.regress(MODEL_NAME, [{"x": 2.0}], signature_name="regress_x_to_y") == [3.0]
    assert rest_client.status(MODEL_NAME)[0]["state"] == "AVAILABLE"
    assert "serving_default" in rest_client.metadata(MODEL_NAME)["metadata"]["signature_def"]["signature_def"]
    with pytest.raises(RestError) as info:
        rest_client.predict("nope", instances=[1.0])
    assert info.value.status == 404 and info.value.message == "Servable not found for request: Latest(nope)"


def test_helpers():
    example = make_example({"i": [1, 2], "f": 0.5, "s": "héllo", "b": b"\x00"})
    features = example.features.feature
    assert list(features["i"].int64_list.value) == [1, 2]
    assert list(features["f"].float_list.value) == [0.5]
    assert features["s"].bytes_list.value[0] == "héllo".encode()
    assert features["b"].bytes_list.value[0] == b"\x00"
    assert text_examples(["a"])[0].features.feature["text"].bytes_list.value[0] == b"a"
    proto = make_tensor_proto(["a", "b"])
    assert proto.dtype == tf.string.as_datatype_enum and list(proto.string_val) == [b"a", b"b"]
    assert tf.make_ndarray(make_tensor_proto([[1, 2]], dtype=tf.float32)).tolist() == [[1.0, 2.0]]


C = grpc.StatusCode


class FakeRpcError(grpc.RpcError):
    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code


def failing_rpc(codes, calls):
    """A stub method that raises the given codes in turn (then answers "ok"), recording each deadline."""
    codes = list(codes)

    def method(request, timeout):
        calls.append(timeout)
        if codes:
            raise FakeRpcError(codes.pop(0))
        return "ok"

    return method


@pytest.mark.parametrize("codes, attempts, answer", [
    ([C.UNAVAILABLE, C.UNAVAILABLE], 3, "ok"),  # retried until it succeeds
    ([C.NOT_FOUND], 1, None),  # other codes are not retried
    ([C.INVALID_ARGUMENT], 1, None),
    ([C.UNAVAILABLE] * 3, 3, None),  # gives up after max_attempts
])
def test_retries_only_unavailable_with_deadline(codes, attempts, answer):
    calls = []
    with GrpcClient("127.0.0.1:1", timeout=3.5, max_attempts=3, backoff_seconds=0.001) as client:
        if answer is None:
            with pytest.raises(FakeRpcError):
                client.call(failing_rpc(codes, calls), None)
        else:
            assert client.call(failing_rpc(codes, calls), None) == answer
    assert calls == [3.5] * attempts


def test_deadline_against_unreachable_server():
    with GrpcClient("127.0.0.1:1", timeout=0.5, max_attempts=1) as client:
        with pytest.raises(grpc.RpcError) as info:
            client.predict(MODEL_NAME, {"x": [1.0]})
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
