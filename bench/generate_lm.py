"""Benchmark: tokens/s of `CausalLM.generate` (greedy, XLA loop) against keras-hub and llama.cpp.

The model is SmolLM2-135M-Instruct from the packaged GGUF file (`tfmodels.datasets.smollm2_path()`),
dequantized to float32 by `tfmodels.checkpoints`. Sides, all on the same prompt token ids (the
first `--prompt-tokens` tokens of ACLSum test abstracts, so every row is exactly that long) and
`--new-tokens` new tokens per row, greedy, end tokens ignored (every side generates them all):

- `fp32`: our `CausalLM.generate` on token ids; `int8`: the same model after `quantize("int8")`;
- `keras_hub`: keras-hub's `LlamaCausalLM.generate` (XLA on the TF backend) on a `LlamaBackbone`
  of the same config holding the same float32 weights (its logits are checked against ours first);
- `llamacpp`: llama.cpp (`llama-cpp-python`, `bench/llamacpp_peer.py` in `.venv-llamacpp` made by
  `tools/llamacpp_env.sh`) on the GGUF file itself (Q4_1 / Q8_0 weights), single stream.

Batch 1 and batch 8 for ours and keras-hub; llama.cpp decodes one stream (batch 1), so batch 8 is
compared as aggregate throughput. Timed rounds alternate the sides (ours, keras-hub, then the
llama.cpp process) `--rounds` times; medians are quoted. tokens/s = batch * new tokens / seconds of
one `generate` call (prompt processing included). Also: p50 latency of the exported SavedModel's
`generate` signature (`tfmodels.export.export_causal_lm`, loaded in this process, no server) for a
32-token completion.

The last line is one JSON object: `tokens_per_s_b1`, `tokens_per_s_b8` (ours, fp32 and int8),
`vs_keras_hub_b1`, `vs_keras_hub_b8`, `vs_llamacpp_b1`, `vs_llamacpp_b8_aggregate` (our tokens/s
over the peer's; for llama.cpp at batch 8: over its single-stream tokens/s), our best variant's
ratios in `headline`, and `export_p50_ms_32_tokens`. A peer that is not available has null values
and a reason.

    .venv/bin/python bench/generate_lm.py [--rounds 3] [--no-llamacpp] [--no-keras-hub]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
LLAMACPP_PYTHON = os.path.join(REPO, ".venv-llamacpp", "bin", "python")
BATCHES = (1, 8)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (medians)")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="llama.cpp threads")
    p.add_argument("--no-keras-hub", action="store_true")
    p.add_argument("--no-llamacpp", action="store_true")
    p.add_argument("--no-int8", action="store_true")
    p.add_argument("--export-calls", type=int, default=7, help="timed export calls (0: skip)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    return p.parse_args(argv)


def prompt_ids(tokenizer, rows, length):
    """`rows` prompts of exactly `length` token ids: the starts of ACLSum test abstracts."""
    from tfmodels.datasets.aclsum import load_aclsum

    prompts = []
    for paper in load_aclsum("test"):
        ids = tokenizer.tokenize(paper.text()).numpy()
        if len(ids) >= length:
            prompts.append(ids[:length].astype("int32"))
        if len(prompts) == rows:
            return np.stack(prompts)
    raise ValueError(f"fewer than {rows} abstracts have {length} tokens")


def keras_hub_causal_lm(config, weights):
    """keras-hub's Llama on the same config and Hugging Face-named float32 weights (the layouts
    keras-hub's own Hugging Face converter uses)."""
    import keras_hub

    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers,
        num_query_heads=config.num_attention_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size, num_key_value_heads=config.num_key_value_heads,
        rope_max_wavelength=config.rope_theta,
        rope_position_scaling_factor=config.rope_scaling_factor,
        layer_norm_epsilon=config.rms_norm_eps, tie_word_embeddings=config.tie_word_embeddings,
        dtype="float32")

    def put(variable, name, transform=None):
        value = weights[name]
        if transform is not None:
            value = np.reshape(np.transpose(value), tuple(variable.shape))
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{name}: {value.shape} does not fit keras-hub's {variable.shape}")
        variable.assign(value)

    put(backbone.get_layer("token_embedding").embeddings, "model.embed_tokens.weight")
    if not config.tie_word_embeddings:
        put(backbone.get_layer("token_embedding").reverse_embeddings, "lm_head.weight", True)
    for i in range(config.num_hidden_layers):
        layer, p = backbone.get_layer(f"transformer_layer_{i}"), f"model.layers.{i}."
        attention = layer._self_attention_layer
        put(layer._self_attention_layernorm.scale, p + "input_layernorm.weight")
        put(layer._feedforward_layernorm.scale, p + "post_attention_layernorm.weight")
        for dense, name in ((attention._query_dense, "q_proj"), (attention._key_dense, "k_proj"),
                            (attention._value_dense, "v_proj"), (attention._output_dense, "o_proj")):
            put(dense.kernel, p + f"self_attn.{name}.weight", True)
        for dense, name in ((layer._feedforward_gate_dense, "gate_proj"),
                            (layer._feedforward_intermediate_dense, "up_proj"),
                            (layer._feedforward_output_dense, "down_proj")):
            put(dense.kernel, p + f"mlp.{name}.weight", True)
    put(backbone.get_layer("sequence_output_layernorm").scale, "model.norm.weight")
    causal_lm = keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)
    causal_lm.compile(sampler="greedy")
    return causal_lm


