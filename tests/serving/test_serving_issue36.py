"""Regression tests for issue 36 (server items): each test names the item it pins and failed before the fix."""

import base64
import logging
import os
import shutil
import signal
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_testlib import (
    HALF_PLUS_TWO_VERSION,
    MODEL_NAME,
    build_sleeper,
    build_text_classifier,
    http,
    start_cli_server,
    stubs,
    wait_for,
)
from tensorflow_serving.apis import model_management_pb2, predict_pb2

from serving import json_codec
from serving.errors import ServingError
from serving.manager import ServableManager, directory_fingerprint
from serving.model_config import single_model_config
from serving.server import ModelServer

PREDICT = f"/v1/models/{MODEL_NAME}:predict"
GARBAGE_EXAMPLE = "/wBub3QgYSBwcm90bw=="  # 0xff 0x00 "not a proto": ParseExample quotes it in a non-UTF-8 error


def _predict_ok(server) -> bool:
    return http(server, "POST", PREDICT, {"instances": [2.0]}) == (200, {"predictions": [3.0]})


def _no_tracebacks(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.fixture(scope="module")
def text_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("i36text") / "text_classifier"
    build_text_classifier(base / "1")
    return str(base)


@pytest.fixture(scope="module")
def text_rest_server(text_base):
    with ModelServer(model_base_path=text_base, model_name="text_classifier",
                     file_system_poll_wait_seconds=0) as server:
        yield server


# 8 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    b'{"instances": ["\\ud800"]}',
    b'{"signature_name": "\\udfff", "instances": ["a"]}',
    b'{"inputs": {"text": ["ok", "\\ud800x"]}}',
    b'{"examples": [{"text": "\\ud800"}]}',
    b'{"examples": [{"\\ud800": "a"}]}',
])
def test_lone_surrogates_are_a_400_without_traceback(text_rest_server, body, caplog):
    method = "classify" if b"examples" in body else "predict"
    status, document = http(text_rest_server, "POST", f"/v1/models/text_classifier:{method}", raw=body)
    assert status == 400 and "surrogate" in document["error"]
    assert _no_tracebacks(caplog) == []
    # A valid surrogate pair (an emoji) is text, not an error.
    assert http(text_rest_server, "POST", "/v1/models/text_classifier:predict",
                raw=b'{"instances": ["good \\ud83d\\ude00"]}')[0] == 200


def test_garbage_bytes_into_a_tf_example_signature_are_invalid_argument(text_rest_server, caplog):
    body = {"signature_name": "classify", "instances": [{"b64": GARBAGE_EXAMPLE}]}
    status, document = http(text_rest_server, "POST", "/v1/models/text_classifier:predict", body)
    assert status == 400, document
    prediction, _, channel = stubs(text_rest_server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "text_classifier", "classify"
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto([base64.b64decode(GARBAGE_EXAMPLE)]))
    with pytest.raises(grpc.RpcError) as info:
        prediction.Predict(request, timeout=10)
    channel.close()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _no_tracebacks(caplog) == []


# 11 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["YWJj=", "YWJj==", "YWI", "YW=Jj", "YQ=", "Y===", "YWJj\n"])
def test_non_canonical_base64_is_refused(text):
    with pytest.raises(ServingError, match="base64"):
        json_codec.json_to_array([{"b64": text}], 7)  # DT_STRING


@pytest.mark.parametrize("text, value", [("YWJj", b"abc"), ("YWI=", b"ab"), ("YQ==", b"a"), ("", b"")])
def test_canonical_base64_is_decoded(text, value):
    assert json_codec.json_to_array([{"b64": text}], 7).tolist() == [value]


def _replace(path, text):
    """Write `path` whole (the poller never sees half a file)."""
    partial = str(path) + ".partial"
    with open(partial, "w") as f:
        f.write(text)
    os.replace(partial, path)


def test_config_syntax_error_is_logged_once_per_change(tmp_path, model_base, caplog):
    config = tmp_path / "models.config"
    entry = f'model_config_list {{ config {{ name: "{MODEL_NAME}" base_path: "{model_base}" }} }}'
    config.write_text(entry)
    with ModelServer(model_config_file=str(config), file_system_poll_wait_seconds=0,
                     model_config_file_poll_wait_seconds=0.05) as server:
        caplog.clear()
        _replace(config, "model_config_list { config { name: ")
        time.sleep(0.6)  # a dozen polls of the same broken file
        _replace(config, "model_config_list { nonsense: 1 }")
        time.sleep(0.6)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 2, [r.getMessage() for r in errors]
        assert not any(r.exc_info for r in caplog.records)
        assert _predict_ok(server)  # the last good config keeps serving


# 6 -------------------------------------------------------------------------------------------------------------
def _half_copy(template, target):
    """A version directory as `cp -r` leaves it midway: every file there, the variables' data cut short."""
    shutil.copytree(template, target)
    data = [os.path.join(target, "variables", n) for n in os.listdir(os.path.join(target, "variables"))
            if n.startswith("variables.data")][0]
    with open(data, "r+b") as f:
        f.truncate(3)
    return data


