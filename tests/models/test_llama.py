"""The Llama-architecture decoder: config, backbone vs the numpy reference, weights, LoRA."""

import json

import keras
import numpy as np
import pytest
from models.llama_reference import llama_hidden_states, llama_logits, random_llama_weights
from testlib import run_layer_test, run_model_test

from tfmodels.models.llama import DecoderBackbone, DecoderConfig, LlamaDecoderBlock

TINY = {"vocab_size": 61, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 500.0,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": True}
REFERENCE = {"num_heads": 4, "num_kv_heads": 2, "rope_theta": 500.0, "rms_norm_eps": 1e-5}


def _inputs(batch=2, length=6, vocab=61, seed=0, left_pad=(2, 0)):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), "int32")
    for row, pads in enumerate(left_pad[:batch]):
        mask[row, :pads] = 0
    ids = rng.integers(3, vocab, (batch, length)).astype("int32") * mask
    return {"token_ids": ids, "padding_mask": mask}


def _backbone(tied=True, **overrides):
    backbone = DecoderBackbone(DecoderConfig(**{**TINY, "tie_word_embeddings": tied, **overrides}))
    weights = random_llama_weights(tied=tied)
    backbone.assign_hf_llama_weights(weights)
    return backbone, weights


def test_config_validates_and_round_trips_json():
    config = DecoderConfig(**TINY)
    assert config.head_dim == 4 and DecoderConfig.from_json(config.to_json()) == config
    for bad, match in [({"num_key_value_heads": 3}, "divisible"), ({"hidden_size": 0}, "positive"),
                       ({"rope_theta": -1.0}, "rope_theta"), ({"head_dim": 5}, "even"),
                       ({"attention_dropout": 1.5}, r"\[0, 1\)")]:
        with pytest.raises(ValueError, match=match):
            DecoderConfig(**{**TINY, **bad})
    with pytest.raises(ValueError, match="no field"):
        DecoderConfig.from_dict({**TINY, "num_layers": 3})


def test_config_from_hugging_face_and_gguf_metadata():
    hf = {"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
          "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
          "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "max_position_embeddings": 8192,
          "tie_word_embeddings": True, "bos_token_id": 1, "torch_dtype": "bfloat16"}
    config = DecoderConfig.from_hf_config(hf)
    assert (config.head_dim, config.num_key_value_heads, config.rope_theta) == (64, 3, 1e5)
    gguf = {"general.architecture": "llama", "llama.block_count": 30, "llama.context_length": 8192,
            "llama.embedding_length": 576, "llama.feed_forward_length": 1536,
            "llama.attention.head_count": 9, "llama.attention.head_count_kv": 3,
            "llama.rope.freq_base": 100000.0, "llama.attention.layer_norm_rms_epsilon": 1e-5,
            "llama.vocab_size": 49152}
    assert DecoderConfig.from_gguf_metadata(gguf) == config
    linear = DecoderConfig.from_hf_config({**hf, "rope_scaling": {"type": "linear", "factor": 2.0}})
    assert linear.rope_scaling_factor == 2.0
    with pytest.raises(ValueError, match="rope_scaling"):
        DecoderConfig.from_hf_config({**hf, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})
    with pytest.raises(ValueError, match="model_type"):
        DecoderConfig.from_hf_config({**hf, "model_type": "gpt2"})
    with pytest.raises(ValueError, match="attention_bias"):
        DecoderConfig.from_hf_config({**hf, "attention_bias": True})
    with pytest.raises(ValueError, match="llama.block_count"):
        DecoderConfig.from_gguf_metadata({k: v for k, v in gguf.items() if k != "llama.block_count"})


@pytest.mark.parametrize("tied", [True, False])
def test_backbone_matches_the_numpy_reference_with_left_padding(tied):
    backbone, weights = _backbone(tied)
    inputs = _inputs()
    hidden = np.asarray(backbone(inputs))
    expected = llama_hidden_states(weights, inputs["token_ids"], padding_mask=inputs["padding_mask"],
                                   **REFERENCE)
    real = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(hidden[real], expected[real], atol=1e-4)
    logits = np.asarray(backbone.token_logits(backbone(inputs)))
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits[real], llama_logits(
        weights, inputs["token_ids"], padding_mask=inputs["padding_mask"], **REFERENCE)[real],
        atol=1e-3)


def test_left_padding_gives_each_row_its_unpadded_result():
    backbone, _ = _backbone()
    padded = _inputs(batch=1, left_pad=(3,))
    alone = {name: value[:, 3:] for name, value in padded.items()}
    np.testing.assert_allclose(np.asarray(backbone(padded))[:, 3:], backbone(alone), atol=1e-5)


def test_backbone_harness():
    run_model_test(DecoderBackbone, {"config": DecoderConfig(**TINY)}, _inputs(),
                   expected_output_shape=(2, 6, 16), expected_num_trainable_weights=2 + 9 * 2)


def test_decoder_block_harness():
    run_layer_test(LlamaDecoderBlock, {"num_heads": 4, "num_key_value_heads": 2, "head_dim": 4,
                                       "intermediate_size": 24}, np.ones((2, 3, 16), "float32"),
                   expected_output_shape=(2, 3, 16), expected_num_trainable_weights=9, atol=1e-5)


def test_assign_hf_llama_weights_names_missing_misshapen_and_unknown_tensors():
    backbone = DecoderBackbone(DecoderConfig(**TINY))
    weights = random_llama_weights()
    missing = {k: v for k, v in weights.items() if k != "model.layers.1.mlp.up_proj.weight"}
    with pytest.raises(ValueError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        backbone.assign_hf_llama_weights(missing)
    wrong = {**weights, "model.layers.0.self_attn.k_proj.weight": np.zeros((16, 16), "float32")}
    with pytest.raises(ValueError, match=r"model\.layers\.0\.self_attn\.k_proj\.weight"):
        backbone.assign_hf_llama_weights(wrong)
    extra = {**weights, "model.layers.2.input_layernorm.weight": np.ones(16, "float32")}
    with pytest.raises(ValueError, match=r"model\.layers\.2\.input_layernorm\.weight"):
        backbone.assign_hf_llama_weights(extra)
    untied = DecoderBackbone(DecoderConfig(**{**TINY, "tie_word_embeddings": False}))
    with pytest.raises(ValueError, match=r"lm_head\.weight"):
        untied.assign_hf_llama_weights(weights)


def test_backbone_config_round_trips_through_json():
    backbone = DecoderBackbone(DecoderConfig(**TINY), dtype="mixed_bfloat16")
    config = json.loads(json.dumps(backbone.get_config()))
    clone = DecoderBackbone.from_config(config)
    assert clone.config == backbone.config and clone.dtype_policy.name == "mixed_bfloat16"
    keras.config.set_dtype_policy("float32")
