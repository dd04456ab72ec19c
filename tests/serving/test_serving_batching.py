"""The dynamic batcher on its own, and Predict through a server with --enable_batching."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_testlib import MODEL_NAME, stubs
from tensorflow_serving.apis import predict_pb2

from serving.batching import QUEUE_FULL_MESSAGE, BatchingOptions, BatchScheduler
from serving.errors import ServingError
from serving.server import ModelServer


class RecordingModel:
    """y = 2x, remembering the batch sizes it was run on; optionally slow or blocked."""

    def __init__(self, delay=0.0, gate=None):
        self.batch_sizes = []
        self.delay = delay
        self.gate = gate

    def __call__(self, inputs):
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        self.batch_sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}


@pytest.fixture
def scheduler_factory():
    schedulers = []

    def make(**options):
        scheduler = BatchScheduler(BatchingOptions(**options))
        schedulers.append(scheduler)
        return scheduler

    yield make
    for scheduler in schedulers:
        scheduler.stop()


def test_concurrent_tasks_are_batched_and_split_back(scheduler_factory):
    model = RecordingModel(delay=0.02)
    queue = scheduler_factory(max_batch_size=4, batch_timeout_micros=50_000, num_batch_threads=1).add_queue(model)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: queue.submit({"x": np.array([i], np.float32)}).result(10), range(8)))
    assert [r["y"].tolist() for r in results] == [[2.0 * i] for i in range(8)]
    assert sum(model.batch_sizes) == 8 and max(model.batch_sizes) <= 4
    assert len(model.batch_sizes) < 8


def test_padding_to_allowed_batch_sizes(scheduler_factory):
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    queue = scheduler_factory(max_batch_size=4, allowed_batch_sizes=(2, 4), batch_timeout_micros=200_000,
                              num_batch_threads=1).add_queue(model)
    futures = [queue.submit({"x": np.array([float(i)], np.float32)}) for i in range(3)]
    gate.set()
    assert [f.result(10)["y"].tolist() for f in futures] == [[0.0], [2.0], [4.0]]
    assert model.batch_sizes == [4]  # 3 rows padded to the allowed size 4


def test_pad_variable_length_inputs(scheduler_factory):
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    queue = scheduler_factory(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1,
                              pad_variable_length_inputs=True).add_queue(model)
    short = queue.submit({"x": np.ones((1, 2), np.float32)})
    long = queue.submit({"x": np.ones((2, 3), np.float32)})
    gate.set()
    assert short.result(10)["y"].tolist() == [[2.0, 2.0, 0.0]]
    assert long.result(10)["y"].shape == (2, 3)
    assert model.batch_sizes == [3]


def test_full_queue_is_unavailable(scheduler_factory):
    gate = threading.Event()
    queue = scheduler_factory(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1).add_queue(
        RecordingModel(gate=gate))
    with ThreadPoolExecutor(1) as pool:  # the first task takes the only slot and blocks on the gate
        first = pool.submit(lambda: queue.submit({"x": np.array([1.0], np.float32)}).result(10))
        time.sleep(0.1)
        second = queue.submit({"x": np.array([2.0], np.float32)})
        with pytest.raises(ServingError) as info:
            queue.submit({"x": np.array([3.0], np.float32)})
        assert info.value.code == grpc.StatusCode.UNAVAILABLE and info.value.message == QUEUE_FULL_MESSAGE
        gate.set()
        assert first.result(10)["y"].tolist() == [2.0] and second.result(10)["y"].tolist() == [4.0]


def test_idle_scheduler_runs_a_lone_task_inline(scheduler_factory):
    model = RecordingModel()
    queue = scheduler_factory(max_batch_size=4, num_batch_threads=1).add_queue(model)
    future = queue.submit({"x": np.array([3.0], np.float32)})
    assert future.done() and future.result()["y"].tolist() == [6.0]
    assert model.batch_sizes == [1]


@pytest.mark.parametrize("inputs, message", [
    ({"x": np.ones(5, np.float32)}, "Task size 5 is larger than maximum input batch size 4"),
    ({"x": np.ones(2, np.float32), "z": np.ones(3, np.float32)},
     "Batching session Run() input tensors must have equal 0th-dimension size"),
    ({"x": np.float32(1.0)}, "Batching session Run() input tensors must have at least one dimension"),
])
def test_task_errors(scheduler_factory, inputs, message):
    queue = scheduler_factory(max_batch_size=4, num_batch_threads=1).add_queue(RecordingModel())
    with pytest.raises(ServingError) as info:
        queue.submit(inputs)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and info.value.message == message


def test_allowed_batch_sizes_must_end_at_max():
    with pytest.raises(ServingError) as info:
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(2, 4))
    assert info.value.message.startswith("Last entry in allowed_batch_sizes must match max_batch_size")


def test_server_with_batching(tmp_path, model_base):
    params = tmp_path / "batching_parameters.txt"
    params.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 20000 }\n"
                      "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 100 }\n"
                      "allowed_batch_sizes: 4\nallowed_batch_sizes: 8\n")
    with ModelServer(model_base_path=model_base, model_name=MODEL_NAME, enable_batching=True,
                     batching_parameters_file=str(params), rest_api_port=None,
                     file_system_poll_wait_seconds=0) as server:
        assert server.batching_options.allowed_batch_sizes == (4, 8)
        prediction, _, channel = stubs(server)

        def call(i):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = MODEL_NAME
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([float(i)]))
            return prediction.Predict(request, timeout=30).outputs["y"].float_val[0]

        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(call, range(32))) == [0.5 * i + 2 for i in range(32)]
        batches = server.metrics.processed_batch_size.count(model_name=MODEL_NAME)
        assert 0 < batches < 32  # requests shared batches
        assert "padding_size" in server.metrics.render()
        channel.close()


def test_full_queue_over_grpc_and_rest(model_base):
    """A full batch queue answers UNAVAILABLE / HTTP 503 with TF Serving's message; the server keeps serving."""
    from serving_testlib import http
    options = BatchingOptions(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1)
    with ModelServer(model_base_path=model_base, model_name=MODEL_NAME, enable_batching=True,
                     batching_options=options, file_system_poll_wait_seconds=0) as server:
        with server.manager.acquire(predict_pb2.PredictRequest(model_spec={"name": MODEL_NAME}).model_spec) as s:
            signature = s.signatures["serving_default"]
        fast = signature._function

        def slow(**inputs):  # makes the model take 0.3 s so that the queue fills
            time.sleep(0.3)
            return fast(**inputs)

        signature._function = slow
        prediction, _, channel = stubs(server)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0]))

        def call(_):
            try:
                prediction.Predict(request, timeout=30)
                return "OK"
            except grpc.RpcError as e:
                return (e.code(), e.details())

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(call, range(6)))
        assert "OK" in results
        assert (grpc.StatusCode.UNAVAILABLE, QUEUE_FULL_MESSAGE) in results
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: http(server, "POST", f"/v1/models/{MODEL_NAME}:predict",
                                                   {"instances": [1.0]}), range(6)))
        assert (503, {"error": QUEUE_FULL_MESSAGE}) in answers
        signature._function = fast
        assert prediction.Predict(request, timeout=30).outputs["y"].float_val[0] == 2.5
        channel.close()
