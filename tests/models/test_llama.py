"""The Llama-architecture decoder: config, backbone vs the numpy reference, weights, LoRA."""

import functools
import json

import keras
import numpy as np
import pytest
from models.llama_reference import (
    greedy_continuation,
    llama_hidden_states,
    llama_logits,
    random_llama_weights,
)
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


# -- CausalLM ---------------------------------------------------------------------------------

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
END = 258  # <|im_end|>
SMOLLM_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@functools.lru_cache(maxsize=None)
def _tokenizer():
    """One tokenizer for every test model: its first call traces the tokenizing function."""
    from tfmodels.text.byte_pair import BytePairTokenizer, bytes_to_unicode

    vocabulary = list(bytes_to_unicode().values()) + SPECIALS + ["he", "ll"]
    return BytePairTokenizer(vocabulary, ["h e", "l l"], special_tokens=SPECIALS)


VOCAB = 261


def _causal_lm(sequence_length=12, seed=0, **overrides):
    from tfmodels.models.llama import CausalLM, CausalLMPreprocessor

    config = DecoderConfig(**{**TINY, "vocab_size": VOCAB, **overrides})
    backbone = DecoderBackbone(config)
    weights = random_llama_weights(vocab_size=VOCAB, tied=config.tie_word_embeddings, seed=seed)
    backbone.assign_hf_llama_weights(weights)
    preprocessor = CausalLMPreprocessor(_tokenizer(), sequence_length=sequence_length,
                                        end_token_ids=[END], chat_template=SMOLLM_TEMPLATE)
    return CausalLM(backbone, preprocessor), weights


def test_cached_prefill_and_steps_equal_the_full_forward_pass():
    model, _ = _causal_lm()
    # Row 0 right-padded, row 1 full: decoding_init left-aligns them.
    inputs = {"token_ids": np.array([[5, 9, 7, 0, 0], [4, 8, 15, 16, 23]], "int32"),
              "padding_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")}
    new_tokens = np.array([[11, 12, 13], [21, 22, 23]], "int32")
    logits, cache, context = model.decoding_init(inputs, max_new_tokens=4)
    step_logits = [np.asarray(logits)]
    for step in range(3):
        logits, cache = model.decoding_step(new_tokens[:, step], step, cache, context)
        step_logits.append(np.asarray(logits))
    for row, length in enumerate((3, 5)):
        sequence = np.concatenate([inputs["token_ids"][row, :length], new_tokens[row]])[None]
        full = np.asarray(model({"token_ids": sequence, "padding_mask": np.ones_like(sequence)}))[0]
        for step in range(4):
            np.testing.assert_allclose(step_logits[step][row], full[length - 1 + step], atol=1e-4)


@pytest.fixture(scope="module")
def lm():
    """One model for the generation tests that leave its weights alone: its compiled decoding
    functions are kept with it, so the tests share their traces."""
    return _causal_lm()


def test_greedy_generation_matches_the_reference_and_batches_with_padding(lm):
    model, weights = lm
    prompts = ["hello", "a", "the sea"]
    completions = model.generate(prompts, max_new_tokens=6)  # the XLA-compiled loop
    tokenizer = model.preprocessor.tokenizer
    for prompt, completion in zip(prompts, completions):
        prompt_ids = np.asarray(tokenizer.tokenize(prompt))
        expected = [t for t in greedy_continuation(weights, prompt_ids, 6, end_token_ids=(END,),
                                                   **REFERENCE) if t != END]
        assert completion == np.asarray(tokenizer.detokenize(np.array(expected, "int32"))).item(
            ).decode("utf-8", "replace")
    # Alone as in the batch; the loop without XLA gives the same tokens.
    assert model.generate("a", max_new_tokens=6, jit_compile=False) == completions[1]


def test_decoding_traces_with_unknown_prompt_length(lm):
    """A serving signature has no fixed prompt length: the cache is sized by a traced length."""
    import tensorflow as tf

    from tfmodels import generation

    model, _ = lm
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[{"token_ids": spec, "padding_mask": spec}])
    def decode(inputs):
        return generation.decode(model, inputs, generation.Greedy(), 6)[0]

    inputs = model.preprocessor.generate_preprocess(["hello", "a"])
    np.testing.assert_array_equal(decode(inputs), model.generate(inputs, max_new_tokens=6,
                                                                 jit_compile=False))


