"""The token-classification (NER) task of the pipeline: its columns, schema, row check, Transform, Trainer,
Evaluator config and infra-validation request.

Input: a column of whitespace-separated words (`--words-feature`, default `tokens`) and one of as many
whitespace-separated tags (`--tags-feature`, default `tags`), CoNLL-style; or (`--spans-feature`) a text column
(`--text-feature`) and a JSON column of its entities' character spans `[[start, end, "type"], ...]`, which
Transform turns into BIO tags of the text's whitespace-separated words (`alignment.word_tags_from_char_spans`;
the Evaluator reads the same gold tags through the export's `gold_tags` preprocessing signature). The tag set is
read from the data unless given (`--tag`, repeatable). Transform aligns the tags to word pieces with tfmodels' core-op tokenizer
(`TokenClassifierPreprocessor.align_tensors`' alignment, one window per row: pieces past `max_seq_length - 2`
are cut for training; the export windows long texts with a stride). Trainer fine-tunes a
`BertTokenClassifier`; the export serves `extract_entities` (raw text in) and, for the Evaluator,
`serving_default` (tf.Example in, `predicted_tags` out). The Evaluator scores entity precision/recall/F1
(`tfx_pipeline.metrics.EntityScores`) and blesses on `entity_f1 >= --min-f1` and not below the baseline.
"""

import os
from typing import Dict, Sequence, Tuple

from tfx_pipeline.hparams import TOKEN_CLASSIFICATION as TASK

LABEL_IDS = "label_ids"  # Transform's outputs besides the encoder inputs
LABEL_WEIGHTS = "label_weights"
GOLD_TAGS = "gold_tags"  # spans input: the export's preprocessing signature, and its output the Evaluator reads
_PREFIX_ORDER = {"B": 0, "I": 1, "E": 2, "S": 3}


def sort_tags(tags) -> Tuple[str, ...]:
    """`O` first, then by entity type and B, I, E, S (the order of `tfmodels.datasets.wnut16_tags`)."""
    tags = set(tags) | {"O"}
    others = sorted((t for t in tags if t != "O"),
                    key=lambda t: (t[2:], _PREFIX_ORDER.get(t[:1], 9), t))
    return ("O", *others)


def tags_in_csv(data_root: str, tags_feature: str, spans: bool = False) -> Tuple[str, ...]:
    """The tag set of the CSVs in `data_root` (every tag of `tags_feature`; with `spans`, `B-`/`I-` of every
    span type of that JSON column), in `sort_tags` order."""
    import json

    import pandas as pd
    import tensorflow as tf

    found = set()
    for path in sorted(tf.io.gfile.glob(os.path.join(data_root, "*.csv"))):
        with tf.io.gfile.GFile(path) as f:
            column = pd.read_csv(f, usecols=[tags_feature], dtype=str)[tags_feature]
        for cell in column.dropna():
            if not spans:
                found.update(cell.split())
                continue
            try:
                kinds = {span[2] for span in json.loads(cell) if isinstance(span, list) and len(span) == 3}
            except (ValueError, TypeError):
                continue  # ExampleValidator's row check names the row
            found.update(f"{prefix}-{kind}" for kind in kinds for prefix in "BI" if isinstance(kind, str))
    return sort_tags(found)


def row_check(words_feature: str, tags_feature: str, tags: Sequence[str], spans: bool = False) -> Dict:
    """ExampleValidator's row check (`tfx_pipeline.row_checks.token_classification_check`, or with `spans`
    `token_spans_check`)."""
    if spans:
        return {"task": TASK + "_spans", "feature": tags_feature, "text_feature": words_feature,
                "spans_feature": tags_feature, "tag_set": list(tags)}
    return {"task": TASK, "feature": tags_feature, "words_feature": words_feature,
            "tags_feature": tags_feature, "tag_set": list(tags)}


def words_and_tags(words_or_text, tags_or_spans, spans: bool):
    """String [batch] columns -> `(words, tags)` string RaggedTensors [batch, (words)] (graph ops)."""
    import tensorflow as tf

    from tfmodels.text.alignment import word_tags_from_char_spans
    from tfx_pipeline.row_checks import SPAN_NOISE

    if not spans:
        return tf.strings.split(words_or_text), tf.strings.split(tags_or_spans)
    values = tf.strings.split(tf.strings.regex_replace(tags_or_spans, SPAN_NOISE, ""), ",")
    values = tf.ragged.boolean_mask(values, tf.strings.length(values) > 0)
    triples = tf.reshape(values.flat_values, [-1, 3])
    lengths = values.row_lengths() // 3
    ragged = lambda column: tf.RaggedTensor.from_row_lengths(column, lengths)  # noqa: E731
    return word_tags_from_char_spans(words_or_text, ragged(tf.strings.to_number(triples[:, 0], tf.int64)),
                                     ragged(tf.strings.to_number(triples[:, 1], tf.int64)), ragged(triples[:, 2]))


