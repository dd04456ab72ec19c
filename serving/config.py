"""Deployment files for a real `tensorflow_model_server`: models.config, batching_parameters.txt,
monitoring.config, a docker-compose file and a Kubernetes Deployment + Service.

The text protos are built as messages and printed with text_format, so they parse back with TF Serving's
protos. The container mounts the push destination (where the pipeline's Pusher writes numbered versions) at
/models/NAME read-only, and TF Serving polls it for new versions.

    python -m serving.config --model_name bert --push_dir /srv/push/bert --out_dir deploy/
"""

import argparse
import dataclasses
import os
from typing import Dict, List, Mapping, Optional, Sequence

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import protos
from serving.batching import BatchingOptions
from serving.metrics import DEFAULT_PATH

IMAGE = "tensorflow/serving:2.16.1"
CONFIG_DIR = "/config"
MODELS_DIR = "/models"
GRPC_PORT, REST_PORT = 8500, 8501


@dataclasses.dataclass
class ModelEntry:
    """One model to serve: its name, the host directory holding its versions, and its version policy."""

    name: str
    push_dir: str
    policy: str = "latest"  # "latest" | "all" | "specific"
    num_versions: int = 1
    versions: Sequence[int] = ()
    version_labels: Mapping[str, int] = dataclasses.field(default_factory=dict)

    @property
    def container_path(self) -> str:
        return f"{MODELS_DIR}/{self.name}"


def models_config(models: Sequence[ModelEntry]) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    for model in models:
        entry = config.model_config_list.config.add(name=model.name, base_path=model.container_path,
                                                    model_platform="tensorflow")
        if model.policy == "all":
            entry.model_version_policy.all.SetInParent()
        elif model.policy == "specific":
            entry.model_version_policy.specific.versions.extend(model.versions)
        elif model.policy == "latest":
            entry.model_version_policy.latest.num_versions = model.num_versions
        else:
            raise ValueError(f"unknown version policy {model.policy!r}")
        for label, version in model.version_labels.items():
            entry.version_labels[label] = version
    return config


def models_config_text(models: Sequence[ModelEntry]) -> str:
    return text_format.MessageToString(models_config(models))


def batching_parameters_text(options: BatchingOptions) -> str:
    params = protos.BatchingParameters()
    params.max_batch_size.value = options.max_batch_size
    params.batch_timeout_micros.value = options.batch_timeout_micros
    params.max_enqueued_batches.value = options.max_enqueued_batches
    params.num_batch_threads.value = options.num_batch_threads
    params.allowed_batch_sizes.extend(options.allowed_batch_sizes)
    params.pad_variable_length_inputs = options.pad_variable_length_inputs
    return text_format.MessageToString(params)


def monitoring_config_text(path: str = DEFAULT_PATH) -> str:
    config = protos.MonitoringConfig()
    config.prometheus_config.enable = True
    config.prometheus_config.path = path
    return text_format.MessageToString(config)


def server_args(batching: bool, poll_seconds: int = 60) -> List[str]:
    """tensorflow_model_server flags reading the generated files from CONFIG_DIR."""
    args = [f"--port={GRPC_PORT}", f"--rest_api_port={REST_PORT}",
            f"--model_config_file={CONFIG_DIR}/models.config",
            f"--model_config_file_poll_wait_seconds={poll_seconds}",
            f"--monitoring_config_file={CONFIG_DIR}/monitoring.config",
            # Off by default in TF Serving: without it the XLA decoding loops (translator, causal LM) and
            # jit_compile exports fail on CPU.
            "--xla_cpu_compilation_enabled=true"]
    if batching:
        args += ["--enable_batching=true", f"--batching_parameters_file={CONFIG_DIR}/batching_parameters.txt"]
    return args


def to_yaml(value, indent: int = 0) -> str:
    """A small YAML emitter for dicts, lists, strings and numbers (strings always quoted, so never retyped)."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:\n{to_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                body = to_yaml(item, indent + 1)
                lines.append(f"{pad}- {body.lstrip()}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return "\n".join(lines)
    return pad + _scalar(value)


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def docker_compose(models: Sequence[ModelEntry], config_dir: str = "./config", batching: bool = True,
                   image: str = IMAGE) -> str:
    volumes = [f"{config_dir}:{CONFIG_DIR}:ro"] + [f"{m.push_dir}:{m.container_path}:ro" for m in models]
    service = {"image": image, "restart": "unless-stopped",
               "ports": [f"{GRPC_PORT}:{GRPC_PORT}", f"{REST_PORT}:{REST_PORT}"],
               "volumes": volumes, "command": server_args(batching)}
    return to_yaml({"services": {"tfserving": service}}) + "\n"


def kubernetes(models: Sequence[ModelEntry], config_files: Mapping[str, str], push_claim: str = "model-push",
               name: str = "tfserving", replicas: int = 2, batching: bool = True, image: str = IMAGE) -> str:
    """ConfigMap (the generated files), Deployment (push destination mounted from a PVC) and Service."""
    labels = {"app": name}
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    mounts += [{"name": "push", "mountPath": m.container_path, "subPath": os.path.basename(m.push_dir.rstrip("/")),
                "readOnly": True} for m in models]
    probe = {"httpGet": {"path": f"/v1/models/{models[0].name}", "port": REST_PORT},
             "initialDelaySeconds": 5, "periodSeconds": 10}
    container = {"name": name, "image": image, "args": server_args(batching),
                 "ports": [{"name": "grpc", "containerPort": GRPC_PORT}, {"name": "rest", "containerPort": REST_PORT}],
                 "volumeMounts": mounts, "readinessProbe": probe,
                 "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}
    documents = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-config"}, "data": dict(config_files)},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "containers": [container],
                      "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}},
                                  {"name": "push", "persistentVolumeClaim": {"claimName": push_claim,
                                                                             "readOnly": True}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
         "spec": {"selector": labels, "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT},
                                                {"name": "rest", "port": REST_PORT, "targetPort": REST_PORT}]}},
    ]
    return "---\n".join(to_yaml(d) + "\n" for d in documents)


def write_deployment(out_dir: str, models: Sequence[ModelEntry], batching: Optional[BatchingOptions] = None,
                     push_claim: str = "model-push") -> Dict[str, str]:
    """Write every file under `out_dir` (configs in out_dir/config); returns {file name: path}."""
    batching = batching or BatchingOptions(max_batch_size=32, batch_timeout_micros=2000, max_enqueued_batches=4,
                                           num_batch_threads=4)
    config_files = {"models.config": models_config_text(models),
                    "batching_parameters.txt": batching_parameters_text(batching),
                    "monitoring.config": monitoring_config_text()}
    files = {f"config/{n}": text for n, text in config_files.items()}
    files["docker-compose.yaml"] = docker_compose(models)
    files["k8s.yaml"] = kubernetes(models, config_files, push_claim=push_claim)
    written = {}
    for relative, text in files.items():
        path = os.path.join(out_dir, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        written[relative] = path
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.config", description=__doc__.splitlines()[0])
    p.add_argument("--model_name", required=True)
    p.add_argument("--push_dir", required=True, help="host directory the Pusher writes versions to")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--num_versions", type=int, default=1)
    p.add_argument("--push_claim", default="model-push", help="PersistentVolumeClaim holding the push destination")
    args = p.parse_args(argv)
    written = write_deployment(args.out_dir, [ModelEntry(args.model_name, os.path.abspath(args.push_dir),
                                                         num_versions=args.num_versions)],
                               push_claim=args.push_claim)
    for path in written.values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
