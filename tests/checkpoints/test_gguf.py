"""GGUF import: tiny files written with llama.cpp's own ``gguf`` writer in each tensor type, read
back and compared with the weights that went in and with a numpy Llama forward pass."""

import os

import numpy as np
import pytest
from checkpoints.llama_files import (
    SPECIAL_TOKENS,
    TINY,
    quantized,
    tokenizer_parts,
    write_gguf,
)
from models.llama_reference import (
    apply_rope,
    llama_logits,
    random_llama_weights,
)

from tfmodels.checkpoints.gguf import (
    GGUFFormatError,
    load_gguf,
    permute_rows_for_gguf,
    read_gguf,
    unpermute_rows_from_gguf,
)
from tfmodels.checkpoints.weight_mapping import CheckpointMismatchError
from tfmodels.text import BytePairTokenizer

QUANTIZATIONS = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]


def _interleaved_rope(x, positions, theta):
    """GPT-J style RoPE (what llama.cpp computes): rotates adjacent pairs (2i, 2i+1)."""
    head_dim = x.shape[-1]
    inverse_frequencies = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
    angles = positions[..., None] * inverse_frequencies
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def test_llama_cpp_row_permutation_turns_half_rotation_into_pair_rotation():
    rng = np.random.default_rng(0)
    heads, head_dim, width, length = 3, 8, 5, 4
    q_weight = rng.standard_normal((heads * head_dim, width))
    x = rng.standard_normal((1, length, width))
    positions = np.arange(length)[None]

    def project(weight):  # [1, heads, length, head_dim]
        return (x @ weight.T).reshape(1, length, heads, head_dim).transpose(0, 2, 1, 3)

    gguf_weight = permute_rows_for_gguf(q_weight, heads)
    hf_rotated = apply_rope(project(q_weight), positions, 10000.0)
    llama_cpp_rotated = _interleaved_rope(project(gguf_weight), positions, 10000.0)
    # Same rotated vectors, the components of each head in llama.cpp's interleaved order.
    np.testing.assert_allclose(llama_cpp_rotated, _interleave(hf_rotated), atol=1e-12)
    np.testing.assert_array_equal(unpermute_rows_from_gguf(gguf_weight, heads), q_weight)


def _interleave(x):
    """Each head's halves [a0..a(d/2-1) | b0..] -> (a0, b0, a1, b1, ...)."""
    half = x.shape[-1] // 2
    return np.stack([x[..., :half], x[..., half:]], axis=-1).reshape(x.shape)


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_round_trip_gives_the_dequantized_weights_in_hugging_face_layout(
    tmp_path, weights, tokenizer, quantization
):
    path = write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer, quantization)
    contents = read_gguf(path)
    assert sorted(contents.weights) == sorted(weights)
    for name, original in weights.items():
        loaded = contents.weights[name]
        assert loaded.dtype == np.float32 and loaded.shape == original.shape, name
        # llama.cpp quantizes per row, so un-permuting after dequantizing is exact.
        expected = quantized(original, quantization) if original.ndim == 2 else original
        np.testing.assert_array_equal(loaded, expected, err_msg=name)
    # ... and close to the originals: error relative to the largest weight, as each type allows.
    tolerance = {"F32": 0, "F16": 1e-3, "BF16": 8e-3, "Q8_0": 1e-2}.get(quantization, 0.1)
    original = weights["model.embed_tokens.weight"]
    error = np.abs(contents.weights["model.embed_tokens.weight"] - original).max()
    assert error <= tolerance * np.abs(original).max()


def test_tokenizer_fields_and_metadata(tmp_path, weights, tokenizer):
    contents = read_gguf(write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer))
    vocabulary, merges = tokenizer_parts(tokenizer)
    fields = contents.tokenizer
    assert fields["vocabulary"] == vocabulary and fields["merges"] == merges
    assert fields["special_tokens"] == SPECIAL_TOKENS
    assert (fields["bos_token_id"], fields["eos_token_id"], fields["pad_token_id"]) == (1, 2, 0)
    assert fields["pre_tokenizer"] == "gpt2" and fields["add_bos_token"] is False
    assert "<|im_start|>" in fields["chat_template"]
    assert contents.architecture == "llama"
    assert contents.metadata["llama.attention.head_count_kv"] == TINY["num_kv_heads"]


