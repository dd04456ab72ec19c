"""Load with faults: 16 clients sending Predicts without pause while a new version, then a corrupt one, are
pushed; and while the base path is unreadable for 5 s. The load runs from before each fault until a settled
stretch after it (not a fixed request count: the faults, not the volume, are what is tested)."""

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
SETTLED_REQUESTS = 1500  # answered before a fault starts, and again after it is over, before the load stops
TIME_LIMIT_SECONDS = 600  # bounds the whole load loop even if the server slows to a crawl
NEW_VERSION = 200
CORRUPT_VERSION = 300


class _Load:
    """CLIENTS threads sending Predicts with checked answers until `stop()`; every failure is recorded, none
    retried."""

    def __init__(self, port, versions):
        self.port, self.versions = port, versions
        self.done = [0] * CLIENTS
        self.failures, self.seen = [], set()
        self.deadline = time.monotonic() + TIME_LIMIT_SECONDS
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(CLIENTS)
        self._futures = [self._pool.submit(self._client, i) for i in range(CLIENTS)]

    def _client(self, index):
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        i = 0
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            x = float(index * 100_000 + i)
            i += 1
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([x]))
            try:
                response = stub.Predict(request, timeout=30)
                version = response.model_spec.version.value
                y = response.outputs["y"].float_val[0]
                expected = 0.5 * x + (2.0 if version == HALF_PLUS_TWO_VERSION else 3.0)
                if version not in self.versions or abs(y - expected) > 1e-3 * max(1, x):
                    raise AssertionError(f"x={x}: y={y} from version {version}")
                with self._lock:
                    self.seen.add(version)
            except Exception as e:
                detail = e.details() if isinstance(e, grpc.RpcError) else str(e)
                with self._lock:
                    self.failures.append(f"{type(e).__name__}: {detail}")
            self.done[index] += 1
        channel.close()

    def total(self):
        return sum(self.done)

    def wait_for_more(self, requests):
        """Returns once `requests` more have been answered (or failed) from now; fails on the time limit."""
        target = self.total() + requests
        while self.total() < target:
            assert time.monotonic() < self.deadline, "load loop hit its time limit"
            time.sleep(0.05)

    def stop(self):
        self._stop.set()
        for future in self._futures:
            future.result()
        self._pool.shutdown()


@pytest.mark.e2e
def test_version_push_under_load_drops_no_request(model_base, half_plus_three_template):
    server = start_cli_server(f"--model_name={MODEL_NAME}", f"--model_base_path={model_base}",
                              "--file_system_poll_wait_seconds=0.2", "--enable_batching")
    port = server.grpc_port
    load = None
    try:
        load = _Load(port, (HALF_PLUS_TWO_VERSION, NEW_VERSION))
        load.wait_for_more(SETTLED_REQUESTS)
        # pushed in place, file by file, as a plain copy does: the server may see it half-written
        shutil.copytree(half_plus_three_template, os.path.join(model_base, str(NEW_VERSION)))
        wait_for(lambda: NEW_VERSION in load.seen, timeout=TIME_LIMIT_SECONDS)
        corrupt = os.path.join(model_base, str(CORRUPT_VERSION))
        os.makedirs(corrupt)
        with open(os.path.join(corrupt, "saved_model.pb"), "wb") as f:
            f.write(b"not a SavedModel")
        # the server tries the corrupt push and fails it while the load goes on
        with GrpcClient(f"127.0.0.1:{port}") as status_client:
            wait_for(lambda: any(s["version"] == CORRUPT_VERSION and s["state"] == "END" and s["error_message"]
                                 for s in status_client.status(MODEL_NAME)))
        load.wait_for_more(SETTLED_REQUESTS)
        load.stop()
        # the server's log (loads, unloads, retries) goes with a failure: a version switch that drops requests
        # happened once under CI load and is not reproduced yet
        assert load.failures == [], (f"{len(load.failures)} failed requests, e.g. {load.failures[:5]}; "
                                     f"server log:\n{server.log_tail(6000)}")
        assert load.seen == {HALF_PLUS_TWO_VERSION, NEW_VERSION}
        # and the new version still serves
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = MODEL_NAME
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([2.0]))
            response = stub.Predict(request, timeout=30)
            assert response.model_spec.version.value == NEW_VERSION
            assert response.outputs["y"].float_val[0] == 4.0
    finally:
        if load is not None:
            load.stop()
        server.stop()
    assert server.exit_code == 0


@pytest.mark.e2e
def test_base_path_unreadable_for_5s_under_load_drops_no_request(model_base):
    """Issue 20, defect 1: the base path renamed away for 5 s mid-load must not unload the served version."""
    server = start_cli_server(f"--model_name={MODEL_NAME}", f"--model_base_path={model_base}",
                              "--file_system_poll_wait_seconds=0.2")
    away = model_base + ".away"
    load = None
    try:
        load = _Load(server.grpc_port, (HALF_PLUS_TWO_VERSION,))
        load.wait_for_more(SETTLED_REQUESTS)
        before = load.total()
        os.rename(model_base, away)
        try:
            time.sleep(5)  # 25 polls that cannot list the base path, while the clients keep sending
            during = load.total() - before
        finally:
            os.rename(away, model_base)
        load.wait_for_more(SETTLED_REQUESTS)
        load.stop()
        assert during > 0, "no request was answered while the base path was unreadable"
        assert load.failures == [], f"{len(load.failures)} failed requests, e.g. {load.failures[:5]}"
        assert "Could not list base path" in server.log_tail(20000)
    finally:
        if load is not None:
            load.stop()
        server.stop()
    assert server.exit_code == 0
