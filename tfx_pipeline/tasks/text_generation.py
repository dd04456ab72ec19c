"""The text-generation task of the pipeline: LoRA-fine-tune a pretrained decoder on prompt -> target text,
gate on ROUGE, push a text-in/text-out SavedModel.

Input: a prompt column (`--prompt-feature`, default `prompt`) and a target column (`--target-feature`,
`target`). The decoder is `--encoder`: `tiny` (random weights, byte-level tokenizer: tests), `smollm2` (the
packaged SmolLM2-135M-Instruct GGUF, `tfmodels.datasets.smollm2_path`) or a llama.cpp `.gguf` file;
`--chat-template` wraps every prompt in the model's chat template as a user message. ExampleValidator's row
check (`text_generation_check`) stops rows with an empty prompt or target, text that is not UTF-8, or a prompt +
target longer than the training length (`--max-seq-length`, in the model's tokens). Transform tokenizes with
the model's byte-level BPE (`CausalLMPreprocessor`, core TF ops) into `token_ids`, `padding_mask`, next-token
`labels` and a `loss_mask` over the target tokens (and the end token) only. Trainer adds LoRA adapters of rank
`--lora-rank` to the attention projections (0: every weight trains), fine-tunes for `--train-steps`, merges the
adapters and exports with `tfmodels.export.export_causal_lm`: `generate` / `sample` (prompts in, completions
out) and, for the Evaluator, `generate_examples` (tf.Examples in, greedy completions of at most
`--max-new-tokens` tokens). The Evaluator scores ROUGE-1/2/L F1 (`tfx_pipeline.metrics.RougeScores`,
rouge-score with stemming, in [0, 1]) against the target column and blesses on `rouge_l >= --min-rouge-l` and
not below the latest blessed model.
"""

import dataclasses
import os
from typing import Dict, List, Sequence

from tfx_pipeline import row_checks
from tfx_pipeline.flags import flag, positive_int, threshold
from tfx_pipeline.tasks.base import GATE, Demo, Options, Task, predict_texts, served_lines

NAME = "text_generation"
TINY, SMOLLM2 = "tiny", "smollm2"
# The pretrained decoder by default, as the BERT tasks' pretrained encoder (the random tiny one is for tests).
DEFAULT_DECODER = SMOLLM2
# Transform's outputs: the decoder's inputs, its next-token labels and the loss mask (1 on target tokens).
TOKEN_IDS, PADDING_MASK, LABELS, LOSS_MASK = "token_ids", "padding_mask", "labels", "loss_mask"
# A user message wrapped in the chat template is split here into the text before and after the prompt.
_PROMPT_MARK = "\x00prompt\x00"


@dataclasses.dataclass(frozen=True)
class TextGenerationOptions(Options):
    """`prompt_feature` -> `target_feature` text; `encoder`: "tiny", "smollm2" or a `.gguf` file; `chat_template`:
    prompts wrapped as a user message (`prompt_prefix` + prompt + `prompt_suffix`, filled in by `prepare`);
    `lora_rank` (0: full fine-tuning); `max_new_tokens` the Evaluator and the export generate at most;
    `max_seq_length`: the training length (the pipeline's, set by `prepare`; 0 until then)."""

    prompt_feature: str = "prompt"
    target_feature: str = "target"
    encoder: str = DEFAULT_DECODER
    chat_template: bool = False
    prompt_prefix: str = ""
    prompt_suffix: str = ""
    lora_rank: int = 8
    max_new_tokens: int = 32
    max_seq_length: int = 0
    min_rouge_l: float = dataclasses.field(default=0.0, metadata=GATE)

    def wrap(self, prompt: str) -> str:
        """`prompt` as the model sees it in training and serving (inside the chat template when it is on)."""
        return self.prompt_prefix + prompt + self.prompt_suffix

    def problems(self) -> List[str]:
        problems = [] if is_decoder(self.encoder) else [
            f"encoder must be {TINY}, {SMOLLM2} or a .gguf file, got {self.encoder!r}"]
        if self.lora_rank < 0:
            problems.append(f"lora_rank must be >= 0, got {self.lora_rank}")
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        return problems

    def summary(self) -> str:
        return f"decoder {self.encoder}, LoRA rank {self.lora_rank}" if self.lora_rank else \
            f"decoder {self.encoder}, full fine-tuning"


def is_decoder(text: str) -> bool:
    return text in (TINY, SMOLLM2) or (text.endswith(".gguf") and os.path.isfile(text))


