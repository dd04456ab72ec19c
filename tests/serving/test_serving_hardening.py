"""Regression tests for issue 20: hostile input, faults and bursts must not take a model offline, desync a
connection, wrap a number or exhaust memory. Each test names the defect it pins (numbers as in the issue)."""

import http.client as http_client
import json
import logging
import os
import shutil
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_testlib import HALF_PLUS_TWO_VERSION, MODEL_NAME, http, wait_for
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import json_codec, model_config
from serving.batching import BatchingOptions, BatchScheduler
from serving.errors import ServingError
from serving.manager import directory_fingerprint
from serving.rest import RestHandlers
from serving.server import ModelServer

PREDICT = f"/v1/models/{MODEL_NAME}:predict"


def _predict_ok(server) -> bool:
    return http(server, "POST", PREDICT, {"instances": [2.0]}) == (200, {"predictions": [3.0]})


def _raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a new connection and read until the server closes it (or goes quiet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        received = b""
        try:
            while chunk := s.recv(65536):
                received += chunk
        except socket.timeout:
            pass
    return received


@pytest.fixture
def polling_server(model_base):
    with ModelServer(model_base_path=model_base, model_name=MODEL_NAME, file_system_poll_wait_seconds=0.05,
                     prometheus_path="/metrics") as server:
        yield server


# 1 -------------------------------------------------------------------------------------------------------------
def test_unlistable_base_path_keeps_serving(polling_server, model_base):
    away = model_base + ".away"
    os.rename(model_base, away)
    try:
        time.sleep(0.6)  # a dozen polls that cannot list the base path
        assert _predict_ok(polling_server)
        status = http(polling_server, "GET", f"/v1/models/{MODEL_NAME}")[1]
        assert [s["state"] for s in status["model_version_status"]] == ["AVAILABLE"]
    finally:
        os.rename(away, model_base)
    assert _predict_ok(polling_server)


# 2 -------------------------------------------------------------------------------------------------------------
def test_symlink_loops_in_a_failed_version_do_not_stall_polling(polling_server, model_base, half_plus_three_template):
    broken = os.path.join(model_base, "300")
    os.makedirs(broken)
    with open(os.path.join(broken, "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")
    os.symlink("..", os.path.join(broken, "up"))
    os.symlink("/usr", os.path.join(broken, "usr"))
    start = time.monotonic()
    assert directory_fingerprint(broken) is not None
    assert time.monotonic() - start < 1.0
    wait_for(lambda: any(s["state"] == "END" for s in http(polling_server, "GET",
                                                                f"/v1/models/{MODEL_NAME}/versions/300")[1].get(
        "model_version_status", [])), timeout=20)
    shutil.copytree(half_plus_three_template, os.path.join(model_base, "400"))
    wait_for(lambda: http(polling_server, "POST", PREDICT, {"instances": [2.0]})[1] == {"predictions": [4.0]},
             timeout=30)


# 3 -------------------------------------------------------------------------------------------------------------
def test_keep_alive_requests_have_no_nagle_floor(shared_server):
    connection = http_client.HTTPConnection("127.0.0.1", shared_server.rest_port, timeout=30)
    body = json.dumps({"instances": [1.0]})
    seconds = []
    for _ in range(25):
        start = time.perf_counter()
        connection.request("POST", PREDICT, body=body)
        response = connection.getresponse()
        assert response.status == 200, response.read()
        response.read()
        seconds.append(time.perf_counter() - start)
    connection.close()
    # The Nagle / delayed-ACK floor (~40 ms) delays every request; a busy machine (the other xdist worker) delays
    # some. So the fastest of 25 shows whether the floor is there, and the median would only measure the load.
    assert min(seconds) < 0.025, f"keep-alive fastest {min(seconds) * 1e3:.1f} ms"  # was ~44 ms every time


# 4 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, dtype", [(2 ** 40, types_pb2.DT_INT32), (-1, types_pb2.DT_UINT8),
                                          (300, types_pb2.DT_UINT8), (2 ** 63, types_pb2.DT_INT64),
                                          (1e39, types_pb2.DT_FLOAT)])
