"""Test models and helpers for the serving tests: SavedModels built with TF (half_plus_two as in TF Serving's
testdata, and a raw-text classifier), gRPC stubs, and polling."""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc  # noqa: E402

HALF_PLUS_TWO_VERSION = 123
MODEL_NAME = "half_plus_two"


class HalfPlusTwo(tf.Module):
    """y = a * x + b with TF Serving's half_plus_two signatures (x -> y; tf.Example "inputs" -> scores/outputs)."""

    def __init__(self, a=0.5, b=2.0):
        super().__init__()
        self.a = tf.Variable(a)
        self.b = tf.Variable(b)

    def _parse_x(self, inputs):
        return tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def predict(self, x):
        return {"y": self.a * x + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def predict_two_outputs(self, x):
        return {"y": self.a * x + self.b, "x_copy": tf.identity(x)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def classify(self, inputs):
        return {"scores": self.a * self._parse_x(inputs) + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def regress(self, inputs):
        return {"outputs": self.a * self._parse_x(inputs) + self.b}


def build_half_plus_two(path, a=0.5, b=2.0):
    """Save half_plus_two (y = a*x + b) as a SavedModel at `path`."""
    module = HalfPlusTwo(a, b)
    tf.saved_model.save(module, str(path), signatures={
        "serving_default": module.predict,
        "two_outputs": module.predict_two_outputs,
        "classify_x_to_y": module.classify,
        "regress_x_to_y": module.regress,
    })
    return str(path)


class TextClassifier(tf.Module):
    """A raw-text model shaped as exported text classifiers are: DT_STRING text in, classes/scores out."""

    LABELS = ("negative", "positive")

    def _scores(self, text):
        # positive score grows with the number of "good" in the text; deterministic and easy to assert on.
        good = tf.cast(tf.strings.regex_replace(text, "good", "\x01") != text, tf.float32)
        return tf.stack([1.0 - good, good], axis=1)

    def _classes(self, n):
        return tf.tile(tf.constant([list(self.LABELS)]), [n, 1])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def predict(self, text):
        scores = self._scores(text)
        return {"scores": scores, "classes": self._classes(tf.shape(text)[0])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def classify(self, inputs):
        text = tf.io.parse_example(inputs, {"text": tf.io.FixedLenFeature([], tf.string)})["text"]
        return {"scores": self._scores(text), "classes": self._classes(tf.shape(text)[0])}


def build_text_classifier(path):
    module = TextClassifier()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.predict,
                                                      "classify": module.classify})
    return str(path)


def stubs(server):
    """(PredictionService stub, ModelService stub, channel) for a running server."""
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return (prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel), channel)


def wait_for(predicate, timeout=30.0, interval=0.1):
    """Poll `predicate` until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def http(server, method, path, body=None, raw=None):
    """(HTTP status, parsed JSON or text) of one request to the server's REST port."""
    import http.client
    import json
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        connection.request(method, path, body=payload)
        response = connection.getresponse()
        data = response.read()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(data)
        return response.status, data.decode()
    finally:
        connection.close()


def start_cli_server(*args, model_name=MODEL_NAME, rest=False, timeout=180, log_path=None):
    """A started `serving.process.ServerProcess` running `python -m serving.server ARGS` (gRPC on a free port;
    also REST when `rest`), returned once `model_name` is AVAILABLE; stop it with `.stop()` or `with`."""
    from serving.process import ServerProcess
    return ServerProcess(list(args), model_name=model_name, rest=rest, start_timeout=timeout,
                         log_path=log_path).start()


def with_spec(request, name=MODEL_NAME, signature="", version=None, label=None):
    """`request` with its model_spec filled in."""
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    return request


def float_example(**features):
    """A tf.Example of float features (bytes values become bytes features)."""
    example = tf.train.Example()
    for key, value in features.items():
        feature = example.features.feature[key]
        if isinstance(value, bytes):
            feature.bytes_list.value.append(value)
        else:
            feature.float_list.value.append(value)
    return example


def examples_request(request, signature, examples=(), context=None):
    """A Classification/RegressionRequest on half_plus_two with `examples` (and a context, if given)."""
    with_spec(request, signature=signature)
    if context is not None:
        request.input.example_list_with_context.context.CopyFrom(context)
        request.input.example_list_with_context.examples.extend(examples)
    else:
        request.input.example_list.examples.extend(examples)
    return request


class Sleeper(tf.Module):
    """`seconds` (float [batch]) -> y: busy for the first element's seconds in a graph loop of small ops, so a
    run can be cancelled between ops (a request that is still working when a deadline or shutdown comes)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def sleep(self, seconds):
        end = tf.timestamp() + tf.cast(seconds[0], tf.float64)
        steps = tf.while_loop(lambda i: tf.timestamp() < end, lambda i: i + 1, [tf.constant(0)])
        return {"y": seconds * 0.0 + tf.cast(steps[0] * 0, tf.float32)}


def build_sleeper(path):
    module = Sleeper()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.sleep})
    return str(path)
