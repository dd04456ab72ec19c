"""Version lifecycle: polling for versions, failed loads, version policies, labels, config (re)loads, warmup."""

import os
import shutil

import grpc
import pytest
import tensorflow as tf
from serving_testlib import HALF_PLUS_TWO_VERSION, MODEL_NAME, stubs, wait_for
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    predict_pb2,
    prediction_log_pb2,
)

from serving.errors import ServingError
from serving.server import ModelServer

State = get_model_status_pb2.ModelVersionStatus.State


def predict_y(prediction_stub, x=2.0, name=MODEL_NAME, version=None, label=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([x]))
    response = prediction_stub.Predict(request, timeout=10)
    return response.outputs["y"].float_val[0], response.model_spec.version.value


def statuses(model_stub, name=MODEL_NAME):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    return {s.version: (s.state, s.status.error_message)
            for s in model_stub.GetModelStatus(request, timeout=10).model_version_status}


def write_corrupt_version(base, version):
    path = os.path.join(base, str(version))
    os.makedirs(path)
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"\x08\xff this is not a SavedModel")
    return path


@pytest.fixture
def polling_server(model_base):
    with ModelServer(model_base_path=model_base, model_name=MODEL_NAME, rest_api_port=None,
                     file_system_poll_wait_seconds=0.2) as server:
        prediction, model, channel = stubs(server)
        yield server, prediction, model
        channel.close()


def test_new_version_replaces_old(polling_server, model_base, half_plus_three_template):
    _, prediction, model = polling_server
    assert predict_y(prediction) == (3.0, HALF_PLUS_TWO_VERSION)
    shutil.copytree(half_plus_three_template, os.path.join(model_base, "200"))
    wait_for(lambda: predict_y(prediction)[1] == 200)
    assert predict_y(prediction) == (4.0, 200)
    wait_for(lambda: statuses(model).get(HALF_PLUS_TWO_VERSION, (None,))[0] == State.END)
    assert statuses(model)[200] == (State.AVAILABLE, "")
    with pytest.raises(grpc.RpcError) as info:
        predict_y(prediction, version=HALF_PLUS_TWO_VERSION)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_corrupt_version_never_replaces_good_one(polling_server, model_base, half_plus_three_template):
    _, prediction, model = polling_server
    path = write_corrupt_version(model_base, 300)
    wait_for(lambda: 300 in statuses(model) and statuses(model)[300][0] == State.END)
    state, message = statuses(model)[300]
    assert message  # the load error is reported
    assert statuses(model)[HALF_PLUS_TWO_VERSION] == (State.AVAILABLE, "")
    assert predict_y(prediction) == (3.0, HALF_PLUS_TWO_VERSION)
    # once the push completes (files change), the version loads
    shutil.rmtree(path)
    shutil.copytree(half_plus_three_template, path)
    wait_for(lambda: predict_y(prediction)[1] == 300)
    assert predict_y(prediction) == (4.0, 300)


def test_startup_fails_without_a_loadable_version(tmp_path):
    write_corrupt_version(str(tmp_path), 1)
    with pytest.raises(ServingError):
        ModelServer(model_base_path=str(tmp_path), model_name="m", rest_api_port=None).start()
    with pytest.raises(ServingError) as info:
        ModelServer(model_base_path=str(tmp_path / "missing"), model_name="m", rest_api_port=None).start()
    assert info.value.message == f"Could not find base path {tmp_path / 'missing'} for servable m"


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


@pytest.fixture
def two_version_base(tmp_path, half_plus_two_template, half_plus_three_template):
    base = tmp_path / "hp"
    shutil.copytree(half_plus_two_template, base / "1")
    shutil.copytree(half_plus_three_template, base / "2")
    return str(base)


def test_model_config_file_policies_and_labels(tmp_path, two_version_base):
    config = write_config(tmp_path / "models.config", f"""
model_config_list {{
  config {{ name: "all_versions" base_path: "{two_version_base}" model_platform: "tensorflow"
           model_version_policy {{ all {{}} }}
           version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }}
  config {{ name: "pinned" base_path: "{two_version_base}" model_platform: "tensorflow"
           model_version_policy {{ specific {{ versions: 1 }} }} }}
  config {{ name: "latest" base_path: "{two_version_base}" }}
}}""")
    with ModelServer(model_config_file=config, rest_api_port=None, file_system_poll_wait_seconds=0) as server:
        prediction, model, channel = stubs(server)
        assert predict_y(prediction, name="all_versions") == (4.0, 2)
        assert predict_y(prediction, name="all_versions", version=1) == (3.0, 1)
        assert predict_y(prediction, name="all_versions", label="stable") == (3.0, 1)
        assert predict_y(prediction, name="all_versions", label="canary") == (4.0, 2)
        assert predict_y(prediction, name="pinned") == (3.0, 1)
        assert predict_y(prediction, name="latest") == (4.0, 2)
        assert set(statuses(model, "latest")) == {2}
        with pytest.raises(grpc.RpcError) as info:
            predict_y(prediction, name="pinned", version=2)
        assert info.value.details() == "Servable not found for request: Specific(pinned, 2)"
        channel.close()