def test_out_of_range_json_numbers_are_refused(value, dtype):
    with pytest.raises(ServingError, match="not of expected type") as error:
        json_codec.json_to_array([1, value], dtype)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_in_range_json_numbers_are_kept():
    assert json_codec.json_to_array([0, 255], types_pb2.DT_UINT8).tolist() == [0, 255]
    assert json_codec.json_to_array([-2 ** 31, 2 ** 31 - 1], types_pb2.DT_INT32).tolist() == [-2 ** 31, 2 ** 31 - 1]
    assert json_codec.json_to_array(["Infinity", 1.5], types_pb2.DT_FLOAT).tolist() == [float("inf"), 1.5]


# 5 -------------------------------------------------------------------------------------------------------------
def test_burst_of_200_new_connections_all_answered(shared_server):
    request = f"GET /v1/models/{MODEL_NAME} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    barrier = threading.Barrier(200)
    answers = []

    def one():
        try:
            barrier.wait(30)
            answers.append(_raw(shared_server.rest_port, request, timeout=30)[:12])
        except OSError as e:
            answers.append(repr(e).encode())

    threads = [threading.Thread(target=one) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [a for a in answers if a != b"HTTP/1.1 200"]
    assert len(answers) == 200 and not failed, f"{len(failed)} failed, e.g. {failed[:3]}"


# 6 -------------------------------------------------------------------------------------------------------------
def test_chunked_body_is_parsed_not_smuggled(shared_server):
    body = json.dumps({"instances": [2.0]}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    reply = _raw(shared_server.rest_port, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                          "Connection: close\r\n\r\n".encode() + chunked)
    assert reply.count(b"HTTP/1.1 ") == 1, reply  # one request, one response
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b'{"predictions": [3.0]}'), reply


def test_conflicting_content_lengths_are_refused(shared_server):
    body = b'{"instances": [2.0]}'
    reply = _raw(shared_server.rest_port, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                                          f"Content-Length: {len(body) - 1}\r\n\r\n".encode() + body)
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert reply.count(b"HTTP/1.1 ") == 1, reply


# 7 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/models/%68alf_plus_two", "/V1/Models/half_plus_two",
                                  "/v1/models/half%5Fplus%5Ftwo/versions/123"])
def test_percent_encoded_and_case_insensitive_paths(shared_server, path):
    status, document = http(shared_server, "GET", path)
    assert status == 200, document
    assert document["model_version_status"][0]["version"] == str(HALF_PLUS_TWO_VERSION)


def test_model_names_with_spaces_and_non_ascii(tmp_path, half_plus_two_template):
    from serving.client import RestClient

    name = "my modèle"
    shutil.copytree(half_plus_two_template, tmp_path / "m" / "1")
    with ModelServer(model_base_path=str(tmp_path / "m"), model_name=name,
                     file_system_poll_wait_seconds=0) as server:
        client = RestClient(f"http://127.0.0.1:{server.rest_port}", timeout=10)
        assert client.status(name)[0]["state"] == "AVAILABLE"


