"""Byte-level BPE throughput: tfmodels.text.BytePairTokenizer (core TF ops) vs Hugging Face `tokenizers`.

Both sides tokenize the same IMDB reviews with SmolLM2's vocabulary, merges and special tokens
(read from the packaged GGUF), in one process:

* ``ours``: ``BytePairTokenizer(..., pre_tokenizer="smollm")`` inside a ``tf.function``;
* ``hf``: a Hugging Face ``tokenizers`` BPE over the same lists (``Digits`` + ``ByteLevel``
  pre-tokenizer), ``encode_batch`` (Rust, several threads);
* ``hf_one_thread``: the same, one ``encode`` call per text (one thread);
* ``keras_hub``: ``keras_hub.tokenizers.BytePairTokenizer`` (TF ops plus tensorflow-text; its
  pre-tokenizer is GPT-2's, without SmolLM's digit split, so its ids differ on numbers).

Rounds alternate the sides (load changes on the machine hit them alike); medians are reported.
The ids of ``ours`` are checked against ``hf`` on every text.

    python bench/byte_pair_tokenizer.py [--texts 1024] [--batch-size 32] [--rounds 5]

The last line is one JSON object; ``ratio_vs_hf`` is our throughput divided by Hugging Face's
(higher is better for us).
"""

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tfmodels.utils import cli, logs  # noqa: E402  (standard library only)

logs.import_tensorflow_quietly()  # before anything imports TensorFlow: no CUDA start-up noise

import tensorflow as tf  # noqa: E402
from text_rates import imdb_reviews, median_texts_per_s  # noqa: E402  (bench/, beside this file)


def smollm2_tokenizer_fields():
    import gguf

    from tfmodels.datasets import smollm2_path

    fields = gguf.GGUFReader(smollm2_path()).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    return tokens, fields["tokenizer.ggml.merges"].contents(), [
        t for t, kind in zip(tokens, types) if kind == 3
    ]


def build_sides(tokens, merges, special_tokens):
    import keras_hub
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    from tfmodels.text import BytePairTokenizer

    start = time.perf_counter()
    ours = BytePairTokenizer(tokens, merges, pre_tokenizer="smollm", special_tokens=special_tokens)
    build_s = time.perf_counter() - start
    hf = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, [tuple(m.split()) for m in merges]))
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    hf.add_special_tokens([AddedToken(t, special=True) for t in special_tokens])
    hub = keras_hub.tokenizers.BytePairTokenizer(
        vocabulary={t: i for i, t in enumerate(tokens)}, merges=merges,
        unsplittable_tokens=special_tokens,
    )
    sides = {
        "ours": tf.function(ours.tokenize),
        "hf": lambda batch: hf.encode_batch(batch, add_special_tokens=False),
        "hf_one_thread": lambda batch: [hf.encode(t, add_special_tokens=False) for t in batch],
        "keras_hub": tf.function(hub.tokenize),
    }
    return sides, build_s


def main():
    parser = cli.parser(__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1024, help="reviews to tokenize")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per call")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per side")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(parser, parser.parse_args(), ["texts", "batch_size", "rounds"])
    logs.quiet(args.verbose)

    texts = imdb_reviews(args.texts)
    lists = [texts[i : i + args.batch_size] for i in range(0, len(texts), args.batch_size)]
    inputs = {"ours": [tf.constant(b) for b in lists], "hf": lists, "hf_one_thread": lists}
    inputs["keras_hub"] = inputs["ours"]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    sides, build_s = build_sides(*smollm2_tokenizer_fields())

    ours_ids = [ids for b in inputs["ours"] for ids in sides["ours"](b).to_list()]
    hf_ids = [e.ids for b in lists for e in sides["hf"](b)]
    agree = sum(a == b for a, b in zip(ours_ids, hf_ids))
    median = median_texts_per_s(sides, inputs, texts, args.rounds)
    print(json.dumps({
        "texts": len(texts),
        "megabytes": round(megabytes, 3),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "build_s": round(build_s, 2),
        "texts_per_s": {name: round(rate, 1) for name, rate in median.items()},
        "same_ids_as_hf": f"{agree}/{len(texts)}",
        "ratio_vs_hf": round(median["ours"] / median["hf"], 3),
        "ratio_vs_hf_one_thread": round(median["ours"] / median["hf_one_thread"], 3),
        "ratio_vs_keras_hub": round(median["ours"] / median["keras_hub"], 3),
    }))


if __name__ == "__main__":
    main()