PROMPT_FEATURE = flag("--prompt-feature", default="prompt", help="the prompt column")
TARGET_FEATURE = flag("--target-feature", default="target", help="the target-text column")
# The other tasks' --encoder flag too (the registry joins the declarations' help texts).
ENCODER = flag("--encoder", help=f"the decoder: {TINY} (random, fast), {SMOLLM2} (the packaged SmolLM2-135M-Instruct) or "
                                 f"a llama.cpp .gguf file (default: {DEFAULT_DECODER})")
CHAT_TEMPLATE = flag("--chat-template", action="store_true",
                     help="wrap each prompt in the model's chat template as a user message")
LORA_RANK = flag("--lora-rank", type=int, default=8,
                 help="rank of the LoRA adapters on the attention projections (0: fine-tune every weight)")
MAX_NEW_TOKENS = flag("--max-new-tokens", type=positive_int, default=32,
                      help="tokens generated at most per prompt (Evaluator and export)")
MIN_ROUGE_L = flag("--min-rouge-l", type=threshold(1.0), default=0.0,
                   help="value threshold for the blessing (held-out ROUGE-L F1, 0-1)")


def check_args(parser, args) -> None:
    if not is_decoder(args.encoder or DEFAULT_DECODER):
        parser.error(f"argument --encoder: text_generation fine-tunes a decoder: {TINY}, {SMOLLM2} or an existing "
                     f".gguf file, got {args.encoder!r}")
    if args.lora_rank < 0:
        parser.error(f"argument --lora-rank: must be >= 0, got {args.lora_rank}")


def options_from_args(args, data_root: str) -> TextGenerationOptions:
    encoder = args.encoder or DEFAULT_DECODER
    encoder = encoder if encoder in (TINY, SMOLLM2) else os.path.abspath(encoder)
    return TextGenerationOptions(
        prompt_feature=args.prompt_feature, target_feature=args.target_feature, encoder=encoder,
        chat_template=args.chat_template, lora_rank=args.lora_rank, max_new_tokens=args.max_new_tokens,
        max_seq_length=args.max_seq_length, min_rouge_l=args.min_rouge_l)


def prepare(config) -> TextGenerationOptions:
    """The options with the pipeline's training length and the chat template's text around a prompt."""
    options = dataclasses.replace(config.options, max_seq_length=config.max_seq_length)
    if options.chat_template:
        prefix, suffix = chat_template_parts(preprocessor(options.encoder, config.max_seq_length))
        options = dataclasses.replace(options, prompt_prefix=prefix, prompt_suffix=suffix)
    return options


def chat_template_parts(preprocessor):
    """(text before, text after) a user message's content in the model's chat template, generation prompt
    included; the tiny model, which has no template, gets SmolLM2's ChatML markers."""
    if preprocessor.chat_template is None:
        return "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"
    prefix, suffix = preprocessor.apply_chat_template([{"role": "user", "content": _PROMPT_MARK}]).split(
        _PROMPT_MARK)
    return prefix, suffix


# ---- the model ---------------------------------------------------------------------------------------------------
def _gguf_path(encoder: str) -> str:
    from tfmodels.datasets import smollm2_path

    return smollm2_path() if encoder == SMOLLM2 else encoder


def preprocessor(encoder: str, sequence_length: int):
    """The decoder's `CausalLMPreprocessor` (its tokenizer), without its weights."""
    if encoder == TINY:
        from tfmodels.examples.generate import tiny_preprocessor

        return tiny_preprocessor(sequence_length)
    from tfmodels.checkpoints import load_gguf_preprocessor

    return load_gguf_preprocessor(_gguf_path(encoder), sequence_length)


def decoder(options: TextGenerationOptions, sequence_length: int, seed: int = 0):
    """The `CausalLM` to fine-tune: the tiny random decoder (a context that fits a training row plus the
    generated tokens), or the GGUF file's."""
    if options.encoder == TINY:
        from tfmodels.examples.generate import tiny_causal_lm

        return tiny_causal_lm(seed, sequence_length, max_position_embeddings=sequence_length + options.max_new_tokens)
    from tfmodels.checkpoints import load_gguf

    return load_gguf(_gguf_path(options.encoder), sequence_length=sequence_length)


# ---- data, schema, row check -------------------------------------------------------------------------------------
def prepare_data(args, directory: str) -> str:
    """ACLSum train papers: an instruction and the abstract (cut so that each row fits the training length in
    the chosen model's tokens, with its template) -> the one-sentence challenge summary."""
    options = options_from_args(args, directory)
    processor = preprocessor(options.encoder, args.max_seq_length)
    prefix, suffix = chat_template_parts(processor) if options.chat_template else ("", "")
    return prepare_aclsum_csv(directory, processor.tokenizer, args.max_seq_length, args.rows,
                              prompt_feature=args.prompt_feature, target_feature=args.target_feature,
                              template_tokens=_token_count(processor.tokenizer, prefix + suffix))