def test_generation_stops_at_end_token_and_stop_strings():
    model, _ = _causal_lm()
    fast = {"max_new_tokens": 4, "jit_compile": False}  # tracing only: XLA is tested above
    # Make <|im_end|> the most likely next token everywhere: generation ends at once.
    embeddings = model.backbone.token_embedding.embeddings
    table = embeddings.numpy()
    table[END] = 50.0 * np.asarray(model.backbone(model.preprocessor.generate_preprocess(
        ["x"])))[0, 0] / np.sqrt(16)
    embeddings.assign(table)
    ids = model.generate({"token_ids": np.array([[120]], "int32"),
                          "padding_mask": np.array([[1]], "int32")}, **fast)
    assert ids[0, 0] == END and (ids[0, 1:] == END).all()  # pad (= end) after the end
    assert model.generate("x", **fast) == ""
    model, _ = _causal_lm()
    free = model.generate("he", max_new_tokens=8, jit_compile=False)
    stop = free[-2:]
    assert len(free) > 2 and free.index(stop) < len(free) - 2 or free.index(stop) > 0
    assert model.generate("he", max_new_tokens=8, jit_compile=False,
                          stop_strings=["zzz", stop]) == free[
        : free.index(stop)]


def test_sampling_is_seeded_and_beam_search_runs(lm):
    model, weights = lm
    prompts = ["hello", "a"]
    fast = {"max_new_tokens": 5, "jit_compile": False}
    first = model.generate(prompts, sampler="top_p", p=0.9, seed=7, **fast)
    assert first == model.generate(prompts, sampler="top_p", p=0.9, seed=7, **fast)
    many = {tuple(model.generate(prompts, sampler="top_k", k=50, temperature=3.0, seed=s, **fast))
            for s in range(4)}
    assert len(many) > 1
    # Width-1 beam search is greedy search.
    greedy = model.generate(prompts, **fast)
    assert model.generate(prompts, sampler="beam", width=1, **fast) == greedy
    beams = model.generate(prompts, sampler="beam", width=3, **fast)
    assert len(beams) == 2 and all(isinstance(text, str) for text in beams)


