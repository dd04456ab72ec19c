"""Load with faults: 16 clients x 2,000 Predicts while a new version, then a corrupt one, are pushed; and while
the base path is unreadable for 5 s."""

import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import tensorflow as tf
from serving_testlib import HALF_PLUS_TWO_VERSION, MODEL_NAME, start_cli_server, wait_for
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.client import GrpcClient

CLIENTS = 16
REQUESTS_PER_CLIENT = 2000
TIME_LIMIT_SECONDS = 600  # bounds the whole load loop even if the server slows to a crawl
NEW_VERSION = 200
CORRUPT_VERSION = 300


def _load_clients(port, versions, done, failures, seen, deadline):
    """The client loop of one load test client: Predicts with checked answers, failures recorded."""
    lock = threading.Lock()

    def client(index):
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        for i in range(REQUESTS_PER_CLIENT):
            if time.monotonic() > deadline:
                break
            x = float(index * REQUESTS_PER_CLIENT + i)
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([x]))
            try:
                response = stub.Predict(request, timeout=30)
                version = response.model_spec.version.value
                y = response.outputs["y"].float_val[0]
                expected = 0.5 * x + (2.0 if version == HALF_PLUS_TWO_VERSION else 3.0)
                if version not in versions or abs(y - expected) > 1e-3 * max(1, x):
                    raise AssertionError(f"x={x}: y={y} from version {version}")
                with lock:
                    seen.add(version)
            except Exception as e:  # every failure is recorded, none retried
                detail = e.details() if isinstance(e, grpc.RpcError) else str(e)
                with lock:
                    failures.append(f"{type(e).__name__}: {detail}")
            done[index] += 1
        channel.close()

    return client


@pytest.mark.e2e
def test_version_push_under_load_drops_no_request(model_base, half_plus_three_template):
    server = start_cli_server(f"--model_name={MODEL_NAME}", f"--model_base_path={model_base}",
                              "--file_system_poll_wait_seconds=0.2", "--enable_batching")
    port = server.grpc_port
    done = [0] * CLIENTS
    failures, seen = [], set()
    deadline = time.monotonic() + TIME_LIMIT_SECONDS
    client = _load_clients(port, (HALF_PLUS_TWO_VERSION, NEW_VERSION), done, failures, seen, deadline)

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client, i) for i in range(CLIENTS)]
            while sum(done) < CLIENTS * REQUESTS_PER_CLIENT // 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            # pushed in place, file by file, as a plain copy does: the server may see it half-written
            shutil.copytree(half_plus_three_template, os.path.join(model_base, str(NEW_VERSION)))
            while NEW_VERSION not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
            corrupt = os.path.join(model_base, str(CORRUPT_VERSION))
            os.makedirs(corrupt)
            with open(os.path.join(corrupt, "saved_model.pb"), "wb") as f:
                f.write(b"not a SavedModel")
            for future in futures:
                future.result()
        assert sum(done) == CLIENTS * REQUESTS_PER_CLIENT, "load loop hit its time limit"
        assert failures == [], f"{len(failures)} failed requests, e.g. {failures[:5]}"
        assert seen == {HALF_PLUS_TWO_VERSION, NEW_VERSION}
        # the server has tried the corrupt push and failed it, and the new version still serves
        with GrpcClient(f"127.0.0.1:{port}") as status_client:
            wait_for(lambda: any(s["version"] == CORRUPT_VERSION and s["state"] == "END" and s["error_message"]
                                 for s in status_client.status(MODEL_NAME)))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = MODEL_NAME
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([2.0]))
            response = stub.Predict(request, timeout=30)
            assert response.model_spec.version.value == NEW_VERSION
            assert response.outputs["y"].float_val[0] == 4.0
    finally:
        server.stop()
    assert server.exit_code == 0


@pytest.mark.e2e
def test_base_path_unreadable_for_5s_under_load_drops_no_request(model_base):
    """Issue 20, defect 1: the base path renamed away for 5 s mid-load must not unload the served version."""
    server = start_cli_server(f"--model_name={MODEL_NAME}", f"--model_base_path={model_base}",
                              "--file_system_poll_wait_seconds=0.2")
    done = [0] * CLIENTS
    failures, seen = [], set()
    deadline = time.monotonic() + TIME_LIMIT_SECONDS
    client = _load_clients(server.grpc_port, (HALF_PLUS_TWO_VERSION,), done, failures, seen, deadline)
    away = model_base + ".away"
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client, i) for i in range(CLIENTS)]
            while sum(done) < CLIENTS * REQUESTS_PER_CLIENT // 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.rename(model_base, away)
            try:
                time.sleep(5)  # 25 polls that cannot list the base path, while the clients keep sending
                during = sum(done)
            finally:
                os.rename(away, model_base)
            for future in futures:
                future.result()
        assert sum(done) == CLIENTS * REQUESTS_PER_CLIENT, "load loop hit its time limit"
        assert during < CLIENTS * REQUESTS_PER_CLIENT, "the load ended before the base path came back"
        assert failures == [], f"{len(failures)} failed requests, e.g. {failures[:5]}"
        assert "Could not list base path" in server.log_tail(20000)
    finally:
        server.stop()
    assert server.exit_code == 0