def test_k_quant_tensor_is_dequantized_by_gguf(tmp_path, weights, tokenizer):
    """No writer quantizes K-quants, so a Q6_K matrix is made of raw blocks (random 6-bit values
    and scales, a sane f16 super-scale) and must read as ``gguf.quants.dequantize`` of them."""
    import gguf

    block_bytes, block_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q6_K][::-1]
    width = 256  # one K-quant super-block per row
    wide = random_llama_weights(
        vocab_size=tokenizer.get_vocab_size(), width=width, num_layers=1, num_heads=4,
        num_kv_heads=2, intermediate=256, seed=5,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (wide["model.layers.0.mlp.up_proj.weight"].shape[0], block_bytes))
    raw = raw.astype(np.uint8)
    raw[:, -2:] = np.array([0.01], np.float16).view(np.uint8)  # d, the last field of a block
    expected = gguf.quants.dequantize(raw, gguf.GGMLQuantizationType.Q6_K)
    assert block_size == width and np.isfinite(expected).all()

    path = str(tmp_path / "k.gguf")
    write_gguf(path, {**wide, "model.layers.0.mlp.up_proj.weight": expected}, tokenizer)
    _rewrite(path, replace_tensor=("blk.0.ffn_up.weight", raw, gguf.GGMLQuantizationType.Q6_K))
    loaded = read_gguf(path).weights["model.layers.0.mlp.up_proj.weight"]
    np.testing.assert_array_equal(loaded, expected)