def test_fit_on_raw_strings_and_on_prompt_response_pairs():
    model, _ = _causal_lm()
    # Not XLA: compiling the train step costs more than these few steps (XLA is the default).
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    texts = ["hello there", "the cat sat", "hello hello"]
    before = model.evaluate(texts, verbose=0, return_dict=True)["loss"]
    model.fit(texts, epochs=3, batch_size=3, verbose=0)
    after = model.evaluate(texts, verbose=0, return_dict=True)["loss"]
    assert after < before

    # Pairs: the preprocessor weights only the response and end tokens ...
    prompts, responses = ["say hi:", "sum:"], [" hi", " 3"]
    x, labels, weights = model.preprocessor(prompts, responses)
    # "say hi:" is 7 tokens, " hi" 3: labels 6-8 are the response, 9 the end token.
    np.testing.assert_array_equal(np.asarray(weights)[0], [0] * 6 + [1, 1, 1, 1] + [0] * 2)
    assert np.asarray(labels)[0, 9] == END
    # ... and the loss is the cross-entropy on those tokens alone.
    logits = np.asarray(model(x), "float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    token_loss = -np.take_along_axis(log_probs, np.asarray(labels)[..., None], -1)[..., 0]
    expected = (token_loss * np.asarray(weights)).sum() / np.asarray(weights).size
    loss = model.evaluate(prompts, responses, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(expected, rel=1e-4)
    as_dict = model.evaluate({"prompts": prompts, "responses": responses}, verbose=0,
                             return_dict=True)["loss"]
    assert as_dict == pytest.approx(loss, rel=1e-6)
    model.fit(tf_dataset(prompts, responses), epochs=1, verbose=0)


def tf_dataset(prompts, responses):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((prompts, responses)).batch(2)


def test_chat_template_renders_smollm_default_system_message(lm):
    model, _ = lm
    text = model.apply_chat_template([{"role": "user", "content": "Hi"}])
    assert text == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                    "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                    "<|im_start|>assistant\n")
    own = model.apply_chat_template([{"role": "system", "content": "S"},
                                     {"role": "user", "content": "U"}], add_generation_prompt=False)
    assert own == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
    with pytest.raises(ValueError, match="role"):
        model.apply_chat_template([{"content": "no role"}])


def test_causal_lm_harness_and_keras_file_with_tokenizer(tmp_path):
    from tfmodels.models.llama import CausalLM

    config = DecoderConfig(**{**TINY, "vocab_size": VOCAB})
    run_model_test(CausalLM, lambda: {"backbone": DecoderBackbone(config)}, _inputs(vocab=VOCAB),
                   expected_output_shape=(2, 6, VOCAB), output_dtype="float32")
    model, _ = _causal_lm()
    path = str(tmp_path / "lm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.generate(["hello", "a"], max_new_tokens=4, jit_compile=False) == model.generate(
        ["hello", "a"], max_new_tokens=4, jit_compile=False)


def _changed(before, model):
    return {v.path for v in model.weights
            if not np.array_equal(before[v.path], keras.ops.convert_to_numpy(v))}


@pytest.mark.parametrize("quantize", [False, True])
def test_lora_trains_only_adapters_saves_them_alone_and_merges(quantize, tmp_path):
    model, _ = _causal_lm()
    if quantize:
        model.quantize("int8")
    model.enable_lora(2, feed_forward=True)
    adapters = model.backbone.lora_weights()
    assert len(adapters) == 2 * 2 * (2 + 3)  # 2 blocks x (query, value, gate, up, down) x (A, B)
    assert {v.path for v in model.trainable_variables} == {v.path for v in adapters.values()}
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    model.fit(["hello there", "the cat sat"], epochs=2, batch_size=2, verbose=0)
    assert _changed(before, model) == {v.path for v in adapters.values()}

    x = model.preprocessor.generate_preprocess(["hello there"])
    adapted = np.asarray(model(x))
    path = str(tmp_path / "adapters.npz")
    model.save_lora_weights(path)
    fresh, _ = _causal_lm()
    if quantize:
        fresh.quantize("int8")
    fresh.enable_lora(2, feed_forward=True)
    fresh.load_lora_weights(path)
    np.testing.assert_allclose(fresh(x), adapted, atol=1e-5)

    model.merge_lora()
    assert not model.backbone.lora_weights()
    merged = np.asarray(model(x))
    if quantize:  # requantized: the rounding moves the logits a little
        assert np.abs(merged - adapted).max() < 0.05 * np.abs(adapted).max()
    else:
        np.testing.assert_allclose(merged, adapted, atol=1e-4)
    mismatched, _ = _causal_lm()
    mismatched.enable_lora(4, feed_forward=True)
    with pytest.raises(ValueError, match="shape"):
        mismatched.load_lora_weights(path)


def test_int8_lora_model_reloads_from_a_keras_file_with_its_adapters(tmp_path):
    model, _ = _causal_lm()
    model.quantize("int8")
    model.enable_lora(2)
    rng = np.random.default_rng(0)
    for variable in model.backbone.lora_weights().values():
        variable.assign(0.1 * rng.normal(size=variable.shape).astype("float32"))
    path = str(tmp_path / "qlora.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = model.preprocessor.generate_preprocess(["hello"])
    np.testing.assert_array_equal(loaded(x), model(x))
    assert {v.name for v in loaded.trainable_variables} == {
        v.name for v in model.backbone.lora_weights().values()}


def test_causal_lm_builds_after_a_functional_bert_task():
    """Building a functional BertTask makes Keras rewrite that class's bases (Model ->
    Functional); the subclassed CausalLM shares only the RawInputTask mixin, so it still builds."""
    import tfmodels

    encoder = tfmodels.BertEncoder(tfmodels.BertConfig(
        vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16))
    tfmodels.BertClassifier(encoder, num_classes=2)
    model, _ = _causal_lm()
    assert model(_inputs(vocab=VOCAB)).shape == (2, 6, VOCAB)
