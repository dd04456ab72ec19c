"""Hugging Face Llama folders: tiny random checkpoints written with safetensors, read back, and
the same weights from a GGUF file."""

import dataclasses
import json
import os

import numpy as np
import pytest
from checkpoints.llama_files import (
    CHAT_TEMPLATE,
    TINY,
    write_gguf,
    write_hf_llama,
)
from models.llama_reference import greedy_continuation, llama_logits, random_llama_weights

from tfmodels.checkpoints import load_gguf, load_hf_llama
from tfmodels.checkpoints.gguf import read_gguf
from tfmodels.checkpoints.hf_llama import read_hf_llama


def test_folder_reads_back_and_matches_the_same_weights_written_as_gguf(
    tmp_path, weights, tokenizer
):
    contents = read_hf_llama(write_hf_llama(str(tmp_path / "hf"), weights, tokenizer))
    from_gguf = read_gguf(write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer))
    assert sorted(contents.weights) == sorted(weights) == sorted(from_gguf.weights)
    for name, original in weights.items():
        np.testing.assert_array_equal(contents.weights[name], original, err_msg=name)
        np.testing.assert_array_equal(from_gguf.weights[name], original, err_msg=name)
    # GGUF stores the epsilon as float32; everything else is the same config.
    assert contents.config.rms_norm_eps == pytest.approx(from_gguf.config.rms_norm_eps, rel=1e-6)
    assert dataclasses.replace(contents.config, rms_norm_eps=1.0) == dataclasses.replace(
        from_gguf.config, rms_norm_eps=1.0
    )
    assert contents.config.num_key_value_heads == TINY["num_kv_heads"]
    assert contents.tokenizer_config["chat_template"] == CHAT_TEMPLATE
    assert os.path.basename(contents.tokenizer_json) == "tokenizer.json"


def test_sharded_bfloat16_untied_checkpoint(tmp_path, tokenizer):
    import ml_dtypes
    from safetensors.numpy import save_file

    weights = random_llama_weights(vocab_size=tokenizer.get_vocab_size(), tied=False, **TINY)
    directory = write_hf_llama(str(tmp_path / "hf"), weights, tokenizer)
    os.remove(os.path.join(directory, "model.safetensors"))
    names = sorted(weights)
    shards = {
        "model-00001-of-00002.safetensors": names[:7],
        "model-00002-of-00002.safetensors": names[7:],
    }
    for shard, shard_names in shards.items():
        arrays = {n: weights[n].astype(ml_dtypes.bfloat16) for n in shard_names}
        arrays["model.layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(4, np.float32)
        save_file(arrays, os.path.join(directory, shard))
    index = {"weight_map": {n: s for s, shard_names in shards.items() for n in shard_names}}
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f)

    contents = read_hf_llama(directory)
    assert sorted(contents.weights) == names and "lm_head.weight" in names
    for name, original in weights.items():
        expected = original.astype(ml_dtypes.bfloat16).astype(np.float32)
        np.testing.assert_array_equal(contents.weights[name], expected, err_msg=name)


def _edit_config(directory, **changes):
    path = os.path.join(directory, "config.json")
    with open(path) as f:
        config = json.load(f)
    with open(path, "w") as f:
        json.dump({**config, **changes}, f)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_type": "qwen2"}, r"config.json: not a Llama config: model_type='qwen2'"),
        ({"attention_bias": True}, r"config.json: attention_bias=True is not supported"),
        (
            {"rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
            r"config.json: rope_scaling .* is not supported",
        ),
    ],
)
def test_unsupported_configs_are_named(tmp_path, weights, tokenizer, changes, message):
    directory = write_hf_llama(str(tmp_path / "hf"), weights, tokenizer)
    _edit_config(directory, **changes)
    with pytest.raises(ValueError, match=message):
        read_hf_llama(directory)


def test_missing_files_are_named(tmp_path, weights, tokenizer):
    directory = write_hf_llama(str(tmp_path / "hf"), weights, tokenizer)
    os.remove(os.path.join(directory, "model.safetensors"))
    with pytest.raises(FileNotFoundError, match="neither model.safetensors nor"):
        read_hf_llama(directory)
    os.remove(os.path.join(directory, "tokenizer.json"))
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        read_hf_llama(directory)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        read_hf_llama(str(tmp_path))


def test_load_hf_llama_is_the_same_model_as_the_same_weights_in_gguf(tmp_path, weights, tokenizer):
    from_folder = load_hf_llama(write_hf_llama(str(tmp_path / "hf"), weights, tokenizer))
    from_gguf = load_gguf(write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer))
    assert from_folder.backbone.compute_dtype == "float32"
    prompt = from_folder.apply_chat_template([{"role": "user", "content": "Hello world!"}])
    assert prompt == from_gguf.apply_chat_template([{"role": "user", "content": "Hello world!"}])
    ids = from_folder.preprocessor.tokenizer(prompt).numpy()
    assert ids.tolist() == tokenizer.encode(prompt).ids
    inputs = {"token_ids": ids[None], "padding_mask": np.ones_like(ids)[None]}
    logits = np.asarray(from_folder(inputs))
    np.testing.assert_allclose(logits, np.asarray(from_gguf(inputs)), atol=1e-5)
    config = dict(
        num_heads=from_folder.backbone.config.num_attention_heads,
        num_kv_heads=from_folder.backbone.config.num_key_value_heads,
        rope_theta=from_folder.backbone.config.rope_theta,
        rms_norm_eps=from_folder.backbone.config.rms_norm_eps,
    )
    assert np.abs(logits - llama_logits(weights, ids[None], **config)).max() <= 1e-3
    assert from_folder.end_token_ids == from_gguf.end_token_ids == (2,)
    # Text in, text out: the reference's greedy tokens, decoded by Hugging Face's tokenizer.
    reference = greedy_continuation(weights, ids, 5, end_token_ids=(2,), **config)
    expected_text = tokenizer.decode([t for t in reference if t != 2], skip_special_tokens=False)
    assert from_folder.generate(prompt, max_new_tokens=5, jit_compile=False) == expected_text


def test_a_tokenizer_larger_than_the_embedding_is_refused(tmp_path, tokenizer):
    weights = random_llama_weights(vocab_size=tokenizer.get_vocab_size() - 1, **TINY)
    directory = write_hf_llama(str(tmp_path / "hf"), weights, tokenizer)
    with pytest.raises(
        ValueError, match=r"tokenizer has 300 tokens, the model's embedding only 299"
    ):
        load_hf_llama(directory)
