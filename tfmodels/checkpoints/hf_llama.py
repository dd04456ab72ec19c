"""Import Hugging Face Llama folders (``config.json``, ``*.safetensors``, ``tokenizer.json``).

``read_hf_llama`` returns the same parts as ``read_gguf`` — the config, float32 weights under
Hugging Face names, the tokenizer — and ``causal_lm_from_weights`` builds the ``CausalLM`` from
them for both formats, so the same model comes out of either.
"""

import dataclasses
import json
import os

import numpy as np

from tfmodels.checkpoints.weight_mapping import CheckpointMismatchError
from tfmodels.models.llama.config import DecoderConfig

# Buffers some checkpoints save next to the weights; they are recomputed, never loaded.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


@dataclasses.dataclass
class HFLlamaContents:
    """What ``read_hf_llama`` found in a folder.

    Attributes:
        directory: the folder.
        config: the ``DecoderConfig`` of ``config.json``.
        hf_config: ``config.json`` as a dict (token ids, ...).
        weights: ``{hf_llama_name: float32 np.ndarray}`` (``lm_head.weight`` only when untied).
        tokenizer_json: path of ``tokenizer.json``.
        tokenizer_config: ``tokenizer_config.json`` as a dict (``{}`` when absent), with the
            ``chat_template`` of ``chat_template.jinja`` when that file exists.
    """

    directory: str
    config: DecoderConfig
    hf_config: dict
    weights: dict
    tokenizer_json: str
    tokenizer_config: dict


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


def _tokenizer_config(directory):
    """``tokenizer_config.json`` (``{}`` when absent), its chat template overridden by a
    ``chat_template.jinja`` file as ``transformers`` does."""
    config = {}
    path = os.path.join(directory, "tokenizer_config.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    jinja = os.path.join(directory, "chat_template.jinja")
    if os.path.exists(jinja):
        with open(jinja, encoding="utf-8") as f:
            config["chat_template"] = f.read()
    return config


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
        hf_config = json.load(f)
    try:
        config = DecoderConfig.from_hf_config(hf_config)
    except ValueError as error:
        raise ValueError(f"{config_path}: {error}") from error
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
    if config.tie_word_embeddings:
        weights.pop("lm_head.weight", None)  # some tied checkpoints store the copy anyway
    return HFLlamaContents(
        directory, config, hf_config, weights, tokenizer_json, _tokenizer_config(directory)
    )


def _ids(value):
    """A token id, a list of them or ``None`` -> a list."""
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def causal_lm_from_weights(
    config, weights, tokenizer, end_token_ids, start_token_id=None, pad_token_id=None,
    chat_template=None, sequence_length=None, dtype=None,
):  # fmt: skip
    """A ``CausalLM`` with its preprocessor from Hugging Face-named weights: where a GGUF file
    and a Hugging Face folder meet.

    Args:
        config: a ``DecoderConfig``.
        weights: ``{hf_llama_name: np.ndarray}`` (``DecoderBackbone.assign_hf_llama_weights``).
        tokenizer: a ``BytePairTokenizer``.
        end_token_ids, start_token_id, pad_token_id, chat_template: for the
            ``CausalLMPreprocessor``.
        sequence_length: the preprocessor's length; default the model's context, at most 1024.
        dtype: dtype policy of the backbone; ``None`` follows Keras' global policy (float32 by
            default).
    """
    from tfmodels.models.llama import CausalLM, CausalLMPreprocessor, DecoderBackbone

    if tokenizer.vocabulary_size() > config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocabulary_size()} tokens, the model's embedding only "
            f"{config.vocab_size} rows"
        )
    backbone = DecoderBackbone(config, dtype=dtype)
    backbone.assign_hf_llama_weights(weights)
    if sequence_length is None:
        sequence_length = min(config.max_position_embeddings, 1024)
    preprocessor = CausalLMPreprocessor(
        tokenizer,
        sequence_length=sequence_length,
        end_token_ids=end_token_ids,
        start_token_id=start_token_id,
        pad_token_id=pad_token_id,
        chat_template=chat_template,
    )
    return CausalLM(backbone, preprocessor)


def load_hf_llama(directory, dtype=None, sequence_length=None):
    """A ``CausalLM`` (with its ``CausalLMPreprocessor`` and ``BytePairTokenizer``) from a Hugging
    Face Llama folder: ``config.json``, ``model.safetensors`` (or shards with
    ``model.safetensors.index.json``), ``tokenizer.json`` and optionally
    ``tokenizer_config.json`` (chat template, ``add_bos_token``, ``eos_token``).

    Args:
        directory: the folder.
        dtype: dtype policy (e.g. ``"mixed_bfloat16"``); ``None`` computes in Keras' global
            policy (float32 by default), whatever dtype the weights are stored in.
        sequence_length: the preprocessor's length; default the model's context, at most 1024.

    Raises:
        FileNotFoundError: a file is missing (named).
        ValueError: another model type or an unsupported option (named);
            ``CheckpointMismatchError`` for a missing, misshapen or unknown weight (named).

    Example:
    >>> model = load_hf_llama("path/to/SmolLM2-135M-Instruct")  # doctest: +SKIP
    >>> model.generate(model.apply_chat_template(  # doctest: +SKIP
    ...     [{"role": "user", "content": "What is the capital of France?"}]))
    'The capital of France is Paris.'
    """
    from tfmodels.text.byte_pair import BytePairTokenizer

    contents = read_hf_llama(directory)
    tokenizer = BytePairTokenizer.from_tokenizer_json(contents.tokenizer_json)
    hf_config, tokenizer_config = contents.hf_config, contents.tokenizer_config
    end_ids = _ids(hf_config.get("eos_token_id"))
    eos_token = tokenizer_config.get("eos_token")
    if isinstance(eos_token, dict):
        eos_token = eos_token.get("content")
    if eos_token in tokenizer.get_vocabulary():
        end_ids.append(tokenizer.token_to_id(eos_token))
    end_ids = list(dict.fromkeys(end_ids))
    if not end_ids:
        raise ValueError(
            f"{directory}: neither config.json nor tokenizer_config.json names an "
            "end token (eos_token_id / eos_token)"
        )
    bos = _ids(hf_config.get("bos_token_id"))
    start = bos[0] if bos and tokenizer_config.get("add_bos_token", False) else None
    pad = _ids(hf_config.get("pad_token_id"))
    return causal_lm_from_weights(
        contents.config,
        contents.weights,
        tokenizer,
        end_token_ids=end_ids,
        start_token_id=start,
        pad_token_id=pad[0] if pad else None,
        chat_template=tokenizer_config.get("chat_template"),
        sequence_length=sequence_length,
        dtype=dtype,
    )