# 8 -------------------------------------------------------------------------------------------------------------
def test_tiny_grpc_request_claiming_a_huge_tensor_is_refused(shared_server):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].tensor_shape.dim.add(size=2 ** 24)  # 64 MiB once decoded, from a 32-byte message
    request.inputs["x"].float_val.append(1.0)
    with grpc.insecure_channel(f"127.0.0.1:{shared_server.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "--max_request_bytes" in error.value.details()


def test_string_tensors_are_counted_at_their_real_cost():
    from serving.tensors import STRING_ELEMENT_BYTES, claimed_bytes

    proto = tf.make_tensor_proto(np.array([b"ab", b"c"], dtype=object))
    assert claimed_bytes(proto) == 2 * STRING_ELEMENT_BYTES + 3
    proto.tensor_shape.dim[0].size = 10 ** 6  # one value repeated a million times costs a million elements
    assert claimed_bytes(proto) >= 10 ** 6 * STRING_ELEMENT_BYTES


def test_rest_body_over_the_limit_is_refused_before_it_is_read(model_base):
    with ModelServer(model_base_path=model_base, model_name=MODEL_NAME, file_system_poll_wait_seconds=0,
                     max_request_bytes=1000) as server:
        big = json.dumps({"instances": [1.0] * 500}).encode()  # 2.5 kB
        assert http(server, "POST", PREDICT, raw=big)[0] == 413
        assert _predict_ok(server)


# 9 -------------------------------------------------------------------------------------------------------------
def test_unknown_model_names_create_no_metric_series(polling_server):
    for i in range(20):
        assert http(polling_server, "POST", f"/v1/models/nosuch{i}:predict", {"instances": [1.0]})[0] == 404
    assert _predict_ok(polling_server)
    page = http(polling_server, "GET", "/metrics")[1]
    assert "nosuch" not in page
    assert f'model_name="{MODEL_NAME}"' in page


# 10 ------------------------------------------------------------------------------------------------------------
def test_queued_task_past_its_deadline_is_not_run():
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, batch_timeout_micros=300_000,
                                               num_batch_threads=1))
    batch_sizes = []

    def model(inputs):
        batch_sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}

    try:
        queue = scheduler.add_queue(model)
        late = queue.submit({"x": np.array([1.0], np.float32)}, deadline=time.monotonic() + 0.05)
        patient = queue.submit({"x": np.array([2.0], np.float32)})
        assert patient.result(10)["y"].tolist() == [4.0]
        with pytest.raises(ServingError) as error:
            late.result(10)
        assert error.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert batch_sizes == [1]  # the expired task was left out of the batch
    finally:
        scheduler.stop()


def test_grpc_request_with_expired_deadline_is_not_started(shared_server):
    calls = []
    original = shared_server.api.manager.acquire

    def counting(spec):
        calls.append(spec.name)
        return original(spec)

    shared_server.api.manager.acquire = counting
    try:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0]))
        with pytest.raises(ServingError) as error:
            shared_server.api.call("predict", "GRPC", request, deadline=time.monotonic() - 1)
        assert error.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert calls == []  # no servable was even looked up
    finally:
        shared_server.api.manager.acquire = original


# 11 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [33, 200, 980])
def test_deeply_nested_json_is_a_400_without_traceback(shared_server, caplog, depth):
    body = ("[" * depth + "1.0" + "]" * depth).encode()
    with caplog.at_level(logging.ERROR):
        status, document = http(shared_server, "POST", PREDICT, raw=b'{"instances": ' + body + b"}")
    assert status == 400, document
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("segment", ["²", "٣", "1²", "-1"])
def test_bad_version_segment_is_a_400(shared_server, segment):
    status, document = RestHandlers(shared_server.api).handle("GET", f"/v1/models/{MODEL_NAME}/versions/{segment}",
                                                              b"")
    assert status == 400 and "Failed to convert version" in document["error"]
    reply = _raw(shared_server.rest_port, f"GET /v1/models/{MODEL_NAME}/versions/".encode() + segment.encode()
                 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply


# 12 ------------------------------------------------------------------------------------------------------------
def test_only_ascii_digit_directories_are_versions(tmp_path):
    for name in ("123", "²", "٣", "12٣", "tmp", "00000007"):
        (tmp_path / name).mkdir()
    assert model_config.list_versions(str(tmp_path)) == {123: str(tmp_path / "123"), 7: str(tmp_path / "00000007")}


def test_listing_error_is_not_an_empty_version_list(tmp_path):
    with pytest.raises(model_config.BasePathListingError):
        model_config.list_versions(str(tmp_path / "missing"))
