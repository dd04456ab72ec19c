"""The translation task of the pipeline: vocabularies, row check, Transform, Trainer and Evaluator config.

Input: a source-text column (`--source-feature`, default `source`) and a target-text column (`--target-feature`,
`target`). The WordPiece vocabularies are given (`--source-vocab`, `--target-vocab`) or learned from the CSVs
before the run (`learn_vocab_files`, tfmodels' `learn_vocabulary`); the source side is uncased, the target side
cased, so that translations keep their capitals and accents. Transform tokenizes both sides with tfmodels'
core-op tokenizer into fixed-width ids (`max_seq_length`: longer texts are cut) and the decoder's
teacher-forcing input and labels. Trainer trains a `Seq2SeqTransformer` (size `tiny` or `small`, from
`hparams.TRANSLATION_SIZES`); the export serves `serving_default` (texts in, greedy XLA-decoded translations
out) and, for the Evaluator, `translate_examples` (tf.Example in). The Evaluator scores sacrebleu's corpus BLEU
(`tfx_pipeline.metrics.CorpusBleu`) and blesses on `bleu >= --min-bleu` and not below the baseline.
"""

import hashlib
import os
from typing import Dict, Tuple

from tfx_pipeline.hparams import TRANSLATE as TASK

SOURCE_IDS, TARGET_IDS, LABELS = "source_ids", "target_ids", "labels"  # Transform's outputs
SOURCE_LOWERCASE, TARGET_LOWERCASE = True, False
SOURCE_VOCAB_SIZE, TARGET_VOCAB_SIZE = 4000, 6000  # what the learner aims at (tfmodels.examples.translate's)
VOCAB_FILES = ("source_vocab.txt", "target_vocab.txt")


def row_check(source_feature: str, target_feature: str) -> Dict:
    """ExampleValidator's row check (`tfx_pipeline.row_checks.translation_check`): no empty source or target."""
    return {"task": TASK, "feature": target_feature, "source_feature": source_feature,
            "target_feature": target_feature}


def learn_vocab_files(data_root: str, source_feature: str, target_feature: str, directory: str) -> Tuple[str, str]:
    """WordPiece vocabularies learned from every row of the CSVs in `data_root`, written to
    `<directory>/<hash of the data and settings>/`: the same data finds them there again, so a re-run neither
    learns again nor misses the cache.

    Every row, eval rows included: ExampleGen splits later. A vocabulary is a list of sub-words; the eval
    split's scores still come from a model that never trained on its sentences.
    """
    import pandas as pd
    import tensorflow as tf

    from tfmodels.text import learn_vocabulary

    paths = sorted(tf.io.gfile.glob(os.path.join(data_root, "*.csv")))
    if not paths:
        raise ValueError(f"no CSV files in {data_root} to learn the vocabularies from")
    key = hashlib.sha256(repr((source_feature, target_feature, SOURCE_VOCAB_SIZE, TARGET_VOCAB_SIZE,
                               SOURCE_LOWERCASE, TARGET_LOWERCASE)).encode())
    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as f:
            key.update(f.read())
    folder = os.path.join(directory, key.hexdigest()[:16])
    files = tuple(os.path.join(folder, name) for name in VOCAB_FILES)
    if all(tf.io.gfile.exists(path) for path in files):
        return files
    frames = []
    for path in paths:
        with tf.io.gfile.GFile(path) as f:
            frames.append(pd.read_csv(f, usecols=[source_feature, target_feature], dtype=str, keep_default_na=False))
    frame = pd.concat(frames)
    tf.io.gfile.makedirs(folder)
    for path, feature, size, lowercase in ((files[0], source_feature, SOURCE_VOCAB_SIZE, SOURCE_LOWERCASE),
                                           (files[1], target_feature, TARGET_VOCAB_SIZE, TARGET_LOWERCASE)):
        vocabulary = learn_vocabulary(frame[feature].tolist(), size, lowercase)
        with tf.io.gfile.GFile(path + ".tmp", "w") as f:
            f.write("\n".join(vocabulary) + "\n")
        tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    return files


def tokenizers(hparams):
    """(source, target) `BertTokenizer`s of the run's vocabularies."""
    from tfmodels.text import BertTokenizer

    return (BertTokenizer.from_vocab_file(hparams.vocab_file, lowercase=SOURCE_LOWERCASE),
            BertTokenizer.from_vocab_file(hparams.target_vocab_file, lowercase=TARGET_LOWERCASE))


