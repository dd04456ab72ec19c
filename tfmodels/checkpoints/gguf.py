"""Import llama.cpp GGUF files of the Llama architecture as a ``CausalLM``.

The file is read with llama.cpp's own ``gguf`` package (numpy only): ``read_gguf`` turns it into
plain parts — the metadata, float32 weights under Hugging Face Llama names and layouts, and the
tokenizer's fields — and ``load_gguf`` builds the Keras model from them. Keeping the two apart
lets the tests compare the dequantized weights with a numpy reference before any Keras model
exists, and makes GGUF and Hugging Face folders meet at the same weight dictionary.

Two layout facts of GGUF:
- shapes are listed innermost first: a ``[out, in]`` matrix is stored as ``(in, out)``;
- llama.cpp's converter permutes the rows of ``attn_q`` / ``attn_k`` so that RoPE rotates
  adjacent pairs (2i, 2i+1); Hugging Face rotates the two halves of each head. ``read_gguf``
  undoes the permutation, so the weights are exactly Hugging Face's.
"""

import dataclasses
import os

import numpy as np

from tfmodels.checkpoints.weight_mapping import CheckpointMismatchError
from tfmodels.models.llama.config import DecoderConfig

SUPPORTED_ARCHITECTURES = ("llama",)

# Tensor types we dequantize: the float types and the block quantizations llama.cpp uses for Llama
# files (``gguf.quants`` implements each). Integer tensors and the i-quants are refused by name.
SUPPORTED_TENSOR_TYPES = (
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
    "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
)  # fmt: skip

# llama.cpp's ``tokenizer.ggml.pre`` -> our BytePairTokenizer's ``pre_tokenizer``.
_PRE_TOKENIZERS = {"gpt2": "gpt2", "default": "gpt2", "smollm": "smollm"}

# Token types (llama.cpp's ``llama_token_type``) whose tokens are matched whole in text.
_CONTROL_TOKEN = 3
_USER_DEFINED_TOKEN = 4

_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_BLOCK_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


class GGUFFormatError(ValueError):
    """A GGUF file that cannot be imported: not GGUF, truncated, another architecture, a
    tensor type or tokenizer we do not read."""


def hf_name(gguf_name):
    """The Hugging Face Llama name of a GGUF tensor name (``blk.3.attn_q.weight`` ->
    ``model.layers.3.self_attn.q_proj.weight``); ``None`` for a name we do not know."""
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in _BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{_BLOCK_NAMES[parts[2]]}.{parts[3]}"
    return None


def gguf_name(hf_llama_name):
    """The GGUF tensor name of a Hugging Face Llama weight name (inverse of ``hf_name``)."""
    for gguf, hf in _GLOBAL_NAMES.items():
        if hf == hf_llama_name:
            return gguf
    parts = hf_llama_name.split(".")
    if parts[:2] == ["model", "layers"]:
        module = ".".join(parts[3:-1])
        for gguf, hf in _BLOCK_NAMES.items():
            if hf == module:
                return f"blk.{parts[2]}.{gguf}.{parts[-1]}"
    raise KeyError(f"{hf_llama_name!r} is not a Hugging Face Llama weight name")