def test_version_completed_in_place_is_loaded(model_base, half_plus_three_template):
    with ModelServer(model_base_path=model_base, model_name=MODEL_NAME, file_system_poll_wait_seconds=0.05,
                     load_retry_interval_seconds=3600) as server:
        target = os.path.join(model_base, "200")
        data = _half_copy(half_plus_three_template, target)
        version_states = lambda: {s["version"]: s["state"] for s in  # noqa: E731
                                  http(server, "GET", f"/v1/models/{MODEL_NAME}")[1]["model_version_status"]}
        wait_for(lambda: version_states().get("200") == "END")
        before = directory_fingerprint(target)
        source = os.path.join(half_plus_three_template, "variables", os.path.basename(data))
        with open(source, "rb") as src, open(data, "r+b") as dst:  # the copy completes into the same file
            dst.write(src.read())
        assert directory_fingerprint(target) != before
        wait_for(lambda: http(server, "POST", PREDICT, {"instances": [2.0]})[1] == {"predictions": [4.0]})


class _Loaded:
    def __init__(self, version):
        self.version = version


def test_failed_load_with_unchanged_files_is_retried(tmp_path):
    attempts = []

    def load(name, version, path):
        attempts.append(version)
        if version == 2 and attempts.count(2) < 3:
            raise ServingError(grpc.StatusCode.UNAVAILABLE, "storage not ready")
        return _Loaded(version)

    os.makedirs(tmp_path / "m" / "1")
    os.makedirs(tmp_path / "m" / "2")
    manager = ServableManager(load, lambda servable: None, max_num_load_retries=5, load_retry_interval_seconds=0)
    manager.apply_config(single_model_config("m", str(tmp_path / "m")))
    spec = predict_pb2.PredictRequest().model_spec
    spec.name = "m"
    with manager.acquire(spec) as servable:
        assert servable.version == 1
    manager.poll()
    manager.poll()
    with manager.acquire(spec) as servable:
        assert servable.version == 2
    assert attempts == [2, 1, 2, 2]


def test_failed_load_retries_stop_after_max_num_load_retries(tmp_path):
    attempts = []

    def load(name, version, path):
        attempts.append(version)
        raise ServingError(grpc.StatusCode.UNAVAILABLE, "still broken")

    os.makedirs(tmp_path / "m" / "1")
    os.makedirs(tmp_path / "m" / "2")
    manager = ServableManager(lambda n, v, p: _Loaded(v) if v == 1 else load(n, v, p), lambda servable: None,
                              max_num_load_retries=2, load_retry_interval_seconds=0)
    manager.apply_config(single_model_config("m", str(tmp_path / "m")))
    for _ in range(5):
        manager.poll()
    assert attempts == [2, 2, 2]  # the first try and two retries


# 7 -------------------------------------------------------------------------------------------------------------
def _reload(model_stub, *models):
    request = model_management_pb2.ReloadConfigRequest()
    for name, base_path in models:
        request.config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    return model_stub.HandleReloadConfigRequest(request, timeout=60)


@pytest.fixture
def reload_server(model_base):
    with ModelServer(model_base_path=model_base, model_name=MODEL_NAME, file_system_poll_wait_seconds=0) as server:
        prediction, model, channel = stubs(server)
        yield server, model
        channel.close()


def test_refused_reload_naming_an_empty_base_path_keeps_the_old_config(reload_server, tmp_path):
    server, model = reload_server
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(grpc.RpcError) as info:
        _reload(model, ("other", str(empty)))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert http(server, "GET", "/v1/ready")[0] == 200
    assert _predict_ok(server) and server.manager.model_names() == [MODEL_NAME]


