"""The translation task of the pipeline: vocabularies, row check, Transform, Trainer and Evaluator config.

Input: a source-text column (`--source-feature`, default `source`) and a target-text column (`--target-feature`,
`target`). The model size is `--encoder` (`tiny` or `small`, `SIZES`). The WordPiece vocabularies are given
(`--source-vocab`, `--target-vocab`) or learned from the CSVs before the run (`learn_vocab_files`, tfmodels'
`learn_vocabulary`); the source side is uncased, the target side cased, so that translations keep their capitals
and accents. Transform tokenizes both sides with tfmodels' core-op tokenizer into fixed-width ids
(`max_seq_length`: longer texts are cut) and the decoder's teacher-forcing input and labels. Trainer trains a
`Seq2SeqTransformer`; the export serves `serving_default` (texts in, greedy XLA-decoded translations out) and,
for the Evaluator, `translate_examples` (tf.Example in). The Evaluator scores sacrebleu's corpus BLEU
(`tfx_pipeline.metrics.CorpusBleu`) and blesses on `bleu >= --min-bleu` and not below the baseline.
"""

import dataclasses
import hashlib
import os
from typing import Dict, List, Optional, Sequence, Tuple

from tfx_pipeline.flags import flag, threshold, vocab_file
from tfx_pipeline.tasks.base import (
    GATE,
    Demo,
    Options,
    Task,
    given_or_first_texts,
    predict_texts,
    served_lines,
)

NAME = "translate"
# Seq2SeqTransformer sizes (`--encoder` names one).
SIZES = {
    "tiny": dict(hidden_size=32, num_heads=2, intermediate_size=64, num_encoder_layers=1, num_decoder_layers=1),
    "small": dict(hidden_size=128, num_heads=4, intermediate_size=512, num_encoder_layers=2, num_decoder_layers=2),
}
SOURCE_IDS, TARGET_IDS, LABELS = "source_ids", "target_ids", "labels"  # Transform's outputs
SOURCE_LOWERCASE, TARGET_LOWERCASE = True, False
SOURCE_VOCAB_SIZE, TARGET_VOCAB_SIZE = 4000, 6000  # what the learner aims at (tfmodels.examples.translate's)
VOCAB_FILES = ("source_vocab.txt", "target_vocab.txt")


@dataclasses.dataclass(frozen=True)
class TranslateOptions(Options):
    """`source_feature` -> `target_feature` text; `size`: a `SIZES` key; the WordPiece vocabularies (source
    uncased, target cased; None: learned from the CSVs before the run, `prepare`)."""

    source_feature: str = "source"
    target_feature: str = "target"
    size: str = "tiny"
    source_vocab_file: Optional[str] = None
    target_vocab_file: Optional[str] = None
    min_bleu: float = dataclasses.field(default=1.0, metadata=GATE)

    def problems(self) -> List[str]:
        problems = [] if self.size in SIZES else [f"size must be one of {sorted(SIZES)}, got {self.size!r}"]
        if bool(self.source_vocab_file) != bool(self.target_vocab_file):
            problems.append("give both vocabulary files, or neither (learned)")
        return problems

    def summary(self) -> str:
        return f"encoder {self.size}"


SOURCE_FEATURE = flag("--source-feature", default="source", help="the source-text column")
TARGET_FEATURE = flag("--target-feature", default="target", help="the target-text column")
SOURCE_VOCAB = flag("--source-vocab", type=vocab_file,
                    help="the source WordPiece vocabulary (uncased; default: learned from the data)")
TARGET_VOCAB = flag("--target-vocab", type=vocab_file,
                    help="the target WordPiece vocabulary (cased; default: learned from the data)")
# The BERT tasks' --encoder flag too (the registry joins the declarations' help texts).
DEFAULT_SIZE = "tiny"
SIZE = flag("--encoder", help=f"the model size, {' or '.join(SIZES)} (default: {DEFAULT_SIZE})")
MIN_BLEU = flag("--min-bleu", type=threshold(100.0), default=1.0,
                help="value threshold for the blessing (held-out corpus BLEU, 0-100)")


def check_args(parser, args) -> None:
    if (args.encoder or DEFAULT_SIZE) not in SIZES:
        parser.error(f"argument --encoder: translate trains a Seq2SeqTransformer of size "
                     f"{' or '.join(sorted(SIZES))}, got {args.encoder!r}")
    if bool(args.source_vocab) != bool(args.target_vocab):
        parser.error("argument --source-vocab/--target-vocab: give both vocabularies, or neither (learned)")
    if args.input_format == "tfrecord" and not args.source_vocab:
        parser.error("argument --source-vocab: translate on tfrecord input needs --source-vocab and "
                     "--target-vocab (they are learned from the data only for CSVs)")


def options_from_args(args, data_root: str) -> TranslateOptions:
    return TranslateOptions(source_feature=args.source_feature, target_feature=args.target_feature,
                            size=args.encoder or DEFAULT_SIZE,
                            source_vocab_file=args.source_vocab and os.path.abspath(args.source_vocab),
                            target_vocab_file=args.target_vocab and os.path.abspath(args.target_vocab),
                            min_bleu=args.min_bleu)


def prepare_data(args, directory: str) -> str:
    from tfx_pipeline import data

    return data.prepare_bible_csv(directory, args.rows, source_feature=args.source_feature,
                                  target_feature=args.target_feature)


