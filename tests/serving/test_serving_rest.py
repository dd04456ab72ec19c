"""REST behaviour mirrored from TF Serving's tensorflow_model_server_test.py (and api_rest.md), plus raw text."""

import base64

import pytest
from serving_testlib import HALF_PLUS_TWO_VERSION, MODEL_NAME, http

PREDICT = f"/v1/models/{MODEL_NAME}:predict"


def test_predict_row_format(shared_server):
    assert http(shared_server, "POST", PREDICT, {"instances": [1.0, 2.0, 5.0]}) == (
        200, {"predictions": [2.5, 3.0, 4.5]})


def test_predict_columnar_format(shared_server):
    assert http(shared_server, "POST", PREDICT, {"inputs": [1.0, 2.0, 5.0]}) == (200, {"outputs": [2.5, 3.0, 4.5]})
    assert http(shared_server, "POST", PREDICT, {"inputs": {"x": [1.0]}}) == (200, {"outputs": [2.5]})


def test_predict_named_instances_and_several_outputs(shared_server):
    status, body = http(shared_server, "POST", PREDICT,
                        {"signature_name": "two_outputs", "instances": [{"x": 1.0}, {"x": 2}]})
    assert status == 200
    assert body == {"predictions": [{"y": 2.5, "x_copy": 1.0}, {"y": 3.0, "x_copy": 2.0}]}
    status, body = http(shared_server, "POST", PREDICT, {"signature_name": "two_outputs", "inputs": {"x": [4.0]}})
    assert body == {"outputs": {"y": [4.0], "x_copy": [4.0]}}


def test_predict_by_version(shared_server):
    path = f"/v1/models/{MODEL_NAME}/versions/{HALF_PLUS_TWO_VERSION}:predict"
    assert http(shared_server, "POST", path, {"instances": [2.0]}) == (200, {"predictions": [3.0]})


def test_classify(shared_server):
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}, {"x": 4.0}]}
    assert http(shared_server, "POST", f"/v1/models/{MODEL_NAME}:classify", body) == (
        200, {"results": [[["", 3.0]], [["", 4.0]]]})


def test_regress_with_context(shared_server):
    body = {"signature_name": "regress_x_to_y", "context": {"x": 2.0}, "examples": [{}, {"x": 6.0}]}
    assert http(shared_server, "POST", f"/v1/models/{MODEL_NAME}:regress", body) == (200, {"results": [3.0, 5.0]})


def test_status(shared_server):
    expected = {"model_version_status": [{"version": str(HALF_PLUS_TWO_VERSION), "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}
    assert http(shared_server, "GET", f"/v1/models/{MODEL_NAME}") == (200, expected)
    assert http(shared_server, "GET", f"/v1/models/{MODEL_NAME}/versions/{HALF_PLUS_TWO_VERSION}") == (
        200, expected)


def test_metadata(shared_server):
    status, body = http(shared_server, "GET", f"/v1/models/{MODEL_NAME}/metadata")
    assert status == 200
    assert body["model_spec"]["name"] == MODEL_NAME
    assert body["model_spec"]["version"] == str(HALF_PLUS_TWO_VERSION)
    default = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert default["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert set(default["outputs"]) == {"y"}


@pytest.mark.parametrize("method, path, body, status, error", [
    ("POST", "/v1/models/nope:predict", {"instances": [1.0]}, 404, "Servable not found for request: Latest(nope)"),
    ("POST", f"/v1/models/{MODEL_NAME}/versions/9:predict", {"instances": [1.0]}, 404,
     f"Servable not found for request: Specific({MODEL_NAME}, 9)"),
    ("POST", f"/v1/models/{MODEL_NAME}/labels/stable:predict", {"instances": [1.0]}, 400,
     "Unrecognized servable version label: stable"),
    ("POST", PREDICT, {"instances": [1.0], "inputs": [1.0]}, 400,
     "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
    ("POST", PREDICT, {"signature_name": "nope", "instances": [1.0]}, 400, 'Serving signature key "nope" not found.'),
    ("POST", PREDICT, {"foo": 1}, 400, "Missing 'inputs' or 'instances' key"),
    ("POST", PREDICT, {"instances": ["a"]}, 400, 'JSON Value: "a" Type: String is not of expected type: float'),
    ("GET", f"/v1/models/{MODEL_NAME}:predict", None, 400, f"Malformed request: GET /v1/models/{MODEL_NAME}:predict"),
    ("POST", "/v1/models", {}, 400, "Malformed request: POST /v1/models"),
    ("POST", f"/v1/models/{MODEL_NAME}/versions/1/labels/x:predict", {}, 400,
     f"Malformed request: POST /v1/models/{MODEL_NAME}/versions/1/labels/x:predict"),
    ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("POST", f"/v1/models/{MODEL_NAME}:classify", {"signature_name": "classify_x_to_y", "examples": []}, 400,
     "Input is empty."),
])
def test_errors(shared_server, method, path, body, status, error):
    assert http(shared_server, method, path, body) == (status, {"error": error})


def test_malformed_json(shared_server):
    status, body = http(shared_server, "POST", PREDICT, raw=b"{not json")
    assert status == 400 and body["error"].startswith("JSON Parse error")


def test_prometheus(shared_server):
    http(shared_server, "POST", PREDICT, {"instances": [1.0]})
    status, text = http(shared_server, "GET", "/monitoring/prometheus/metrics")
    assert status == 200
    assert f':tensorflow:serving:request_count{{model_name="{MODEL_NAME}",status="OK"}}' in text
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    assert (f':tensorflow:cc:saved_model:load_attempt_count{{model_path="{shared_server.model_base_path}/'
            f'{HALF_PLUS_TWO_VERSION:08d}",status="success"}} 1') in text


def test_raw_text_predict_and_classify(text_server):
    status, body = http(text_server, "POST", "/v1/models/text_classifier:predict",
                        {"instances": ["a good film", {"b64": base64.b64encode(b"dull").decode()}]})
    assert status == 200
    assert body["predictions"][0] == {"scores": [0.0, 1.0], "classes": ["negative", "positive"]}
    assert body["predictions"][1]["scores"] == [1.0, 0.0]
    status, body = http(text_server, "POST", "/v1/models/text_classifier:classify",
                        {"signature_name": "classify", "examples": [{"text": "good"}, {"text": "bad"}]})
    assert status == 200
    assert body == {"results": [[["negative", 0.0], ["positive", 1.0]], [["negative", 1.0], ["positive", 0.0]]]}
