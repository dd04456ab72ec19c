"""LoRA-fine-tune SmolLM2-135M-Instruct to summarize ACL papers, scored with ROUGE against the
zero-shot model and a lead-sentence baseline, all in one run.

    python -m tfmodels.examples.summarize --output docs/results/aclsum_lora_smollm2.json
    python -m tfmodels.examples.summarize --smoke          # tiny random model, 2 papers, seconds

Data: ACLSum (PyPI ``aclsum==0.1.2``, ``tfmodels.datasets.aclsum``): each paper's abstract
(truncated to ``--max-abstract-tokens`` tokens) -> its one-sentence summary of one aspect
(``--aspect``, default ``challenge``: the problem the paper addresses). The prompt is the model's
chat template around an instruction and the abstract; decoding is greedy.

Three systems on the same test papers: the instruct model zero-shot, the same model after LoRA
(rank ``--lora-rank`` on the attention query/value projections; the rest frozen) on the train
papers, and the lead baseline (the abstract's first sentence). ROUGE-1/2/L F1 (PyPI
``rouge-score``, stemmed, x100) against the reference summaries. The last printed line is one
JSON object (also written to ``--output``).
"""

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tfmodels.utils import cli, logs  # noqa: E402  (standard library only)

INSTRUCTION = {
    "challenge": "In one sentence, what problem or challenge does this paper address?",
    "approach": "In one sentence, what approach does this paper propose?",
    "outcome": "In one sentence, what is the main outcome of this paper?",
}


def parse_args(argv=None):
    from tfmodels.datasets.aclsum import ASPECTS

    p = cli.parser(__doc__.split("\n")[0])
    p.add_argument("--aspect", choices=ASPECTS, default="challenge", help="which summary to learn")
    p.add_argument("--train-papers", type=int, default=100, help="train papers used (at most 100)")
    p.add_argument("--test-papers", type=int, default=100, help="test papers scored (at most 100)")
    p.add_argument("--epochs", type=int, default=2, help="passes over the train papers")
    p.add_argument("--batch-size", type=int, default=4, help="training batch size")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--lora-rank", type=int, default=8, help="LoRA rank")
    p.add_argument("--max-abstract-tokens", type=int, default=256, help="abstracts are cut here")
    p.add_argument("--max-new-tokens", type=int, default=64, help="summary tokens at most")
    p.add_argument("--generate-batch-size", type=int, default=8, help="prompts per generate call")
    p.add_argument("--output", default=None, help="also write the JSON result here")
    p.add_argument("--smoke", action="store_true", help="a tiny random model and 2 papers")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(p, p.parse_args(argv), [
        "train_papers", "test_papers", "epochs", "batch_size", "learning_rate", "lora_rank",
        "max_abstract_tokens", "max_new_tokens", "generate_batch_size"])
    if argv is None:
        logs.quiet(args.verbose)
    return args


def truncate_tokens(tokenizer, text, max_tokens):
    """``text`` cut to its first ``max_tokens`` tokens (unchanged when shorter)."""
    ids = tokenizer.tokenize(text).numpy()
    if len(ids) <= max_tokens:
        return text
    return tokenizer.detokenize([ids[:max_tokens]]).numpy()[0].decode("utf-8", errors="ignore")


def summary_request(abstract, aspect):
    """The instruction for ``aspect``'s summary, then ``abstract`` (a user message's content)."""
    return f"{INSTRUCTION[aspect]}\n\nAbstract: {abstract}"


def summary_prompt(model, abstract, aspect):
    """The chat-formatted request for ``aspect``'s summary of ``abstract``."""
    content = summary_request(abstract, aspect)
    if model.preprocessor.chat_template is None:  # the tiny smoke model has none
        return f"<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"
    return model.apply_chat_template([{"role": "user", "content": content}])


def rouge(predictions, references):
    """Mean ROUGE-1/2/L F1 x100 (``tfmodels.metrics.rouge_scores``: rouge-score, Porter stemming)."""
    from tfmodels.metrics import rouge_scores

    return {name: round(100 * value, 2) for name, value in rouge_scores(predictions, references).items()}


def generate_all(model, prompts, max_new_tokens, batch_size, jit_compile=True):
    """Greedy completions of ``prompts``, ``batch_size`` at a time, stripped."""
    completions = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        completions += [c.strip() for c in model.generate(batch, max_new_tokens,
                                                                jit_compile=jit_compile)]
        print(f"generated {len(completions)}/{len(prompts)}", file=sys.stderr, flush=True)
    return completions