def test_bad_model_config_file(tmp_path):
    config = write_config(tmp_path / "bad.config", "model_config_list { config { name: ")
    with pytest.raises(ServingError) as info:
        ModelServer(model_config_file=config, rest_api_port=None).start()
    assert info.value.message.startswith("Invalid protobuf file")


def reload_request(*models):
    request = model_management_pb2.ReloadConfigRequest()
    for name, base_path in models:
        request.config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    return request


def test_reload_config(polling_server, model_base, two_version_base):
    _, prediction, model = polling_server
    model.HandleReloadConfigRequest(reload_request((MODEL_NAME, model_base), ("second", two_version_base)),
                                    timeout=60)
    assert predict_y(prediction, name="second") == (4.0, 2)  # available once the reload returns
    assert predict_y(prediction) == (3.0, HALF_PLUS_TWO_VERSION)
    # a config without the first model unloads it
    model.HandleReloadConfigRequest(reload_request(("second", two_version_base)), timeout=60)
    with pytest.raises(grpc.RpcError) as info:
        predict_y(prediction)
    assert info.value.details() == f"Servable not found for request: Latest({MODEL_NAME})"


def test_reload_config_errors(polling_server, model_base):
    _, prediction, model = polling_server
    with pytest.raises(grpc.RpcError) as info:
        model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == ("ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                                    "ModelConfigList is currently supported")
    bad_label = reload_request((MODEL_NAME, model_base))
    bad_label.config.model_config_list.config[0].version_labels["stable"] = 5
    with pytest.raises(grpc.RpcError) as info:
        model.HandleReloadConfigRequest(bad_label, timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert predict_y(prediction) == (3.0, HALF_PLUS_TWO_VERSION)


def test_model_config_file_poll(tmp_path, model_base, two_version_base):
    config = tmp_path / "models.config"
    entry = 'config {{ name: "{}" base_path: "{}" model_platform: "tensorflow" }}'
    write_config(config, f"model_config_list {{ {entry.format(MODEL_NAME, model_base)} }}")
    with ModelServer(model_config_file=str(config), rest_api_port=None, file_system_poll_wait_seconds=0,
                     model_config_file_poll_wait_seconds=0.2) as server:
        prediction, _, channel = stubs(server)
        write_config(config, f"model_config_list {{ {entry.format(MODEL_NAME, model_base)} "
                             f"{entry.format('second', two_version_base)} }}")
        wait_for(lambda: "second" in server.manager.model_names())
        wait_for(lambda: _answers(prediction, "second"))
        channel.close()


def _answers(prediction, name):
    try:
        return predict_y(prediction, name=name)
    except grpc.RpcError:
        return None


def write_warmup(version_dir, x_key):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.inputs[x_key].CopyFrom(tf.make_tensor_proto([1.0]))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    os.makedirs(os.path.join(version_dir, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())


def test_warmup_runs_before_available(tmp_path, half_plus_two_template):
    base = tmp_path / "warm"
    shutil.copytree(half_plus_two_template, base / "1")
    write_warmup(str(base / "1"), "x")
    shutil.copytree(half_plus_two_template, base / "2")
    write_warmup(str(base / "2"), "not_an_input")  # its warmup fails, so version 2 must not serve
    with ModelServer(model_base_path=str(base), model_name=MODEL_NAME, rest_api_port=None,
                     file_system_poll_wait_seconds=0) as server:
        prediction, model, channel = stubs(server)
        assert predict_y(prediction) == (3.0, 1)
        state, message = statuses(model)[2]
        assert state == State.END and "not_an_input" in message
        channel.close()
    # with warmup off, the same version loads
    with ModelServer(model_base_path=str(base), model_name=MODEL_NAME, rest_api_port=None,
                     file_system_poll_wait_seconds=0, enable_model_warmup=False) as server:
        prediction, _, channel = stubs(server)
        assert predict_y(prediction) == (3.0, 2)
        channel.close()