def permute_rows_for_gguf(weight, num_heads):
    """Hugging Face q/k rows -> llama.cpp's order (what ``convert_hf_to_gguf.py`` does): within
    each head, the halves ``[x0..x(d/2-1) | x(d/2)..x(d-1)]`` become interleaved pairs."""
    rows = weight.shape[0]
    return (
        weight.reshape(num_heads, 2, rows // num_heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def unpermute_rows_from_gguf(weight, num_heads):
    """Inverse of ``permute_rows_for_gguf``: llama.cpp's q/k rows back to Hugging Face's."""
    rows = weight.shape[0]
    return (
        weight.reshape(num_heads, rows // num_heads // 2, 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


@dataclasses.dataclass
class GGUFContents:
    """What ``read_gguf`` found in a file.

    Attributes:
        path: the file.
        architecture: ``general.architecture``.
        config: the ``DecoderConfig`` the metadata describes (tied unless ``output.weight``).
        metadata: every key/value of the file as Python values (arrays as lists).
        weights: ``{hf_llama_name: float32 np.ndarray}`` in Hugging Face layouts.
        tokenizer: ``vocabulary``, ``merges``, ``special_tokens``, ``pre_tokenizer`` and the
            ``bos/eos/eot/pad/unk_token_id`` (``None`` when absent), ``add_bos_token`` and
            ``chat_template`` (``None`` when absent).
    """

    path: str
    architecture: str
    config: DecoderConfig
    metadata: dict
    weights: dict
    tokenizer: dict


def _open(path):
    import gguf

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no GGUF file at {path}")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as error:  # gguf raises bare ValueError/IndexError/OverflowError on bad bytes.
        size = os.path.getsize(path)
        raise GGUFFormatError(
            f"{path} ({size} bytes) is not a readable GGUF file — it looks truncated or "
            f"corrupt (the gguf reader said: {type(error).__name__}: {error})"
        ) from error
    return reader


def _metadata(reader, path):
    metadata = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        try:
            metadata[key] = field.contents()
        except Exception as error:
            raise GGUFFormatError(
                f"{path}: metadata key {key!r} cannot be decoded ({error}); the file looks corrupt"
            ) from error
    return metadata


def expected_shapes(config):
    """``{hf_name: shape}`` of every weight a ``DecoderConfig`` implies (``lm_head`` when untied)."""
    width, ffn = config.hidden_size, config.intermediate_size
    q_rows = config.num_attention_heads * config.head_dim
    kv_rows = config.num_key_value_heads * config.head_dim
    shapes = {
        "model.embed_tokens.weight": (config.vocab_size, width),
        "model.norm.weight": (width,),
    }
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (width,),
            p + "self_attn.q_proj.weight": (q_rows, width),
            p + "self_attn.k_proj.weight": (kv_rows, width),
            p + "self_attn.v_proj.weight": (kv_rows, width),
            p + "self_attn.o_proj.weight": (width, q_rows),
            p + "post_attention_layernorm.weight": (width,),
            p + "mlp.gate_proj.weight": (ffn, width),
            p + "mlp.up_proj.weight": (ffn, width),
            p + "mlp.down_proj.weight": (width, ffn),
        })  # fmt: skip
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, width)
    return shapes


def _dequantize(tensor, path):
    import gguf

    type_name = tensor.tensor_type.name
    if type_name not in SUPPORTED_TENSOR_TYPES:
        raise GGUFFormatError(
            f"{path}: tensor {tensor.name!r} has type {type_name}, which we do not dequantize "
            f"(supported: {', '.join(SUPPORTED_TENSOR_TYPES)})"
        )
    shape = tuple(int(d) for d in reversed(tensor.shape))  # GGUF lists the innermost axis first.
    array = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    return np.ascontiguousarray(array, dtype=np.float32).reshape(shape)


def _tokenizer_fields(metadata, path):
    model = metadata.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise GGUFFormatError(
            f"{path}: tokenizer.ggml.model is {model!r}; only byte-level BPE ('gpt2') is supported"
        )
    pre = metadata.get("tokenizer.ggml.pre", "default")
    if pre not in _PRE_TOKENIZERS:
        raise GGUFFormatError(
            f"{path}: tokenizer.ggml.pre is {pre!r}; supported: {', '.join(sorted(_PRE_TOKENIZERS))}"
        )
    vocabulary = list(metadata.get("tokenizer.ggml.tokens", ()))
    if not vocabulary:
        raise GGUFFormatError(f"{path} has no tokenizer.ggml.tokens")
    token_types = list(metadata.get("tokenizer.ggml.token_type", ()))
    special = [
        token
        for token, kind in zip(vocabulary, token_types)
        if kind in (_CONTROL_TOKEN, _USER_DEFINED_TOKEN)
    ]
    return {
        "vocabulary": vocabulary,
        "merges": list(metadata.get("tokenizer.ggml.merges", ())),
        "special_tokens": special,
        "pre_tokenizer": _PRE_TOKENIZERS[pre],
        "bos_token_id": metadata.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": metadata.get("tokenizer.ggml.eos_token_id"),
        "pad_token_id": metadata.get("tokenizer.ggml.padding_token_id"),
        "unk_token_id": metadata.get("tokenizer.ggml.unknown_token_id"),
        "eot_token_id": metadata.get("tokenizer.ggml.eot_token_id"),
        "add_bos_token": bool(metadata.get("tokenizer.ggml.add_bos_token", False)),
        "chat_template": metadata.get("tokenizer.chat_template"),
    }


def read_gguf(path):
    """Reads a Llama-architecture GGUF file into ``GGUFContents`` (float32 weights in Hugging
    Face names and layouts, metadata, tokenizer fields).

    Raises:
        FileNotFoundError: no file at ``path``.
        GGUFFormatError: not a GGUF file or truncated; another architecture; a tensor type we do
            not dequantize (names the tensor); an unknown or missing tokenizer.
        CheckpointMismatchError: a tensor is missing, has the wrong shape or is not part of the
            Llama architecture (names the tensor).
    """
    path = os.fspath(path)
    reader = _open(path)
    metadata = _metadata(reader, path)
    if int(metadata.get("split.count", 1)) > 1:
        raise GGUFFormatError(
            f"{path} is part {int(metadata.get('split.no', 0)) + 1} of a GGUF split into "
            f"{metadata['split.count']} files; merge them first (llama-gguf-split --merge)"
        )
    architecture = metadata.get("general.architecture")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise GGUFFormatError(
            f"{path}: general.architecture is {architecture!r}; supported: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    tied = all(tensor.name != "output.weight" for tensor in reader.tensors)
    try:
        config = DecoderConfig.from_gguf_metadata(metadata, tie_word_embeddings=tied)
    except ValueError as error:
        raise GGUFFormatError(f"{path}: {error}") from error
    expected = expected_shapes(config)
    tokenizer = _tokenizer_fields(metadata, path)

    # Names and shapes first (cheap), so a bad file fails before anything is dequantized.
    tensors = {}
    for tensor in reader.tensors:
        name = hf_name(tensor.name)
        if name not in expected:
            raise CheckpointMismatchError(
                f"{path}: tensor {tensor.name!r} is not part of the Llama architecture we import"
            )
        shape = tuple(int(d) for d in reversed(tensor.shape))
        if shape != expected[name]:
            raise CheckpointMismatchError(
                f"{path}: tensor {tensor.name!r} ({name}) has shape {list(shape)}, the metadata "
                f"implies {list(expected[name])}"
            )
        tensors[name] = tensor
    missing = [gguf_name(name) for name in expected if name not in tensors]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CheckpointMismatchError(
            f"{path} lacks tensor(s) {', '.join(repr(m) for m in missing[:5])}{more}"
        )
    weights = {}
    for name, tensor in tensors.items():
        array = _dequantize(tensor, path)
        if name.endswith("self_attn.q_proj.weight"):
            array = unpermute_rows_from_gguf(array, config.num_attention_heads)
        elif name.endswith("self_attn.k_proj.weight"):
            array = unpermute_rows_from_gguf(array, config.num_key_value_heads)
        weights[name] = array
    return GGUFContents(path, architecture, config, metadata, weights, tokenizer)


def load_gguf(path, dtype=None, sequence_length=None):
    """A ``CausalLM`` from a llama.cpp GGUF file of the Llama architecture, with its
    ``CausalLMPreprocessor`` (``model.preprocessor.tokenizer`` is the file's byte-level BPE,
    ``model.apply_chat_template`` uses the file's ``tokenizer.chat_template``).

    Quantized tensors (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, K-quants, F16, BF16) are dequantized by
    llama.cpp's ``gguf`` package; the model then computes in float32 unless ``dtype`` (or Keras'
    global policy) says otherwise.

    Args:
        path: the ``.gguf`` file.
        dtype: dtype policy (e.g. ``"mixed_bfloat16"``); ``None`` follows Keras' global policy.
        sequence_length: the preprocessor's length; default the model's context, at most 1024.

    Raises:
        FileNotFoundError, GGUFFormatError, CheckpointMismatchError: see ``read_gguf``.

    Example:
    >>> from tfmodels import datasets  # doctest: +SKIP
    >>> model = load_gguf(datasets.smollm2_path())  # doctest: +SKIP
    >>> model.generate(model.apply_chat_template(  # doctest: +SKIP
    ...     [{"role": "user", "content": "What is the capital of France?"}]), max_new_tokens=16)
    'The capital of France is Paris.'
    """
    from tfmodels.checkpoints.hf_llama import causal_lm_from_weights

    contents = read_gguf(path)
    tokenizer, settings = _preprocessor_settings(contents.tokenizer, path)
    return causal_lm_from_weights(
        contents.config,
        contents.weights,
        tokenizer,
        sequence_length=sequence_length,
        dtype=dtype,
        **settings,
    )


def _preprocessor_settings(fields, path):
    """``(BytePairTokenizer, CausalLMPreprocessor keyword arguments)`` of a file's tokenizer."""
    from tfmodels.text.byte_pair import BytePairTokenizer

    tokenizer = BytePairTokenizer(
        fields["vocabulary"],
        fields["merges"],
        pre_tokenizer=fields["pre_tokenizer"],
        special_tokens=fields["special_tokens"],
    )
    end_ids = [i for i in (fields["eos_token_id"], fields["eot_token_id"]) if i is not None]
    if not end_ids:
        raise GGUFFormatError(f"{path} has no tokenizer.ggml.eos_token_id")
    return tokenizer, dict(
        end_token_ids=list(dict.fromkeys(end_ids)),
        start_token_id=fields["bos_token_id"] if fields["add_bos_token"] else None,
        pad_token_id=fields["pad_token_id"],
        chat_template=fields["chat_template"],
    )


def load_gguf_preprocessor(path, sequence_length=1024):
    """The ``CausalLMPreprocessor`` (tokenizer, end/start/pad ids, chat template) of a GGUF file
    alone, as ``load_gguf`` builds it, without reading the weights (e.g. to tokenize data).

    Raises:
        FileNotFoundError, GGUFFormatError: see ``read_gguf``.

    Example:
    >>> from tfmodels import datasets  # doctest: +SKIP
    >>> load_gguf_preprocessor(datasets.smollm2_path()).tokenizer.vocabulary_size()  # doctest: +SKIP
    49152
    """
    from tfmodels.models.llama import CausalLMPreprocessor

    path = os.fspath(path)
    tokenizer, settings = _preprocessor_settings(_tokenizer_fields(_metadata(_open(path), path), path),
                                                 path)
    return CausalLMPreprocessor(tokenizer, sequence_length=sequence_length, **settings)
