"""Raw strings sent to a signature that parses serialized tf.Examples (issue 33, point 2): REST and gRPC Predict
answer INVALID_ARGUMENT naming the model's signatures that take text, not the graph's parse traceback alone."""

import base64

import grpc
import pytest
import tensorflow as tf
from serving_testlib import http, stubs
from tensorflow_serving.apis import model_pb2, predict_pb2

from serving import inference
from serving.errors import ServingError
from serving.servable import Servable
from serving.server import ModelServer

MODEL = "reviews"


class ExamplesFirstClassifier(tf.Module):
    """Shaped as text classifiers were exported before issue 33: `serving_default` takes serialized tf.Examples
    (`examples`), `predict_text` raw `text`, `classify` tf.Examples under Classify's `inputs`."""

    def _length(self, text):
        return {"length": tf.strings.length(text)}

    def _parse(self, serialized):
        return tf.io.parse_example(serialized, {"text": tf.io.FixedLenFeature([], tf.string)})["text"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def predict_examples(self, examples):
        return self._length(self._parse(examples))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def predict_text(self, text):
        return self._length(text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        return {"scores": tf.cast(tf.strings.length(self._parse(inputs)), tf.float32)[:, None]}


def _example(text: str) -> bytes:
    example = tf.train.Example()
    example.features.feature["text"].bytes_list.value.append(text.encode())
    return example.SerializeToString()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The models' base folder: `reviews` (tf.Example serving_default and text signatures), `examples_only`."""
    base = tmp_path_factory.mktemp("examples_first")
    module = ExamplesFirstClassifier()
    tf.saved_model.save(module, str(base / MODEL / "1"), signatures={
        "serving_default": module.predict_examples, "predict_text": module.predict_text,
        "classify": module.classify})
    only_examples = ExamplesFirstClassifier()
    tf.saved_model.save(only_examples, str(base / "examples_only" / "1"),
                        signatures={"serving_default": only_examples.predict_examples})
    return base


@pytest.fixture(scope="module")
def server(saved):
    base = saved
    with ModelServer(model_base_path=str(base / MODEL), model_name=MODEL, file_system_poll_wait_seconds=0) as s:
        yield s


def _assert_names_text_signatures(message: str, signature: str):
    assert f'Signature "{signature}" of model "{MODEL}" takes serialized tf.Example protos' in message
    assert "Could not parse example input" in message  # TF's own reason stays, after ours
    assert '"predict_text" (inputs: text)' in message
    assert '"signature_name": "predict_text"' in message
    assert "function_node" not in message and "ParseExampleV2" not in message


@pytest.mark.parametrize("body", [{"instances": ["A gorgeous film."]}, {"inputs": ["A gorgeous film."]}],
                         ids=["instances", "inputs"])
def test_rest_strings_to_a_tf_example_serving_default_name_the_text_signatures(server, body):
    status, answer = http(server, "POST", f"/v1/models/{MODEL}:predict", body)
    assert status == 400
    _assert_names_text_signatures(answer["error"], "serving_default")


def test_rest_strings_to_the_classify_signature_name_the_text_signatures(server):
    status, answer = http(server, "POST", f"/v1/models/{MODEL}:predict",
                          {"signature_name": "classify", "instances": ["A gorgeous film."]})
    assert status == 400
    _assert_names_text_signatures(answer["error"], "classify")


def test_grpc_predict_strings_to_tf_example_signature_is_invalid_argument_with_the_hint(server):
    prediction, _, channel = stubs(server)
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=MODEL))
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto([b"A gorgeous film."], dtype=tf.string))
    try:
        with pytest.raises(grpc.RpcError) as raised:
            prediction.Predict(request, timeout=30)
    finally:
        channel.close()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _assert_names_text_signatures(raised.value.details(), "serving_default")


def test_real_tf_examples_and_other_parse_errors_are_unchanged(server):
    examples = [{"b64": base64.b64encode(_example(text)).decode()} for text in ("good", "a film")]
    assert http(server, "POST", f"/v1/models/{MODEL}:predict", {"instances": examples}) == (
        200, {"predictions": [4, 6]})
    # A well-formed tf.Example that lacks the feature is not raw text: TF's message, without our hint.
    empty = {"b64": base64.b64encode(tf.train.Example().SerializeToString()).decode()}
    status, answer = http(server, "POST", f"/v1/models/{MODEL}:predict", {"instances": [empty]})
    assert status == 400 and "is required but could not be found" in answer["error"]
    assert "predict_text" not in answer["error"]
    assert http(server, "POST", f"/v1/models/{MODEL}:predict",
                {"signature_name": "predict_text", "instances": ["A gorgeous film."]}) == (
        200, {"predictions": [16]})


def test_a_model_without_text_signatures_says_to_send_tf_examples(saved):
    servable = Servable.load("examples_only", 1, str(saved / "examples_only" / "1"))
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="examples_only"))
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto([b"great"], dtype=tf.string))
    with pytest.raises(ServingError) as raised:
        inference.predict(servable, request)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "no signature that takes text" in raised.value.message
    assert "Could not parse example input" in raised.value.message