def test_moving_a_model_to_a_broken_base_path_keeps_the_good_version(reload_server, tmp_path):
    server, model = reload_server
    broken = tmp_path / "broken"
    os.makedirs(broken / "7")
    (broken / "7" / "saved_model.pb").write_bytes(b"\x08\xff not a SavedModel")
    with pytest.raises(grpc.RpcError):
        _reload(model, (MODEL_NAME, str(broken)))
    assert _predict_ok(server)
    status = http(server, "GET", f"/v1/models/{MODEL_NAME}")[1]["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [(str(HALF_PLUS_TWO_VERSION), "AVAILABLE")]


def test_refused_reload_releases_what_it_loaded(reload_server, tmp_path, half_plus_three_template):
    server, model = reload_server
    good = tmp_path / "good"
    shutil.copytree(half_plus_three_template, good / "1")
    unloaded = []
    server.manager._unload = lambda servable, inner=server.manager._unload: (unloaded.append(servable.name),
                                                                            inner(servable))
    with pytest.raises(grpc.RpcError):
        _reload(model, (MODEL_NAME, server.model_base_path), ("second", str(good)),
                ("third", str(tmp_path / "missing")))
    with pytest.raises(grpc.RpcError):  # the base path exists but has no version: found only by loading
        (tmp_path / "empty").mkdir()
        _reload(model, (MODEL_NAME, server.model_base_path), ("second", str(good)),
                ("third", str(tmp_path / "empty")))
    assert unloaded == ["second"] and server.manager.model_names() == [MODEL_NAME]


def test_config_entry_whose_base_path_appears_later_is_loaded(tmp_path, model_base, half_plus_three_template):
    config = tmp_path / "models.config"
    later = tmp_path / "later"
    entry = 'config {{ name: "{}" base_path: "{}" }}'
    config.write_text(f"model_config_list {{ {entry.format(MODEL_NAME, model_base)} }}")
    with ModelServer(model_config_file=str(config), file_system_poll_wait_seconds=0,
                     model_config_file_poll_wait_seconds=0.05) as server:
        config.write_text(f"model_config_list {{ {entry.format(MODEL_NAME, model_base)} "
                          f"{entry.format('later', later)} }}")
        time.sleep(0.3)  # polls that fail: the base path is not there yet
        assert _predict_ok(server) and server.manager.model_names() == [MODEL_NAME]
        shutil.copytree(half_plus_three_template, later / "1")
        wait_for(lambda: http(server, "POST", "/v1/models/later:predict", {"instances": [2.0]})[0] == 200)


# 10 ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sleeper_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("i36sleep") / "sleeper"
    build_sleeper(base / "1")
    return str(base)


def _sleep_request(server, seconds, results):
    results.append(http(server, "POST", "/v1/models/sleeper:predict", {"instances": [seconds]}))


def _stop_during_a_request(sleeper_base, grace_seconds, request_seconds):
    """Starts a server, sends one request that sleeps `request_seconds`, stops the server while it is in
    flight; returns (the request's (status, body), seconds that stop() took)."""
    server = ModelServer(model_base_path=sleeper_base, model_name="sleeper", file_system_poll_wait_seconds=0,
                         shutdown_grace_seconds=grace_seconds).start()
    results = []
    worker = threading.Thread(target=_sleep_request, args=(server, request_seconds, results))
    worker.start()
    wait_for(lambda: server.api._in_flight > 0, interval=0.01)
    start = time.monotonic()
    server.stop()
    worker.join(10)
    assert results, "the in-flight request got no answer"
    return results[0], time.monotonic() - start


def test_shutdown_answers_in_flight_requests_within_the_grace_period(sleeper_base):
    (status, _), stop_seconds = _stop_during_a_request(sleeper_base, grace_seconds=15.0, request_seconds=1.0)
    assert status == 200  # finished inside the grace period: answered, not cut
    assert stop_seconds < 10.0  # stop() returns once the request is answered, not at the end of the grace


def test_shutdown_cancels_work_past_the_grace_period_and_answers_503(sleeper_base):
    answer, stop_seconds = _stop_during_a_request(sleeper_base, grace_seconds=0.5, request_seconds=60.0)
    assert stop_seconds < 5.0  # not the 60 s of work, nor 60 s per version
    assert answer[0] == 503, answer


def test_work_stops_when_the_grpc_deadline_passes(sleeper_base):
    with ModelServer(model_base_path=sleeper_base, model_name="sleeper", rest_api_port=None,
                     file_system_poll_wait_seconds=0) as server:
        prediction, _, channel = stubs(server)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "sleeper"
        request.inputs["seconds"].CopyFrom(tf.make_tensor_proto(np.array([30.0], np.float32)))
        with pytest.raises(grpc.RpcError) as info:
            prediction.Predict(request, timeout=0.5)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert server.api.wait_idle(3.0)  # the server's work stopped too
        channel.close()


@pytest.mark.e2e
def test_cli_sighup_keeps_serving_and_sigterm_drains(sleeper_base):
    with start_cli_server(f"--model_base_path={sleeper_base}", "--model_name=sleeper", "--shutdown_grace_seconds=5",
                          model_name="sleeper", rest=True) as server:
        server.process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert server.process.poll() is None
        results = []

        class Target:  # `http` wants an object with rest_port
            rest_port = server.rest_port

        worker = threading.Thread(target=_sleep_request, args=(Target, 1.5, results))
        worker.start()
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        worker.join(15)
        assert results and results[0][0] == 200
        assert server.process.wait(15) == 0


# 3 (the server's own per-request limit) ---------------------------------------------------------------------
def test_string_longer_than_max_string_bytes_is_refused_before_the_model_runs(text_base):
    with ModelServer(model_base_path=text_base, model_name="text_classifier", file_system_poll_wait_seconds=0,
                     max_string_bytes=1000) as server:
        status, document = http(server, "POST", "/v1/models/text_classifier:predict",
                                {"instances": ["good " * 300]})
        assert status == 400 and "--max_string_bytes" in document["error"]
        assert http(server, "POST", "/v1/models/text_classifier:predict", {"instances": ["good " * 100]})[0] == 200
        prediction, _, channel = stubs(server)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "text_classifier"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto([b"x" * 1001]))
        with pytest.raises(grpc.RpcError) as info:
            prediction.Predict(request, timeout=10)
        channel.close()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
