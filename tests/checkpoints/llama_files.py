"""Tiny Llama checkpoints on disk for the import tests: a GGUF file written with llama.cpp's own
``gguf`` writer and a Hugging Face folder (config.json, model.safetensors, tokenizer.json), both
from the same weights and the same small byte-level BPE tokenizer."""

import json
import os

import numpy as np

from tfmodels.checkpoints.gguf import gguf_name, permute_rows_for_gguf

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "What is the capital of France? It is Paris, a city of 2 million people.",
    "Hello world! Tokenizers split text into bytes, then merge frequent pairs.",
] * 4

# The tiny model: widths are multiples of 32 so every matrix row fills whole quantization blocks.
TINY = dict(width=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate=64)
ROPE_THETA = 10000.0
RMS_NORM_EPS = 1e-5


def tiny_tokenizer(vocab_size=300):
    """A byte-level BPE (``tokenizers``) trained on a few sentences; ids 0-2 are the specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS, trainer)
    return tokenizer


def tokenizer_parts(tokenizer):
    """``(vocabulary in id order, merges as "a b" strings)`` of a ``tokenizers`` BPE."""
    model = json.loads(tokenizer.to_str())["model"]
    vocabulary = sorted(model["vocab"], key=model["vocab"].get)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return vocabulary, merges


def write_gguf(
    path, weights, tokenizer, quantization="F32", architecture="llama", skip=(), tensor_types=None
):
    """Writes HF-named ``weights`` as a llama.cpp GGUF file: 2-D matrices in ``quantization``
    (a ``gguf.GGMLQuantizationType`` name), norms in F32, q/k rows permuted as llama.cpp's
    converter does. ``skip``: GGUF tensor names left out; ``tensor_types``: per-GGUF-name type
    overrides (a numpy dtype name writes that raw dtype, e.g. ``"int32"``)."""
    import gguf

    tensor_types = tensor_types or {}
    vocabulary, merges = tokenizer_parts(tokenizer)
    num_layers = 1 + max(int(n.split(".")[2]) for n in weights if n.startswith("model.layers."))
    width = weights["model.embed_tokens.weight"].shape[1]
    writer = gguf.GGUFWriter(path, architecture)
    arch = architecture
    writer.add_uint32(f"{arch}.block_count", num_layers)
    writer.add_uint32(f"{arch}.context_length", 128)
    writer.add_uint32(f"{arch}.embedding_length", width)
    writer.add_uint32(
        f"{arch}.feed_forward_length", weights["model.layers.0.mlp.up_proj.weight"].shape[0]
    )
    writer.add_uint32(f"{arch}.attention.head_count", TINY["num_heads"])
    writer.add_uint32(f"{arch}.attention.head_count_kv", TINY["num_kv_heads"])
    writer.add_float32(f"{arch}.rope.freq_base", ROPE_THETA)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", RMS_NORM_EPS)
    writer.add_uint32(f"{arch}.vocab_size", len(vocabulary))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt2")
    writer.add_token_list(vocabulary)
    writer.add_token_types([3 if t in SPECIAL_TOKENS else 1 for t in vocabulary])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(0)
    writer.add_bool("tokenizer.ggml.add_bos_token", False)
    writer.add_chat_template(CHAT_TEMPLATE)
    for name, array in weights.items():
        target = gguf_name(name)
        if target in skip:
            continue
        if ".attn_q." in target:
            array = permute_rows_for_gguf(array, TINY["num_heads"])
        elif ".attn_k." in target:
            array = permute_rows_for_gguf(array, TINY["num_kv_heads"])
        kind = tensor_types.get(target, quantization if array.ndim == 2 else "F32")
        if kind in ("int32", "float64"):
            writer.add_tensor(target, array.astype(kind))
            continue
        qtype = gguf.GGMLQuantizationType[kind]
        data = gguf.quants.quantize(np.asarray(array, np.float32), qtype)
        if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            writer.add_tensor(target, data)
        else:
            writer.add_tensor(target, data, raw_shape=data.shape, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def quantized(array, quantization):
    """``array`` after a round trip through the GGUF ``quantization`` type (what a reader gets)."""
    import gguf

    qtype = gguf.GGMLQuantizationType[quantization]
    data = gguf.quants.quantize(np.asarray(array, np.float32), qtype)
    return gguf.quants.dequantize(data, qtype).reshape(array.shape)


def write_hf_llama(directory, weights, tokenizer):
    """Writes a Hugging Face LlamaForCausalLM folder: config.json, model.safetensors,
    tokenizer.json (and tokenizer_config.json with the chat template)."""
    from safetensors.numpy import save_file

    os.makedirs(directory, exist_ok=True)
    vocab_size, width = weights["model.embed_tokens.weight"].shape
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": width,
        "intermediate_size": weights["model.layers.0.mlp.up_proj.weight"].shape[0],
        "num_hidden_layers": TINY["num_layers"],
        "num_attention_heads": TINY["num_heads"],
        "num_key_value_heads": TINY["num_kv_heads"],
        "max_position_embeddings": 128,
        "rms_norm_eps": RMS_NORM_EPS,
        "rope_theta": ROPE_THETA,
        "tie_word_embeddings": "lm_head.weight" not in weights,
        "hidden_act": "silu",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "torch_dtype": "float32",
    }
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    save_file(
        {k: np.ascontiguousarray(v) for k, v in weights.items()},
        os.path.join(directory, "model.safetensors"),
    )
    tokenizer.save(os.path.join(directory, "tokenizer.json"))
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": CHAT_TEMPLATE, "eos_token": "<|im_end|>"}, f)
    return directory
