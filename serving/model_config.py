"""ModelServerConfig handling: parsing models.config, validating it, and choosing versions by policy."""

import os
import re
from typing import Dict, List

import tensorflow as tf
from tensorflow_serving.config import model_server_config_pb2

from serving import protos
from serving.errors import invalid_argument

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig

RELOAD_UNSUPPORTED_MESSAGE = ("ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                              "ModelConfigList is currently supported")


def single_model_config(name: str, base_path: str) -> ModelServerConfig:
    """The config `--model_name` / `--model_base_path` stand for: one model, latest version."""
    config = ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    return config


def parse_model_config(text: str) -> ModelServerConfig:
    """Parse a text-format ModelServerConfig (models.config)."""
    return protos.parse_text(text, ModelServerConfig, "Invalid protobuf file")


def read_model_config_file(path: str) -> ModelServerConfig:
    return parse_model_config(protos.read_text(path))


def validate(config: ModelServerConfig) -> None:
    """The checks ServerCore makes before it realizes a config."""
    if config.WhichOneof("config") != "model_config_list":
        raise invalid_argument(RELOAD_UNSUPPORTED_MESSAGE)
    names = set()
    for model in config.model_config_list.config:
        if not model.name:
            raise invalid_argument("Model name must be non-empty")
        if model.name in names:
            raise invalid_argument(f"Illegal to list model {model.name} multiple times in config list")
        names.add(model.name)
        if not model.base_path:
            raise invalid_argument(f"Model {model.name} has no base_path")
        if model.model_platform not in ("", "tensorflow"):
            raise invalid_argument(f"Model {model.name} requested unsupported platform {model.model_platform}")
        if model.model_version_policy.WhichOneof("policy_choice") == "specific" and not list(
                model.model_version_policy.specific.versions):
            raise invalid_argument(f"Model {model.name}: specific version policy lists no versions")


_VERSION_NAME = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() also accepts "²" and "٣"


class BasePathListingError(OSError):
    """The base path could not be listed (missing, unreadable): not the same as "no versions"."""


def list_versions(base_path: str) -> Dict[int, str]:
    """Version number -> directory for each child of `base_path` named by ASCII digits (below 2**63).

    Only the children's names and kinds are looked at, never their contents. Raises BasePathListingError when
    the base path cannot be listed, so that a briefly missing or unreadable base path never reads as "every
    version was removed".
    """
    try:
        children = tf.io.gfile.listdir(base_path)
    except tf.errors.OpError as e:
        raise BasePathListingError(f"Could not list base path {base_path}: {e.message}") from None
    versions = {}
    for child in children:
        child = child.rstrip("/")
        if _VERSION_NAME.fullmatch(child) and int(child) < 2 ** 63:  # tmp dirs, files, odd names: not versions
            path = os.path.join(base_path, child)
            if tf.io.gfile.isdir(path):
                versions[int(child)] = path
    return versions


def candidate_versions(model: ModelConfig, on_disk: List[int]):
    """(versions to try, newest first; how many of them to serve) under the model's version policy."""
    policy = model.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    newest_first = sorted(on_disk, reverse=True)
    if choice == "all":
        return newest_first, len(newest_first)
    if choice == "specific":
        wanted = set(policy.specific.versions)
        chosen = [v for v in newest_first if v in wanted]
        return chosen, len(chosen)
    num_versions = policy.latest.num_versions if choice == "latest" and policy.latest.num_versions else 1
    return newest_first, num_versions
