"""Tokenizer throughput: tfmodels.text.BertTokenizer (core TF ops only) vs tensorflow-text and keras-hub.

All sides tokenize the same IMDB reviews with the same all-MiniLM-L6-v2 vocabulary, each inside a
``tf.function``, in one process. Rounds alternate the sides (so load changes on the machine hit
them alike) and the medians are reported.

* ``fast_wordpiece``: ``tensorflow_text.FastBertTokenizer`` = FastBertNormalizer (lower-case,
  NFD, strip accents) + FastWordpieceTokenizer, i.e. the same job as ours, in custom C++ ops.
* ``fast_wordpiece_only``: ``tensorflow_text.FastWordpieceTokenizer`` alone on text that was
  lower-cased and accent-stripped beforehand (the op without its normalizer; for reference).
* ``keras_hub``: ``keras_hub.tokenizers.WordPieceTokenizer(lowercase=True, strip_accents=True)``.

    python bench/tokenizer.py [--texts 2000] [--batch-size 256] [--rounds 5]

The last line is one JSON object; ``ratio_vs_fast_wordpiece`` is our throughput divided by
FastBertTokenizer's (higher is better for us).
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tfmodels.utils import cli, logs  # noqa: E402  (standard library only)

logs.import_tensorflow_quietly()  # before anything imports TensorFlow: no CUDA start-up noise

import tensorflow as tf  # noqa: E402
from text_rates import imdb_reviews, median_texts_per_s  # noqa: E402  (bench/, beside this file)


def build_sides(vocab_path):
    import keras_hub
    import tensorflow_text as tf_text

    from tfmodels.text import BertTokenizer, load_vocabulary

    vocab = load_vocabulary(vocab_path)
    ours = BertTokenizer(vocab, lowercase=True)
    fast_bert = tf_text.FastBertTokenizer(vocab, token_out_type=tf.int32, lower_case_nfd_strip_accents=True)
    fast_wordpiece = tf_text.FastWordpieceTokenizer(vocab, token_out_type=tf.int32, no_pretokenization=False)
    keras_hub_tok = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocab, lowercase=True, strip_accents=True
    )
    return {
        "ours": tf.function(ours.tokenize),
        "fast_wordpiece": tf.function(fast_bert.tokenize),
        "fast_wordpiece_only": tf.function(fast_wordpiece.tokenize),
        "keras_hub": tf.function(keras_hub_tok.tokenize),
    }, ours


def main():
    parser = cli.parser(__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="reviews to tokenize")
    parser.add_argument("--batch-size", type=int, default=256, help="texts per call")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per side")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(parser, parser.parse_args(), ["texts", "batch_size", "rounds"])
    logs.quiet(args.verbose)

    from tfmodels.datasets import minilm_path

    texts = imdb_reviews(args.texts)
    batches = [tf.constant(texts[i : i + args.batch_size]) for i in range(0, len(texts), args.batch_size)]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    sides, ours = build_sides(os.path.join(minilm_path(), "vocab.txt"))
    # The prepared input of the op-only side: normalized words, joined by spaces.
    normalized = [
        tf.strings.reduce_join(ours.split_words(b), axis=-1, separator=" ") for b in batches
    ]
    inputs = {name: batches for name in sides}
    inputs["fast_wordpiece_only"] = normalized

    # Same ids check on this data (FastBert lower-cases with ICU, so rare scripts may differ).
    agree = sum(
        a == b
        for batch in batches
        for a, b in zip(sides["ours"](batch).to_list(), sides["fast_wordpiece"](batch).to_list())
    )
    median = median_texts_per_s(sides, inputs, texts, args.rounds)
    result = {
        "texts": len(texts),
        "megabytes": round(megabytes, 3),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "texts_per_s": {name: round(rate, 1) for name, rate in median.items()},
        "same_ids_as_fast_wordpiece": f"{agree}/{len(texts)}",
        "ratio_vs_fast_wordpiece": round(median["ours"] / median["fast_wordpiece"], 3),
        "ratio_vs_fast_wordpiece_op_only": round(median["ours"] / median["fast_wordpiece_only"], 3),
        "ratio_vs_keras_hub": round(median["ours"] / median["keras_hub"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
