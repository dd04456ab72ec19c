"""Generated deployment files: the text protos parse with TF Serving's protos and drive our server too."""

import os
import shutil

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import config, protos
from serving.batching import BatchingOptions
from serving.server import ModelServer, batching_options_from_file, prometheus_path_from_file

MODELS = [config.ModelEntry("bert", "/srv/push/bert", version_labels={"stable": 3}),
          config.ModelEntry("half_plus_two", "/srv/push/half_plus_two", policy="all"),
          config.ModelEntry("pinned", "/srv/push/pinned", policy="specific", versions=[1, 2])]


@pytest.fixture
def deployment(tmp_path):
    options = BatchingOptions(max_batch_size=16, batch_timeout_micros=1000, max_enqueued_batches=8,
                              num_batch_threads=2, allowed_batch_sizes=(4, 16))
    return config.write_deployment(str(tmp_path / "deploy"), MODELS, batching=options)


def read(path):
    with open(path) as f:
        return f.read()


def test_models_config_parses(deployment):
    parsed = text_format.Parse(read(deployment["config/models.config"]),
                               model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c for c in parsed.model_config_list.config}
    assert entries["bert"].base_path == "/models/bert"
    assert entries["bert"].model_platform == "tensorflow"
    assert entries["bert"].model_version_policy.latest.num_versions == 1
    assert dict(entries["bert"].version_labels) == {"stable": 3}
    assert entries["half_plus_two"].model_version_policy.HasField("all")
    assert list(entries["pinned"].model_version_policy.specific.versions) == [1, 2]


def test_batching_and_monitoring_parse(deployment):
    params = text_format.Parse(read(deployment["config/batching_parameters.txt"]), protos.BatchingParameters())
    assert params.max_batch_size.value == 16 and list(params.allowed_batch_sizes) == [4, 16]
    options = batching_options_from_file(deployment["config/batching_parameters.txt"])
    assert options.max_batch_size == 16 and options.num_batch_threads == 2
    assert options.allowed_batch_sizes == (4, 16) and options.batch_timeout_micros == 1000
    assert prometheus_path_from_file(deployment["config/monitoring.config"]) == "/monitoring/prometheus/metrics"


def test_compose_and_kubernetes(deployment):
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load(read(deployment["docker-compose.yaml"]))
    service = compose["services"]["tfserving"]
    assert "/srv/push/bert:/models/bert:ro" in service["volumes"]
    assert "--model_config_file=/config/models.config" in service["command"]
    assert "--batching_parameters_file=/config/batching_parameters.txt" in service["command"]
    assert "--xla_cpu_compilation_enabled=true" in service["command"]  # the decoding loops are XLA
    assert service["ports"] == ["8500:8500", "8501:8501"]
    documents = list(yaml.safe_load_all(read(deployment["k8s.yaml"])))
    assert [d["kind"] for d in documents] == ["ConfigMap", "Deployment", "Service"]
    configmap, deploy, svc = documents
    assert configmap["data"]["models.config"] == read(deployment["config/models.config"])
    pod = deploy["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/models/bert"]["subPath"] == "bert" and mounts["/models/bert"]["readOnly"] is True
    assert pod["volumes"][1]["persistentVolumeClaim"]["claimName"] == "model-push"
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/v1/models/bert"
    assert [p["port"] for p in svc["spec"]["ports"]] == [8500, 8501]
    assert deploy["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]


def test_our_server_reads_the_generated_files(tmp_path, half_plus_two_template):
    base = tmp_path / "push" / "half_plus_two"
    shutil.copytree(half_plus_two_template, base / "1")
    written = config.write_deployment(str(tmp_path / "deploy"),
                                      [config.ModelEntry("half_plus_two", str(base), policy="all")],
                                      batching=BatchingOptions(max_batch_size=8, num_batch_threads=1))
    # outside a container the models live at the host path, not /models
    models_config = read(written["config/models.config"]).replace("/models/half_plus_two", str(base))
    config_path = tmp_path / "models.config"
    config_path.write_text(models_config)
    with ModelServer(model_config_file=str(config_path), enable_batching=True,
                     batching_parameters_file=written["config/batching_parameters.txt"],
                     monitoring_config_file=written["config/monitoring.config"],
                     file_system_poll_wait_seconds=0) as server:
        assert server.prometheus_path == "/monitoring/prometheus/metrics"
        from serving.client import GrpcClient
        with GrpcClient(f"127.0.0.1:{server.grpc_port}") as client:
            assert client.predict("half_plus_two", {"x": [2.0]})["y"].tolist() == [3.0]


def test_cli_writes_files(tmp_path):
    assert config.main(["--model_name", "bert", "--push_dir", "/srv/push/bert", "--out_dir", str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path / "config")) == ["batching_parameters.txt", "models.config",
                                                       "monitoring.config"]