def timed(call):
    start = time.perf_counter()
    out = call()
    return out, time.perf_counter() - start


def our_call(model, ids, new_tokens):
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    return lambda: model.generate(inputs, new_tokens)


def keras_hub_call(causal_lm, ids, new_tokens):
    """keras-hub generates into the padded tail of the inputs (no preprocessor)."""
    batch, length = ids.shape
    token_ids = np.concatenate([ids, np.zeros((batch, new_tokens), "int32")], axis=1)
    mask = np.concatenate([np.ones_like(ids), np.zeros((batch, new_tokens), "int32")], axis=1)
    inputs = {"token_ids": token_ids, "padding_mask": mask}
    return lambda: np.asarray(causal_lm.generate(inputs, stop_token_ids=None)["token_ids"])[
        :, length:]


def llamacpp_round(args, prompts_file, out_file):
    command = [LLAMACPP_PYTHON, os.path.join(REPO, "bench", "llamacpp_peer.py"), "--gguf",
               args.gguf, "--prompts", prompts_file, "--new-tokens", str(args.new_tokens),
               "--out", out_file, "--threads", str(args.threads)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"llama.cpp peer failed ({run.returncode}): {run.stderr[-2000:]}")
    with open(out_file) as f:
        return json.load(f)


def export_latency(model, calls):
    """p50 ms of the exported `generate` signature for a 32-token completion (one prompt)."""
    import tensorflow as tf

    from tfmodels.export import signatures
    from tfmodels.export.causal_lm import export_causal_lm

    prompt = model.apply_chat_template(
        [{"role": "user", "content": "Write a long story about a lighthouse keeper."}])
    with tempfile.TemporaryDirectory() as directory:
        export_dir = os.path.join(directory, "smollm2", "1")
        export_causal_lm(model, export_dir, max_new_tokens=32, warmup_prompts=[prompt])
        generate = tf.saved_model.load(export_dir).signatures[signatures.GENERATE_SIGNATURE]
        inputs = dict(prompt=tf.constant([prompt]), max_new_tokens=tf.constant([32]))
        generate(**inputs)  # compile
        seconds, counts = [], []
        for _ in range(calls):
            out, s = timed(lambda: generate(**inputs))
            seconds.append(s)
            counts.append(int(out[signatures.NUM_GENERATED_TOKENS_OUTPUT].numpy()[0]))
    return {"p50_ms": round(1000 * statistics.median(seconds), 1),
            "generated_tokens": counts, "calls": calls, "prompt": prompt,
            "note": "SavedModel signature called in this process (no server, no network)"}


def agreement(a, b):
    """Fraction of rows whose generated ids are identical, and of identical positions."""
    a, b = np.asarray(a), np.asarray(b)
    return {"rows_equal": float(np.mean(np.all(a == b, axis=1))),
            "tokens_equal": round(float(np.mean(a == b)), 3)}