def load_model(smoke, sequence_length):
    if smoke:
        from tfmodels.examples.generate import tiny_causal_lm

        return tiny_causal_lm(sequence_length=sequence_length)
    from tfmodels.checkpoints import load_gguf
    from tfmodels.datasets import smollm2_path

    return load_gguf(smollm2_path(), sequence_length=sequence_length)


def run(args):
    import keras

    from tfmodels.datasets.aclsum import lead_summary, load_aclsum

    train, test = load_aclsum("train"), load_aclsum("test")
    if args.smoke:
        args.train_papers, args.test_papers, args.epochs = 2, 2, 1
        args.max_abstract_tokens, args.max_new_tokens = 24, 4
    train, test = train[:args.train_papers], test[:args.test_papers]
    # Prompt (template + instruction + abstract) and the summary with its end token fit.
    sequence_length = args.max_abstract_tokens + 128
    keras.utils.set_random_seed(0)
    t0 = time.time()
    model = load_model(args.smoke, sequence_length)
    load_seconds = time.time() - t0
    tokenizer = model.preprocessor.tokenizer

    def prompts_of(papers):
        return [summary_prompt(model, truncate_tokens(tokenizer, p.text(), args.max_abstract_tokens),
                               args.aspect) for p in papers]

    train_prompts, test_prompts = prompts_of(train), prompts_of(test)
    references = [p.summaries[args.aspect] for p in test]
    train_targets = [p.summaries[args.aspect] for p in train]

    t = time.time()
    # XLA pays off for SmolLM2; the smoke model is faster without compiling.
    jit_compile = not args.smoke
    zero_shot = generate_all(model, test_prompts, args.max_new_tokens, args.generate_batch_size,
                             jit_compile)
    zero_shot_seconds = time.time() - t

    model.enable_lora(args.lora_rank)
    model.compile(optimizer=keras.optimizers.AdamW(args.learning_rate, weight_decay=0.0),
                  jit_compile=jit_compile)
    t = time.time()
    history = model.fit(train_prompts, train_targets, batch_size=args.batch_size,
                        epochs=args.epochs, shuffle=True, verbose=0 if args.smoke else 2)
    train_seconds = time.time() - t
    steps = args.epochs * -(-len(train) // args.batch_size)

    t = time.time()
    tuned = generate_all(model, test_prompts, args.max_new_tokens, args.generate_batch_size,
                         jit_compile)
    tuned_seconds = time.time() - t
    lead = [lead_summary(p) for p in test]

    systems = {"lead_sentence": lead, "zero_shot": zero_shot, "lora": tuned}
    result = {
        "model": "tiny random (smoke)" if args.smoke else "SmolLM2-135M-Instruct (GGUF Q4_1 "
                 "dequantized to float32)",
        "dataset": "ACLSum (PyPI aclsum==0.1.2)",
        "aspect": args.aspect,
        "input": f"abstract, first {args.max_abstract_tokens} tokens, chat template + instruction",
        "instruction": INSTRUCTION[args.aspect],
        "train_papers": len(train),
        "test_papers": len(test),
        "rouge": {name: rouge(outputs, references) for name, outputs in systems.items()},
        "rouge_note": "F1 x100, rouge-score with Porter stemming, mean over the test papers",
        "decoding": f"greedy, max_new_tokens={args.max_new_tokens}",
        "lora": {"rank": args.lora_rank, "layers": "attention query and value projections",
                 "epochs": args.epochs, "batch_size": args.batch_size, "steps": steps,
                 "learning_rate": args.learning_rate, "optimizer": "AdamW",
                 "trainable_weights": int(sum(v.numpy().size
                                              for v in model.trainable_weights)),
                 "loss_first_epoch": round(float(history.history["loss"][0]), 4),
                 "loss_last_epoch": round(float(history.history["loss"][-1]), 4)},
        "seconds": {"load": round(load_seconds, 1), "zero_shot_generate": round(zero_shot_seconds, 1),
                    "train": round(train_seconds, 1), "lora_generate": round(tuned_seconds, 1)},
        "cpu_cores": os.cpu_count(),
        "load_average_at_end": round(os.getloadavg()[0], 1),
        "examples": [{"id": p.id, "reference": r, "lead_sentence": le, "zero_shot": z, "lora": u}
                     for p, r, le, z, u in list(zip(test, references, lead, zero_shot, tuned))[:3]],
    }
    return result


def main(argv=None):
    args = parse_args(argv)
    logs.import_tensorflow_quietly()
    result = run(args)
    flags = sys.argv[1:] if argv is None else list(argv)
    result["command"] = " ".join(["python -m tfmodels.examples.summarize"] + flags)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    for name, scores in result["rouge"].items():
        print(f"{name:14s} " + "  ".join(f"{k} {v:5.2f}" for k, v in scores.items()), flush=True)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
