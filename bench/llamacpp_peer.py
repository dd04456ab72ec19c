"""llama.cpp peer of bench/generate_lm.py: greedy decoding of a GGUF file, single stream, on CPU.

Run inside `.venv-llamacpp` (made by `tools/llamacpp_env.sh`: llama-cpp-python built from source;
kept apart from .venv so the benchmark's peer never changes the tested environment):

    .venv-llamacpp/bin/python bench/llamacpp_peer.py --gguf FILE --prompts PROMPTS.json \\
        --new-tokens 64 --out RESULT.json [--threads 2] [--repeats 1] [--n-batch 64]

`PROMPTS.json` is a list of token-id lists (the caller tokenizes, so both sides decode the same
ids). For each prompt and each of `--repeats` repeats: the KV cache is cleared, the prompt is
evaluated (`--n-batch` tokens per call; 1 evaluates one token at a time, the work-around for the
AVX-512/AMX crash of native builds), then `--new-tokens` tokens are chosen greedily (argmax of the
last logits, end tokens not special: always exactly `--new-tokens`) and fed back one at a time.
Time covers prompt + generation, like `generate` on our side.

Output JSON: {"tokens_per_s": [per call], "generated": [[ids] per prompt (first repeat)],
"load_s", "config": {"threads", "n_batch", "new_tokens", "llama_cpp_python", "system_info"}}.
Standard library, numpy and llama_cpp only (no tfmodels in that environment).
"""

import argparse
import json
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gguf", required=True)
    p.add_argument("--prompts", required=True, help="JSON list of token-id lists")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--n-batch", type=int, default=64, help="prompt tokens per eval call")
    return p.parse_args(argv)


def greedy(llm, prompt, new_tokens, n_batch):
    """Prompt + `new_tokens` greedy tokens; returns (generated ids, seconds)."""
    start = time.perf_counter()
    llm.reset()
    for i in range(0, len(prompt), n_batch):
        llm.eval(prompt[i:i + n_batch])
    generated = []
    for _ in range(new_tokens):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        generated.append(token)
        if len(generated) < new_tokens:  # the last token is never fed back (as on our side)
            llm.eval([token])
    return generated, time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    import llama_cpp

    with open(args.prompts) as f:
        prompts = json.load(f)
    t = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=args.gguf, n_ctx=max(len(p) for p in prompts) + args.new_tokens + 8,
        n_threads=args.threads, n_threads_batch=args.threads, n_batch=args.n_batch,
        n_ubatch=args.n_batch, logits_all=True, verbose=False)
    load_s = time.perf_counter() - t
    rates, generated = [], []
    for repeat in range(args.repeats):
        for prompt in prompts:
            tokens, seconds = greedy(llm, prompt, args.new_tokens, args.n_batch)
            rates.append(args.new_tokens / seconds)
            if repeat == 0:
                generated.append(tokens)
    result = {"tokens_per_s": rates, "generated": generated, "load_s": load_s,
              "config": {"threads": args.threads, "n_batch": args.n_batch,
                         "new_tokens": args.new_tokens,
                         "llama_cpp_python": llama_cpp.__version__,
                         "system_info": llama_cpp.llama_print_system_info().decode()}}
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