def _token_count(tokenizer, text: str) -> int:
    return int(tokenizer.tokenize([text]).row_lengths()[0]) if text else 0


def aclsum_rows(tokenizer, max_seq_length: int, papers, aspect: str = "challenge", template_tokens: int = 0):
    """`(prompt, target)` of each paper: `tfmodels.examples.summarize`'s request for the `aspect` summary of its
    abstract, the abstract cut so that template, prompt, summary and end token fit `max_seq_length` tokens."""
    from tfmodels.examples.summarize import summary_request, truncate_tokens

    rows = []
    for paper in papers:
        target = paper.summaries[aspect]
        budget = (max_seq_length - template_tokens - _token_count(tokenizer, summary_request("", aspect))
                  - _token_count(tokenizer, target) - 2)  # the end token, and one token a cut may add
        if budget < 16:
            raise ValueError(f"--max-seq-length {max_seq_length} leaves {budget} tokens of paper {paper.id}'s abstract "
                             f"beside its summary; use a larger one")
        rows.append((summary_request(truncate_tokens(tokenizer, paper.text(), budget), aspect), target))
    return rows


def prepare_aclsum_csv(output_dir: str, tokenizer, max_seq_length: int, max_rows=None, seed: int = 0,
                       prompt_feature: str = "prompt", target_feature: str = "target", template_tokens: int = 0,
                       split: str = "train") -> str:
    """`aclsum_rows` of ACLSum's `split` (PyPI `aclsum`), shuffled, as `<output_dir>/aclsum.csv`; returns
    `output_dir`. A file of the same rows is left alone (its time stamp is part of ExampleGen's cache key)."""
    import numpy as np
    import pandas as pd

    from tfmodels.datasets.aclsum import load_aclsum

    papers = load_aclsum(split)
    order = np.random.default_rng(seed).permutation(len(papers))[:max_rows]
    rows = aclsum_rows(tokenizer, max_seq_length, [papers[i] for i in order], template_tokens=template_tokens)
    text = pd.DataFrame(rows, columns=[prompt_feature, target_feature]).to_csv(index=False)
    path = os.path.join(output_dir, "aclsum.csv")
    if os.path.exists(path):
        with open(path, encoding="utf-8", newline="") as f:
            if f.read() == text:
                return output_dir
    os.makedirs(output_dir, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return output_dir


def schema(options: TextGenerationOptions, columns):
    from tfx_pipeline.tasks.base import declared_schema

    return declared_schema((options.prompt_feature, options.target_feature), columns)


def row_check(options: TextGenerationOptions) -> Dict:
    """ExampleValidator's row check (`text_generation_check`): prompt and target present, UTF-8, and within
    the training length in the model's tokens."""
    return {"check": text_generation_check.__name__, "feature": options.target_feature,
            "prompt_feature": options.prompt_feature, "target_feature": options.target_feature,
            "encoder": options.encoder, "max_seq_length": options.max_seq_length,
            "prompt_prefix": options.prompt_prefix, "prompt_suffix": options.prompt_suffix}


def _cell(row, name: str) -> str:
    value = row.get(name)
    value = value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value
    return value if isinstance(value, str) else ""


def text_generation_check(prompt_feature: str, target_feature: str, encoder: str, max_seq_length: int,
                          prompt_prefix: str = "", prompt_suffix: str = "") -> row_checks.RowCheck:
    """A non-empty prompt and target, both UTF-8 (ExampleValidator reads invalid bytes as U+FFFD), whose
    tokens (prompt in its template, target, end token) fit the training length: what Transform would
    otherwise cut."""
    tokenizer = []  # built at the first row that needs it

    def token_count(prompt: str, target: str) -> int:
        if not tokenizer:
            tokenizer.append(preprocessor(encoder, max_seq_length))
        processor = tokenizer[0]
        pieces = processor.tokenizer.tokenize([prompt_prefix + prompt + prompt_suffix, target]).row_lengths()
        # [start] + prompt + target + [end], of which the model reads all but the last.
        return int(sum(pieces)) + 1 + (processor.start_token_id is not None) - 1

    def check(row) -> List[str]:
        texts = {name: _cell(row, name) for name in (prompt_feature, target_feature)}
        problems = [f"{name} is empty" for name, text in texts.items() if not text.strip()]
        problems += [f"{name} is not valid UTF-8" for name, text in texts.items() if "\ufffd" in text]
        if not problems:
            count = token_count(texts[prompt_feature], texts[target_feature])
            if count > max_seq_length:
                problems.append(f"{prompt_feature} + {target_feature} are {count} tokens, longer than the training "
                                f"length of {max_seq_length} (--max-seq-length)")
        return problems

    return check


# ExampleValidator finds row checks by name in `row_checks.CHECKS`.
row_checks.CHECKS.setdefault(text_generation_check.__name__, text_generation_check)


# ---- Transform, Trainer, Evaluator -----------------------------------------------------------------------------
def preprocessing_fn(inputs, hparams):
    """Raw `{prompt, target}` -> `token_ids`, `padding_mask`, `labels` (the next tokens) and `loss_mask` (1.0 on
    target tokens and the end token), [batch, max_seq_length], as the model's `CausalLMPreprocessor` makes
    them from prompt/response pairs."""
    import tensorflow as tf

    from tfx_pipeline.tasks.base import dense_1d

    options = hparams.options
    prompts = tf.strings.join([options.prompt_prefix, dense_1d(inputs[options.prompt_feature], b""),
                               options.prompt_suffix])
    features, labels, weights = preprocessor(options.encoder, hparams.max_seq_length)(
        prompts, dense_1d(inputs[options.target_feature], b""))
    return {TOKEN_IDS: tf.cast(features["token_ids"], tf.int64),
            PADDING_MASK: tf.cast(features["padding_mask"], tf.int64),
            LABELS: tf.cast(labels, tf.int64), LOSS_MASK: tf.cast(weights, tf.float32)}


def train_and_export(fn_args, hparams, tf_transform_output, callbacks):
    """Fine-tunes the decoder (LoRA of `lora_rank` on the attention projections, else every weight) on
    Transform's tokens with the loss on target tokens only, merges the adapters and exports
    `export_causal_lm`'s signatures plus `generate_examples` on the prompt feature."""
    import keras
    import tensorflow as tf

    from tfmodels.export.causal_lm import export_causal_lm
    from tfx_pipeline.training import fine_tune, transformed_dataset

    options = hparams.options

    def dataset(files, shuffle):
        return transformed_dataset(fn_args, files, tf_transform_output, hparams.batch_size, shuffle).map(
            lambda f: ({TOKEN_IDS: tf.cast(f[TOKEN_IDS], tf.int32), PADDING_MASK: tf.cast(f[PADDING_MASK], tf.int32)},
                       tf.cast(f[LABELS], tf.int32), f[LOSS_MASK]))

    model = decoder(options, hparams.max_seq_length, hparams.seed)
    if options.lora_rank:
        model.enable_lora(options.lora_rank)
    fine_tune(model, fn_args, hparams, dataset, callbacks,
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    if options.lora_rank:
        model.merge_lora()
    # One prompt width, the training length (each width costs a trace per signature here), and the decoding loop
    # not XLA-compiled: a compile per batch size in the Evaluator and at every server start (warmup) costs minutes
    # for SmolLM2 on 2 cores, longer than the whole greedy decoding of an eval split.
    export_causal_lm(model, fn_args.serving_model_dir, max_new_tokens=options.max_new_tokens,
                     max_prompt_tokens=hparams.max_seq_length, prompt_buckets=[hparams.max_seq_length],
                     model_name=hparams.model_name, jit_compile=False,
                     warmup_prompts=[options.wrap("A warmup request.")],
                     example_feature=options.prompt_feature, prompt_prefix=options.prompt_prefix,
                     prompt_suffix=options.prompt_suffix)


def eval_config(options: TextGenerationOptions):
    """ROUGE-1/2/L of the greedy completions against the target column; gated on `rouge_l >= min_rouge_l`."""
    from tfmodels.export.signatures import COMPLETION_OUTPUT, GENERATE_EXAMPLES_SIGNATURE
    from tfx_pipeline.metrics import RougeScores, task_eval_config

    return task_eval_config(GENERATE_EXAMPLES_SIGNATURE, options.target_feature, COMPLETION_OUTPUT,
                            RougeScores.__name__, options.min_rouge_l)


# ---- after the push --------------------------------------------------------------------------------------------
def sample_requests(args, config, count: int) -> list:
    """`--sample-text`, else the data's first prompts."""
    from tfx_pipeline.tasks.base import given_or_first_texts

    return given_or_first_texts(args, config.data_root, config.options.prompt_feature, count)


def query(model_base_path: str, model_name: str, options, prompts: Sequence[str]) -> Dict:
    """One greedy Predict on `generate` (prompts wrapped as in training): `{"version", "completions"}`."""
    from tfmodels.export import signatures as sig

    wrapped = [options.wrap(p) for p in prompts]
    version, completions = predict_texts(
        model_base_path, model_name,
        {sig.PROMPT_INPUT: wrapped, sig.MAX_NEW_TOKENS_INPUT: [options.max_new_tokens] * len(wrapped)},
        sig.GENERATE_SIGNATURE, sig.COMPLETION_OUTPUT)
    return {"version": version, "completions": completions}


def describe(prompts: Sequence[str], answers: Dict) -> List[str]:
    from tfmodels.export.signatures import GENERATE_SIGNATURE

    return served_lines(answers, GENERATE_SIGNATURE, prompts, answers["completions"], "prompts", output_width=200)


def serve_in_demo(args, config, root: str, result: Dict) -> None:
    """The served model's summaries of `args.reviews` ACLSum test papers (the pipeline trained and evaluated on
    train papers), with their ROUGE beside the same decoder's zero-shot ROUGE on those papers (into `result`)."""
    import time

    from tfmodels.datasets.aclsum import load_aclsum
    from tfmodels.examples.summarize import generate_all
    from tfmodels.metrics import rouge_scores
    from tfx_pipeline.infra_validation import InfraValidationError
    from tfx_pipeline.tasks.base import DemoError

    options = config.options
    processor = preprocessor(options.encoder, config.max_seq_length)
    papers = load_aclsum("test")[:args.reviews]
    rows = aclsum_rows(processor.tokenizer, config.max_seq_length, papers,
                       template_tokens=_token_count(processor.tokenizer, options.prompt_prefix + options.prompt_suffix))
    references = [target for _, target in rows]
    start = time.monotonic()
    try:
        answers = query(config.model_base_path(), config.model_name, options, [prompt for prompt, _ in rows])
    except InfraValidationError as e:
        raise DemoError(str(e)) from None
    print(f"gRPC Predict (signature generate) -> model {config.model_name}, version {answers['version']}, "
          f"{len(rows)} ACLSum test papers the pipeline never saw ({time.monotonic() - start:.0f} s):", flush=True)
    for paper, reference, completion in zip(papers, references, answers["completions"]):
        print(f"  {paper.title[:90]}\n    reference: {reference[:200]}\n    served:    {completion.strip()[:200]}")
    start = time.monotonic()
    base = decoder(options, config.max_seq_length)  # the same decoder before fine-tuning
    zero_shot = generate_all(base, [options.wrap(p) for p, _ in rows],
                             options.max_new_tokens, batch_size=8)
    scores = {"fine_tuned": rouge_scores(answers["completions"], references),
              "zero_shot": rouge_scores(zero_shot, references)}
    print(f"ROUGE F1 on these {len(rows)} papers (rouge-score, stemmed; zero-shot generated in-process, "
          f"{time.monotonic() - start:.0f} s):")
    for name, values in scores.items():
        print(f"  {name:10s} " + "  ".join(f"{key} {value:.4f}" for key, value in values.items()))
    result.update(answers=answers, papers=[p.id for p in papers], rouge_heldout=scores, zero_shot=zero_shot)


TASK = Task(
    name=NAME, summary="prompt text -> generated text (a fine-tuned decoder)", options=TextGenerationOptions,
    flags=(PROMPT_FEATURE, TARGET_FEATURE, ENCODER, CHAT_TEMPLATE, LORA_RANK, MAX_NEW_TOKENS, MIN_ROUGE_L),
    check_args=check_args, options_from_args=options_from_args, data_name="aclsum", prepare_data=prepare_data,
    learning_rate=lambda options: 1e-3 if options.lora_rank else 2e-4, schema=schema, row_check=row_check,
    eval_config=eval_config, preprocessing_fn=preprocessing_fn, train_and_export=train_and_export,
    sample_requests=sample_requests, query=query, describe=describe, prepare=prepare,
    demo=Demo(defaults=dict(  # ACLSum abstract -> challenge summary, LoRA on SmolLM2-135M-Instruct
        encoder=SMOLLM2, chat_template=True, rows=60, train_steps=30, eval_steps=2, max_seq_length=256,
        batch_size=2, learning_rate=1e-3, max_new_tokens=48, min_rouge_l=0.0, model_name="aclsum_smollm2",
        pipeline_name="tfmodels_text_generation_demo"),
        root="artifacts/demo_text_generation", serve=serve_in_demo,
        metrics_note=lambda metrics: f", ROUGE-1 {metrics.get('rouge_1', float('nan')):.4f}, ROUGE-2 "
                                     f"{metrics.get('rouge_2', float('nan')):.4f}"))