def _rewrite(path, replace_tensor=None, extra_fields=None):
    """Re-writes a GGUF file with one tensor replaced by raw blocks
    (``replace_tensor=(name, raw uint8 blocks, qtype)``) and/or extra metadata
    (``{key: (value, GGUFValueType)}``)."""
    import gguf

    reader = gguf.GGUFReader(path)
    writer = gguf.GGUFWriter(path + ".tmp", reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub_type)
    for key, (value, value_type) in (extra_fields or {}).items():
        writer.add_key_value(key, value, value_type)
    for tensor in reader.tensors:
        if replace_tensor and tensor.name == replace_tensor[0]:
            _, raw, qtype = replace_tensor
            writer.add_tensor(tensor.name, raw, raw_shape=raw.shape, raw_dtype=qtype)
        else:
            writer.add_tensor(tensor.name, np.array(tensor.data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(path + ".tmp", path)


def test_another_architecture_is_refused_by_name(tmp_path, weights, tokenizer):
    path = write_gguf(str(tmp_path / "qwen.gguf"), weights, tokenizer, architecture="qwen2")
    with pytest.raises(GGUFFormatError, match=r"general.architecture is 'qwen2'; supported: llama"):
        read_gguf(path)


def test_truncated_file_is_named_as_truncated(tmp_path, weights, tokenizer):
    path = write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer)
    for keep in (os.path.getsize(path) // 2, 100):
        truncated = str(tmp_path / f"cut{keep}.gguf")
        with open(path, "rb") as source, open(truncated, "wb") as target:
            target.write(source.read(keep))
        with pytest.raises(GGUFFormatError, match=rf"cut{keep}.gguf \({keep} bytes\).*truncated"):
            read_gguf(truncated)


def test_one_part_of_a_split_file_is_refused(tmp_path, weights, tokenizer):
    import gguf

    path = str(tmp_path / "model-00001-of-00002.gguf")
    write_gguf(path, weights, tokenizer)
    _rewrite(
        path,
        extra_fields={
            "split.no": (0, gguf.GGUFValueType.UINT16),
            "split.count": (2, gguf.GGUFValueType.UINT16),
        },
    )
    with pytest.raises(GGUFFormatError, match="part 1 of a GGUF split into 2 files; merge them"):
        read_gguf(path)


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_text("this is not a model\n" * 10)
    with pytest.raises(GGUFFormatError, match="not a readable GGUF file"):
        read_gguf(str(path))
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        read_gguf(str(tmp_path / "absent.gguf"))


def test_missing_tensor_is_named(tmp_path, weights, tokenizer):
    path = write_gguf(str(tmp_path / "t.gguf"), weights, tokenizer, skip=("blk.1.ffn_up.weight",))
    with pytest.raises(CheckpointMismatchError, match=r"lacks tensor\(s\) 'blk.1.ffn_up.weight'$"):
        read_gguf(path)


def test_wrong_shape_is_named(tmp_path, weights, tokenizer):
    bad = dict(weights)
    bad["model.layers.0.mlp.gate_proj.weight"] = weights["model.layers.0.mlp.gate_proj.weight"][:32]
    path = write_gguf(str(tmp_path / "t.gguf"), bad, tokenizer)
    with pytest.raises(
        CheckpointMismatchError, match=r"'blk.0.ffn_gate.weight' .* shape \[32, 32\], .* \[64, 32\]"
    ):
        read_gguf(path)


def test_unsupported_tensor_type_is_named(tmp_path, weights, tokenizer):
    path = write_gguf(
        str(tmp_path / "t.gguf"), weights, tokenizer, tensor_types={"blk.0.attn_v.weight": "int32"}
    )
    with pytest.raises(GGUFFormatError, match=r"'blk.0.attn_v.weight' has type I32"):
        read_gguf(path)


# -- the Keras model ------------------------------------------------------------------------------


def _reference_config(config):
    return dict(
        num_heads=config.num_attention_heads,
        num_kv_heads=config.num_key_value_heads,
        rope_theta=config.rope_theta,
        rms_norm_eps=config.rms_norm_eps,
    )


def assert_matches_reference(model, weights, token_ids, max_new_tokens=6):
    """The model's greedy continuation of ``token_ids`` is the numpy reference's, token for token,
    and its logits at every position of prompt + continuation equal the reference's over
    ``weights`` (max |diff| <= 1e-3). One reference pass checks both: greedy decoding picks, at
    each position from the prompt's last on, the argmax of that position's logits.

    Returns the generated ids up to and including the first end token."""
    generated = model.generate(
        {
            "token_ids": token_ids[None].astype("int32"),
            "padding_mask": np.ones_like(token_ids)[None],
        },
        max_new_tokens=max_new_tokens,
        jit_compile=False,
    )[0].tolist()
    ends = [i for i, token in enumerate(generated) if token in model.end_token_ids]
    generated = np.array(generated[: ends[0] + 1] if ends else generated, "int32")
    sequence = np.concatenate([token_ids, generated]).astype("int32")[None]
    logits = np.asarray(model({"token_ids": sequence, "padding_mask": np.ones_like(sequence)}))
    expected = llama_logits(weights, sequence, **_reference_config(model.backbone.config))
    assert np.abs(logits - expected).max() <= 1e-3
    prompt_length = len(token_ids)
    greedy = expected[0, prompt_length - 1 : prompt_length - 1 + len(generated)].argmax(-1)
    assert greedy.tolist() == generated.tolist()
    return generated


def test_load_gguf_matches_the_numpy_forward_pass(tmp_path, weights, tokenizer):
    # Q4_1 as in SmolLM2's file (F32: test_hf_llama's cross-format test).
    path = write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer, "Q4_1")
    model = load_gguf(path)
    assert model.backbone.compute_dtype == "float32"
    token_ids = np.array(tokenizer.encode("What is the capital of France? Paris.").ids)
    assert_matches_reference(model, read_gguf(path).weights, token_ids)


def test_load_gguf_brings_the_files_tokenizer_and_chat_template(tmp_path, weights, tokenizer):
    model = load_gguf(write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer))
    preprocessor = model.preprocessor
    assert isinstance(preprocessor.tokenizer, BytePairTokenizer)
    assert preprocessor.tokenizer.get_vocabulary() == tokenizer_parts(tokenizer)[0]
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = model.apply_chat_template(messages)
    assert (
        prompt
        == "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert preprocessor.tokenizer(prompt).numpy().tolist() == tokenizer.encode(prompt).ids
    assert model.end_token_ids == (2,) and preprocessor.pad_token_id == 0
    assert preprocessor.start_token_id is None  # tokenizer.ggml.add_bos_token is false


def test_load_gguf_follows_the_dtype_policy(tmp_path, weights, tokenizer):
    path = write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer)
    model = load_gguf(path, dtype="mixed_bfloat16")
    assert model.backbone.compute_dtype == "bfloat16"
    assert model.backbone.token_embedding.embeddings.dtype == "float32"
    token_ids = np.array([[5, 6, 7, 8]], "int32")
    logits = np.asarray(model({"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}))
    expected = llama_logits(
        read_gguf(path).weights, token_ids, **_reference_config(model.backbone.config)
    )
    assert np.abs(logits - expected).max() < 0.1 * np.abs(expected).max()


@pytest.mark.e2e
def test_smollm2_answers_like_the_numpy_forward_pass():
    """The packaged SmolLM2-135M-Instruct (Q4_1): the greedy answer and the logits of every
    position of prompt + answer are the numpy forward pass's over the same dequantized weights."""
    from tfmodels.datasets import smollm2_path

    model = load_gguf(smollm2_path())
    prompt = model.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}]
    )
    token_ids = model.preprocessor.tokenizer(prompt).numpy()
    assert len(token_ids) == 37 and token_ids[:2].tolist() == [1, 9690]  # <|im_start|> system
    generated = assert_matches_reference(
        model, read_gguf(smollm2_path()).weights, token_ids, max_new_tokens=8
    )
    answer = model.preprocessor.tokenizer.detokenize(generated[None]).numpy()[0].decode()
    assert answer == "The capital of France is Paris.<|im_end|>"


def test_a_loaded_gguf_model_saves_and_reloads_as_keras(tmp_path, weights, tokenizer):
    import keras

    model = load_gguf(write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer, "Q8_0"))
    model.save(str(tmp_path / "tiny.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "tiny.keras"))
    messages = [{"role": "user", "content": "Hello world!"}]
    assert reloaded.apply_chat_template(messages) == model.apply_chat_template(messages)
    prompt = model.apply_chat_template(messages)
    ids = reloaded.preprocessor.tokenizer(prompt).numpy()
    assert ids.tolist() == tokenizer.encode(prompt).ids
    inputs = {"token_ids": ids[None], "padding_mask": np.ones_like(ids)[None]}
    np.testing.assert_array_equal(np.asarray(reloaded(inputs)), np.asarray(model(inputs)))