def main(argv=None):
    args = parse_args(argv)
    from tfmodels.checkpoints import read_gguf
    from tfmodels.checkpoints.gguf import load_gguf
    from tfmodels.datasets import smollm2_path

    args.gguf = smollm2_path()
    reasons = {}
    contents = read_gguf(args.gguf)
    models = {"fp32": load_gguf(args.gguf, sequence_length=256)}
    if not args.no_int8:
        models["int8"] = load_gguf(args.gguf, sequence_length=256)
        models["int8"].quantize("int8")
    end_token_ids = models["fp32"].end_token_ids
    for model in models.values():
        # Every side generates exactly --new-tokens tokens: no end token ends a row.
        model.preprocessor.end_token_ids = ()
    prompts = prompt_ids(models["fp32"].preprocessor.tokenizer, max(BATCHES), args.prompt_tokens)
    inputs = {b: prompts[:b] for b in BATCHES}

    calls = {name: {b: our_call(m, inputs[b], args.new_tokens) for b in BATCHES}
             for name, m in models.items()}
    checks = {}
    if not args.no_keras_hub:
        hub = keras_hub_causal_lm(contents.config, contents.weights)
        x = {"token_ids": prompts[:2], "padding_mask": np.ones_like(prompts[:2])}
        diff = float(np.max(np.abs(np.asarray(hub(x)) - np.asarray(models["fp32"](x)))))
        checks["keras_hub_max_abs_logit_diff"] = diff
        if diff > 1e-2:
            raise RuntimeError(f"keras-hub's logits differ from ours by {diff}: not the same model")
        calls["keras_hub"] = {b: keras_hub_call(hub, inputs[b], args.new_tokens) for b in BATCHES}
    else:
        reasons["keras_hub"] = "--no-keras-hub"
    del contents

    use_llamacpp = not args.no_llamacpp
    if args.no_llamacpp:
        reasons["llamacpp"] = "--no-llamacpp"
    elif not os.path.exists(LLAMACPP_PYTHON):
        use_llamacpp = False
        reasons["llamacpp"] = (f"{LLAMACPP_PYTHON} missing: llama-cpp-python not built "
                               "(bash tools/llamacpp_env.sh, about 20+ minutes)")

    # Warm-up (XLA compilation) and the greedy tokens every side produced.
    generated = {name: {b: np.asarray(c[b]()) for b in BATCHES} for name, c in calls.items()}
    for name in generated:
        if name != "fp32":
            checks[f"{name}_vs_fp32_greedy_b8"] = agreement(generated[name][8], generated["fp32"][8])

    work = tempfile.mkdtemp(prefix="generate_lm_")
    prompts_file = os.path.join(work, "prompts.json")
    with open(prompts_file, "w") as f:
        json.dump([prompts[0].tolist()], f)
    samples = {name: {b: [] for b in BATCHES} for name in calls}
    peer_rates, peer_round = [], None
    for r in range(args.rounds):
        for name, c in calls.items():
            for b in BATCHES:
                _, seconds = timed(c[b])
                samples[name][b].append(b * args.new_tokens / seconds)
        if use_llamacpp:
            try:
                peer_round = llamacpp_round(args, prompts_file, os.path.join(work, f"r{r}.json"))
                peer_rates += peer_round["tokens_per_s"]
            except RuntimeError as error:
                use_llamacpp, reasons["llamacpp"] = False, str(error)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} b{b} {v[b][-1]:.1f}" for n, v in samples.items() for b in BATCHES)
            + (f", llamacpp b1 {peer_rates[-1]:.1f}" if use_llamacpp else "") + " tokens/s",
            flush=True)

    def med(values):
        return round(statistics.median(values), 2) if values else None

    rates = {name: {f"b{b}": med(v[b]) for b in BATCHES} for name, v in samples.items()}
    llamacpp_b1 = med(peer_rates)
    if peer_round is not None:
        checks["llamacpp_vs_fp32_greedy_b1"] = agreement(peer_round["generated"],
                                                         generated["fp32"][1])

    def ratio(ours, peer):
        return None if ours is None or peer is None else round(ours / peer, 3)

    hub = rates.get("keras_hub", {})
    ours = [n for n in models]
    result = {
        "tokens_per_s_b1": {n: rates[n]["b1"] for n in ours},
        "tokens_per_s_b8": {n: rates[n]["b8"] for n in ours},
        "keras_hub_tokens_per_s": hub or None,
        "llamacpp_tokens_per_s_b1": llamacpp_b1,
        "vs_keras_hub_b1": {n: ratio(rates[n]["b1"], hub.get("b1")) for n in ours},
        "vs_keras_hub_b8": {n: ratio(rates[n]["b8"], hub.get("b8")) for n in ours},
        "vs_llamacpp_b1": {n: ratio(rates[n]["b1"], llamacpp_b1) for n in ours},
        "vs_llamacpp_b8_aggregate": {n: ratio(rates[n]["b8"], llamacpp_b1) for n in ours},
        "unavailable": reasons or None,
        "checks": checks,
        "setup": {"prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
                  "decoding": "greedy, end tokens ignored", "rounds": args.rounds,
                  "statistic": "median over rounds of batch * new_tokens / seconds per call",
                  "cpu_cores": os.cpu_count(), "load_average_at_end": round(os.getloadavg()[0], 1),
                  "llamacpp": None if peer_round is None else peer_round["config"],
                  "model": "SmolLM2-135M-Instruct (GGUF Q4_1; ours and keras-hub dequantized to "
                           "float32, llama.cpp on the quantized file)"},
    }
    if args.export_calls:
        models["fp32"].preprocessor.end_token_ids = end_token_ids  # served: ends at <|im_end|>
        result["export_generate_32_tokens"] = export_latency(models["fp32"], args.export_calls)
        result["export_p50_ms_32_tokens"] = result["export_generate_32_tokens"]["p50_ms"]
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
