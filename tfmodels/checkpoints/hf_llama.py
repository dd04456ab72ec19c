"""Import Hugging Face Llama folders (``config.json``, ``*.safetensors``, ``tokenizer.json``).

``read_hf_llama`` returns the same parts as ``read_gguf`` — the config, float32 weights under
Hugging Face names, the tokenizer — so a model comes out of either format the same way.
"""

import dataclasses
import json
import os

import numpy as np

from tfmodels.checkpoints.weight_mapping import CheckpointMismatchError

SUPPORTED_MODEL_TYPES = ("llama",)

# Buffers some checkpoints save next to the weights; they are recomputed, never loaded.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


@dataclasses.dataclass
class HFLlamaContents:
    """What ``read_hf_llama`` found in a folder.

    Attributes:
        directory: the folder.
        config: ``config.json`` as a dict.
        weights: ``{hf_llama_name: float32 np.ndarray}`` (``lm_head.weight`` only when untied).
        tokenizer_json: path of ``tokenizer.json``.
        chat_template: from ``tokenizer_config.json`` (or ``chat_template.jinja``), else ``None``.
    """

    directory: str
    config: dict
    weights: dict
    tokenizer_json: str
    chat_template: str | None


def _check_config(config, path):
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{path}: model_type is {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    unsupported = {
        "rope_scaling": config.get("rope_scaling") not in (None, {}),
        "attention_bias": bool(config.get("attention_bias")),
        "mlp_bias": bool(config.get("mlp_bias")),
        "hidden_act": config.get("hidden_act", "silu") != "silu",
    }
    for option, bad in unsupported.items():
        if bad:
            raise ValueError(f"{path}: {option}={config[option]!r} is not supported")


def _safetensors_files(directory):
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        return [os.path.join(directory, name) for name in sorted(set(weight_map.values()))]
    single = os.path.join(directory, "model.safetensors")
    if os.path.exists(single):
        return [single]
    raise FileNotFoundError(
        f"{directory} has neither model.safetensors nor model.safetensors.index.json"
    )


def _read_safetensors(path):
    """``{name: float32 array}`` (bfloat16 tensors too: TensorFlow registers numpy's bfloat16)."""
    from safetensors.numpy import load_file

    return {name: np.asarray(array, np.float32) for name, array in load_file(path).items()}


def _chat_template(directory):
    jinja = os.path.join(directory, "chat_template.jinja")
    if os.path.exists(jinja):
        with open(jinja, encoding="utf-8") as f:
            return f.read()
    config = os.path.join(directory, "tokenizer_config.json")
    if os.path.exists(config):
        with open(config, encoding="utf-8") as f:
            return json.load(f).get("chat_template")
    return None


def read_hf_llama(directory):
    """Reads a Hugging Face Llama folder into ``HFLlamaContents``.

    Raises:
        FileNotFoundError: no ``config.json``, weights or ``tokenizer.json`` in ``directory``.
        ValueError: another ``model_type`` or an option we do not implement (named).
        CheckpointMismatchError: a weight that is not part of a Llama model (named).
    """
    directory = os.fspath(directory)
    config_path = os.path.join(directory, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"no config.json in {directory}")
    with open(config_path) as f:
        config = json.load(f)
    _check_config(config, config_path)
    tokenizer_json = os.path.join(directory, "tokenizer.json")
    if not os.path.exists(tokenizer_json):
        raise FileNotFoundError(f"no tokenizer.json in {directory}")

    weights = {}
    for path in _safetensors_files(directory):
        for name, array in _read_safetensors(path).items():
            if name.endswith(_IGNORED_SUFFIXES):
                continue
            if not (name.startswith("model.") or name == "lm_head.weight"):
                raise CheckpointMismatchError(f"{path}: {name!r} is not a Llama weight")
            weights[name] = array
    if config.get("tie_word_embeddings", False):
        weights.pop("lm_head.weight", None)
    return HFLlamaContents(directory, config, weights, tokenizer_json, _chat_template(directory))
