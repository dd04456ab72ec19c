"""Import Hugging Face BERT checkpoints (``config.json`` + ``model.safetensors`` / ``pytorch_model.bin``)."""

import os

from tfmodels.checkpoints.torch_pickle import load_torch_state_dict
from tfmodels.checkpoints.weight_mapping import assign_weights, encoder_variable_map
from tfmodels.models.bert.config import BertConfig
from tfmodels.models.bert.encoder import BertEncoder

_HF_PARTS = {
    "word_embeddings": "embeddings.word_embeddings.weight",
    "position_embeddings": "embeddings.position_embeddings.weight",
    "token_type_embeddings": "embeddings.token_type_embeddings.weight",
    "embeddings_norm": "embeddings.LayerNorm",
    "query": "encoder.layer.{i}.attention.self.query",
    "key": "encoder.layer.{i}.attention.self.key",
    "value": "encoder.layer.{i}.attention.self.value",
    "attention_output": "encoder.layer.{i}.attention.output.dense",
    "attention_norm": "encoder.layer.{i}.attention.output.LayerNorm",
    "intermediate": "encoder.layer.{i}.intermediate.dense",
    "output": "encoder.layer.{i}.output.dense",
    "output_norm": "encoder.layer.{i}.output.LayerNorm",
    "pooler": "pooler.dense",
}
# Keras part name -> the suffixes HF checkpoints use (older ports of TF checkpoints kept gamma/beta).
_HF_SUFFIXES = {
    "kernel": ("weight",),
    "bias": ("bias",),
    "gamma": ("weight", "gamma"),
    "beta": ("bias", "beta"),
}


def _hf_name(kind, layer_index, part):
    base = _HF_PARTS[kind].format(i=layer_index)
    if part is None:
        return base
    return "|".join(f"{base}.{suffix}" for suffix in _HF_SUFFIXES[part])


def read_hf_state_dict(directory):
    """Reads the weights of a HF checkpoint directory into ``{name: np.ndarray}``."""
    safetensors_path = os.path.join(directory, "model.safetensors")
    bin_path = os.path.join(directory, "pytorch_model.bin")
    if os.path.exists(safetensors_path):
        from safetensors.numpy import load_file

        return safetensors_path, load_file(safetensors_path)
    if os.path.exists(bin_path):
        return bin_path, load_torch_state_dict(bin_path)
    raise FileNotFoundError(
        f"{directory} has neither model.safetensors nor pytorch_model.bin "
        "(sharded checkpoints are not supported)"
    )


def load_hf_bert(directory, sequence_length=None, dtype=None):
    """Builds a ``BertEncoder`` from a Hugging Face BERT checkpoint directory.

    Works for ``BertModel`` checkpoints and for task checkpoints whose names carry a ``bert.``
    prefix (``BertForMaskedLM``, ...); task heads are ignored.

    Args:
        directory: holds ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``.
        sequence_length: optional fixed input length for the encoder.
        dtype: optional dtype policy, e.g. ``"mixed_bfloat16"``.

    Raises:
        FileNotFoundError: no config or weights in ``directory``.
        CheckpointMismatchError: a weight is missing or has the wrong shape (names both).

    Example:
    >>> from tfmodels import datasets  # doctest: +SKIP
    >>> encoder = load_hf_bert(datasets.minilm_path())  # doctest: +SKIP
    """
    config_path = os.path.join(directory, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"no config.json in {directory}")
    config = BertConfig.from_json_file(config_path)
    weights_path, state = read_hf_state_dict(directory)
    prefix = "bert." if any(name.startswith("bert.") for name in state) else ""

    def get_array(names):
        for name in names.split("|"):
            if prefix + name in state:
                return state[prefix + name]
        return None

    encoder = BertEncoder(config, sequence_length=sequence_length, dtype=dtype)
    mapping = encoder_variable_map(encoder, _hf_name, linear_transposed=True)
    assign_weights(mapping, get_array, weights_path)
    return encoder
