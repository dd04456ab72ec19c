"""Tokenizer throughput: tfmodels.text.BertTokenizer (core TF ops only) vs tensorflow-text and keras-hub.

All sides tokenize the same IMDB reviews with the same all-MiniLM-L6-v2 vocabulary, each inside a
``tf.function``, in one process. Rounds alternate the sides (so load changes on the machine hit
them alike) and the medians are reported.

* ``fast_wordpiece``: ``tensorflow_text.FastBertTokenizer`` = FastBertNormalizer (lower-case,
  NFD, strip accents) + FastWordpieceTokenizer, i.e. the same job as ours, in custom C++ ops.
* ``fast_wordpiece_only``: ``tensorflow_text.FastWordpieceTokenizer`` alone on text that was
  lower-cased and accent-stripped beforehand (the op without its normalizer; for reference).
* ``keras_hub``: ``keras_hub.tokenizers.WordPieceTokenizer(lowercase=True, strip_accents=True)``.

    python bench/tokenizer.py [--texts 2000] [--batch-size 256] [--rounds 5] [--stages]

The last line is one JSON object; ``ratio_vs_fast_wordpiece`` is our throughput divided by
FastBertTokenizer's (higher is better for us).

``--stages`` also times each stage alone, on the previous stage's output, in its own
``tf.function`` (same alternating rounds), and adds ``stage_ms`` (ms per 1000 texts) to the JSON:

* ours ``normalize``: ASCII control characters dropped, ASCII punctuation isolated, lower-cased
  (string ops on whole texts); ``split``: whitespace split, and the words that are still not
  ASCII through the code point tables (NFD, accents, non-ASCII punctuation/CJK/spaces);
  ``wordpiece``: whole-word lookups, the longest-match loop over the distinct misses, and the
  merge back into text order.
* FastBertTokenizer's ``normalize``: ``FastBertNormalizer`` (lower-case, NFD, strip accents);
  ``split+wordpiece``: ``FastWordpieceTokenizer`` on its output.
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
    fast_bert = tf_text.FastBertTokenizer(
        vocab, token_out_type=tf.int32, lower_case_nfd_strip_accents=True
    )
    fast_wordpiece = tf_text.FastWordpieceTokenizer(
        vocab, token_out_type=tf.int32, no_pretokenization=False
    )
    keras_hub_tok = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocab, lowercase=True, strip_accents=True
    )
    return {
        "ours": tf.function(ours.tokenize),
        "fast_wordpiece": tf.function(fast_bert.tokenize),
        "fast_wordpiece_only": tf.function(fast_wordpiece.tokenize),
        "keras_hub": tf.function(keras_hub_tok.tokenize),
    }, ours


def stage_sides(ours, vocab, batches):
    """{stage: (tf.function, its input batches)}: each stage on the previous one's output."""
    import tensorflow_text as tf_text

    from tfmodels.text.normalization import AsciiSplit, normalize_ascii, split_normalized_ascii

    normalizer = ours._normalizer
    normalize = tf.function(lambda texts: normalize_ascii(texts, normalizer.lowercase))

    def split_fields(texts, plain):
        split = split_normalized_ascii(texts, plain, normalizer)
        return split.words, split.replaced, split.parts, split.part_splits

    split = tf.function(split_fields)
    normalized = [normalize(b) for b in batches]
    splits = [split(*n) for n in normalized]
    wordpiece = tf.function(lambda *parts: ours._tokenize_split(AsciiSplit(*parts)))
    fast_normalizer = tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=True)
    fast_wordpiece = tf_text.FastWordpieceTokenizer(
        vocab, token_out_type=tf.int32, no_pretokenization=False
    )
    fast_normalize = tf.function(fast_normalizer.normalize)
    return {
        "ours normalize": (normalize, batches),
        "ours split": (lambda n: split(*n), normalized),
        "ours wordpiece": (lambda fields: wordpiece(*fields), splits),
        "fast normalize": (fast_normalize, batches),
        "fast split+wordpiece": (
            tf.function(fast_wordpiece.tokenize),
            [fast_normalize(b) for b in batches],
        ),
    }


def main():
    parser = cli.parser(__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="reviews to tokenize")
    parser.add_argument("--batch-size", type=int, default=256, help="texts per call")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per side")
    parser.add_argument("--stages", action="store_true", help="also time each stage alone")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(parser, parser.parse_args(), ["texts", "batch_size", "rounds"])
    logs.quiet(args.verbose)

    from tfmodels.datasets import minilm_path

    texts = imdb_reviews(args.texts)
    batches = [
        tf.constant(texts[i : i + args.batch_size]) for i in range(0, len(texts), args.batch_size)
    ]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    vocab_path = os.path.join(minilm_path(), "vocab.txt")
    sides, ours = build_sides(vocab_path)
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
    if args.stages:
        stages = stage_sides(ours, ours.get_vocabulary(), batches)
        for name, (fn, stage_inputs) in stages.items():
            sides[name], inputs[name] = fn, stage_inputs
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
    if args.stages:
        result["stage_ms"] = {
            name: round(1000 * 1000 / median[name], 1)
            for name in ["ours", "fast_wordpiece", *stages]
        }
        print(f"{'stage':24s} ms per 1000 texts")
        for name, ms in result["stage_ms"].items():
            print(f"{name:24s} {ms:8.1f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