def schema(options: TranslateOptions, columns):
    from tfx_pipeline.tasks.base import declared_schema

    return declared_schema((options.source_feature, options.target_feature), columns)


def row_check(options: TranslateOptions) -> Dict:
    """ExampleValidator's row check (`tfx_pipeline.row_checks.translation_check`): no empty source or target."""
    return {"check": "translation_check", "feature": options.target_feature,
            "source_feature": options.source_feature, "target_feature": options.target_feature}


def prepare(config) -> TranslateOptions:
    """The options with vocabularies: as given, else learned from the CSVs (`learn_vocab_files`, under
    `<pipeline_root>/learned_vocab`)."""
    options = config.options
    if options.source_vocab_file:
        return options
    if config.input_format == "tfrecord":
        raise ValueError("translate on tfrecord input needs source_vocab_file and target_vocab_file")
    source_vocab, target_vocab = learn_vocab_files(config.data_root, options.source_feature, options.target_feature,
                                                   os.path.join(config.pipeline_root, "learned_vocab"))
    return dataclasses.replace(options, source_vocab_file=source_vocab, target_vocab_file=target_vocab)


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

    options = hparams.options
    return (BertTokenizer.from_vocab_file(options.source_vocab_file, lowercase=SOURCE_LOWERCASE),
            BertTokenizer.from_vocab_file(options.target_vocab_file, lowercase=TARGET_LOWERCASE))


def preprocessing_fn(inputs, hparams):
    """Raw `{source, target}` -> `source_ids`, `target_ids` ([CLS] + target) and `labels` (target + [SEP]),
    int64 [batch, max_seq_length], padded with 0 and cut at max_seq_length."""
    import tensorflow as tf

    from tfmodels.models.transformer import text
    from tfx_pipeline.tasks.base import dense_1d

    options = hparams.options
    source_tokenizer, target_tokenizer = tokenizers(hparams)
    length = hparams.max_seq_length
    source_ids = text.encode_source(source_tokenizer, dense_1d(inputs[options.source_feature], b""), length)
    target_ids, labels = text.teacher_forcing(target_tokenizer(dense_1d(inputs[options.target_feature], b"")),
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
    from tfx_pipeline.training import fine_tune, transformed_dataset

    def dataset(files, shuffle):
        return transformed_dataset(fn_args, files, tf_transform_output, hparams.batch_size, shuffle).map(
            lambda f: ({SOURCE_IDS: tf.cast(f[SOURCE_IDS], tf.int32), TARGET_IDS: tf.cast(f[TARGET_IDS], tf.int32)},
                       tf.cast(f[LABELS], tf.int32)))

    source_tokenizer, target_tokenizer = tokenizers(hparams)
    size = SIZES[hparams.options.size]
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
    export_translator(translator, fn_args.serving_model_dir, example_feature=hparams.options.source_feature,
                      warmup_texts=["a warmup request"], model_name=hparams.model_name)


def eval_config(options: TranslateOptions):
    """Corpus BLEU of `translations` against the target column; gated on `bleu >= min_bleu`."""
    from tfmodels.export.signatures import TRANSLATE_EXAMPLES_SIGNATURE, TRANSLATE_OUTPUT
    from tfx_pipeline.metrics import CorpusBleu, task_eval_config

    return task_eval_config(TRANSLATE_EXAMPLES_SIGNATURE, options.target_feature, TRANSLATE_OUTPUT,
                            CorpusBleu.__name__, options.min_bleu)


# ---- after the push --------------------------------------------------------------------------------------------
def sample_requests(args, config, count: int) -> list:
    """`--sample-text`, else the data's first source texts."""
    return given_or_first_texts(args, config.data_root, config.options.source_feature, count)


def query(model_base_path: str, model_name: str, options, texts: Sequence[str]) -> Dict:
    """One Predict on the text-in/text-out signature: `{"version", "translations"}`."""
    from tfmodels.export import signatures as sig

    version, translations = predict_texts(model_base_path, model_name, {sig.TRANSLATE_INPUT: list(texts)},
                                          sig.TRANSLATE_SIGNATURE, sig.TRANSLATE_OUTPUT)
    return {"version": version, "translations": translations}


def describe(texts: Sequence[str], answers: Dict) -> List[str]:
    from tfmodels.export.signatures import TRANSLATE_SIGNATURE

    return served_lines(answers, TRANSLATE_SIGNATURE, texts, answers["translations"])


TASK = Task(
    name=NAME, summary="source text -> target text", options=TranslateOptions,
    flags=(SOURCE_FEATURE, TARGET_FEATURE, SOURCE_VOCAB, TARGET_VOCAB, SIZE, MIN_BLEU),
    check_args=check_args, options_from_args=options_from_args, data_name="bible", prepare_data=prepare_data,
    learning_rate=lambda options: 2e-3, schema=schema, row_check=row_check, eval_config=eval_config,
    preprocessing_fn=preprocessing_fn, train_and_export=train_and_export, sample_requests=sample_requests,
    query=query, describe=describe, prepare=prepare,
    demo=Demo(defaults=dict(  # English -> Spanish Bible verses, vocabularies learned in the run
        encoder="small", rows=12000, train_steps=1000, eval_steps=4, max_seq_length=64, batch_size=64,
        learning_rate=2e-3, min_bleu=1.0, model_name="bible_en_es", pipeline_name="tfmodels_translate_demo"),
        root="artifacts/demo_translate"))