def preprocessing_fn(inputs, hparams, dense_1d):
    """Raw `{source, target}` -> `source_ids`, `target_ids` ([CLS] + target) and `labels` (target + [SEP]),
    int64 [batch, max_seq_length], padded with 0 and cut at max_seq_length."""
    import tensorflow as tf

    from tfmodels.models.transformer import text

    source_tokenizer, target_tokenizer = tokenizers(hparams)
    length = hparams.max_seq_length
    source_ids = text.encode_source(source_tokenizer, dense_1d(inputs[hparams.text_features[0]], b""), length)
    target_ids, labels = text.teacher_forcing(target_tokenizer(dense_1d(inputs[hparams.label_feature], b"")),
                                              target_tokenizer.cls_token_id, target_tokenizer.sep_token_id)
    return {SOURCE_IDS: tf.cast(source_ids, tf.int64),
            TARGET_IDS: tf.cast(target_ids[:, :length].to_tensor(0, shape=[None, length]), tf.int64),
            LABELS: tf.cast(labels[:, :length].to_tensor(0, shape=[None, length]), tf.int64)}


def train_and_export(fn_args, hparams, tf_transform_output, callbacks):
    """Trains a `Seq2SeqTransformer` on Transform's ids (the "Attention is all you need" recipe: Adam with
    inverse-square-root warmup, label smoothing 0.1) and exports the text-in/text-out translator and the
    Evaluator's `translate_examples` to `fn_args.serving_model_dir`."""
    import keras
    import tensorflow as tf

    from tfmodels.models.transformer import (
        InverseSqrtWarmup,
        LabelSmoothedCrossEntropy,
        Seq2SeqTransformer,
        masked_accuracy,
    )
    from tfmodels.models.transformer.export import Translator, export_translator
    from tfx_pipeline.hparams import TRANSLATION_SIZES
    from tfx_pipeline.training import fine_tune, transformed_dataset

    def dataset(files, shuffle):
        return transformed_dataset(fn_args, files, tf_transform_output, hparams.batch_size, shuffle).map(
            lambda f: ({SOURCE_IDS: tf.cast(f[SOURCE_IDS], tf.int32), TARGET_IDS: tf.cast(f[TARGET_IDS], tf.int32)},
                       tf.cast(f[LABELS], tf.int32)))

    source_tokenizer, target_tokenizer = tokenizers(hparams)
    size = TRANSLATION_SIZES[hparams.encoder]
    model = Seq2SeqTransformer(
        source_vocab_size=source_tokenizer.vocabulary_size(), target_vocab_size=target_tokenizer.vocabulary_size(),
        max_source_length=hparams.max_seq_length, max_target_length=hparams.max_seq_length,
        pad_id=target_tokenizer.pad_token_id, start_id=target_tokenizer.cls_token_id,
        end_id=target_tokenizer.sep_token_id, **size)
    # Warmup over the first tenth of the run (at most the base model's 4000 steps), peaking at `learning_rate`
    # (the schedule peaks at scale / sqrt(hidden_size * warmup)), then decaying as 1 / sqrt(step).
    warmup = max(1, min(4000, int(fn_args.train_steps) // 10))
    scale = hparams.learning_rate * (size["hidden_size"] * warmup) ** 0.5
    optimizer = keras.optimizers.Adam(InverseSqrtWarmup(size["hidden_size"], warmup, scale=scale),
                                      beta_1=0.9, beta_2=0.98, epsilon=1e-9)
    fine_tune(model, fn_args, hparams, dataset, callbacks, optimizer=optimizer,
              loss=LabelSmoothedCrossEntropy(label_smoothing=0.1, pad_id=model.pad_id), metrics=[masked_accuracy])
    translator = Translator(model, source_tokenizer, target_tokenizer, max_length=hparams.max_seq_length)
    export_translator(translator, fn_args.serving_model_dir, example_feature=hparams.text_features[0],
                      warmup_texts=["a warmup request"], model_name=hparams.model_name)


def eval_config(target_feature: str, min_bleu: float):
    """Corpus BLEU of `translations` against the target column; gated on `bleu`."""
    from tfmodels.export.signatures import TRANSLATE_EXAMPLES_SIGNATURE, TRANSLATE_OUTPUT
    from tfx_pipeline.metrics import CorpusBleu, task_eval_config

    return task_eval_config(TRANSLATE_EXAMPLES_SIGNATURE, target_feature, TRANSLATE_OUTPUT, CorpusBleu.__name__, min_bleu)