def _preprocessor(hparams):
    from tfmodels.models.bert.token_classifier import TokenClassifierPreprocessor
    from tfmodels.text import BertTokenizer

    tokenizer = BertTokenizer.from_vocab_file(hparams.vocab_file, lowercase=True)
    return TokenClassifierPreprocessor(tokenizer, list(hparams.class_names), hparams.max_seq_length)


def preprocessing_fn(inputs, hparams, dense_1d):
    """Raw `{words, tags}` -> encoder inputs and per-piece `label_ids` / `label_weights` (int64 / float32
    [batch, T]); the first window of each row. Only training reads this graph: the export tokenizes with
    the same tokenizer and vocabulary inside the model (`TokenClassifierPreprocessor`), windows included."""
    import tensorflow as tf

    words_feature, tags_feature = hparams.text_features[0], hparams.label_feature
    words, tags = words_and_tags(dense_1d(inputs[words_feature], b""), dense_1d(inputs[tags_feature], b""),
                                 hparams.entity_spans)
    x, labels, weights = _preprocessor(hparams).align_tensors(words, tags, first_window_only=True)
    outputs = {name: tf.cast(value, tf.int64) for name, value in x.items()}
    outputs.update({LABEL_IDS: tf.cast(labels, tf.int64), LABEL_WEIGHTS: weights})
    return outputs


def train_and_export(fn_args, hparams, tf_transform_output, encoder, callbacks):
    """Fine-tunes a `BertTokenClassifier` on Transform's output and exports `extract_entities` + the
    Evaluator's `serving_default` to `fn_args.serving_model_dir`."""
    import tensorflow as tf

    from tfmodels.export import export_token_classifier
    from tfmodels.export.signatures import EXAMPLES_INPUT
    from tfmodels.models.bert.token_classifier import BertTokenClassifier
    from tfx_pipeline.hparams import MODEL_INPUTS
    from tfx_pipeline.training import compressed, fine_tune, transformed_dataset

    def dataset(files, shuffle):
        return transformed_dataset(fn_args, files, tf_transform_output, hparams.batch_size, shuffle).map(
            lambda f: ({name: tf.cast(f[name], tf.int32) for name in MODEL_INPUTS},
                       tf.cast(f[LABEL_IDS], tf.int32), f[LABEL_WEIGHTS]))

    model = BertTokenClassifier(encoder, len(hparams.class_names), preprocessor=_preprocessor(hparams))
    fine_tune(model, fn_args, hparams, dataset, callbacks)
    model = compressed(model, fn_args, hparams, dataset)
    extra = {}
    if hparams.entity_spans:  # the Evaluator's gold word tags, from the same graph as training's
        spec = {name: tf.io.FixedLenFeature([], tf.string, default_value="")
                for name in (hparams.text_features[0], hparams.label_feature)}

        def gold_tags(examples):
            features = tf.io.parse_example(examples, spec)
            _, tags = words_and_tags(features[hparams.text_features[0]], features[hparams.label_feature], True)
            return {GOLD_TAGS: tf.strings.reduce_join(tags, axis=1, separator=" ")}

        extra[GOLD_TAGS] = (gold_tags, [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    export_token_classifier(fn_args.serving_model_dir, model, warmup_texts=["a warmup request"],
                            model_name=hparams.model_name, words_feature=hparams.text_features[0],
                            extra_endpoints=extra)


def eval_config(tags_feature: str, min_f1: float, spans: bool = False):
    """Entity precision/recall/F1 of `predicted_tags` against the tags column (with `spans`, against the
    gold tags the export's `gold_tags` signature makes of the spans column); gated on `entity_f1`."""
    from tfmodels.export.signatures import DEFAULT_SIGNATURE, PREDICTED_TAGS_OUTPUT
    from tfx_pipeline.metrics import EntityScores, task_eval_config

    if spans:
        return task_eval_config(DEFAULT_SIGNATURE, GOLD_TAGS, PREDICTED_TAGS_OUTPUT, EntityScores.__name__, min_f1,
                                preprocessing_function_names=[GOLD_TAGS])
    return task_eval_config(DEFAULT_SIGNATURE, tags_feature, PREDICTED_TAGS_OUTPUT, EntityScores.__name__, min_f1)
