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
`BertTokenClassifier`; the export serves `extract_entities` = `serving_default` (raw text in) and, for the
Evaluator, `tag_examples` (tf.Example in, `predicted_tags` out). The Evaluator scores entity precision/recall/F1
(`tfx_pipeline.metrics.EntityScores`) and blesses on `entity_f1 >= --min-f1` and not below the baseline.
"""

import dataclasses
from typing import Dict, List, Sequence, Tuple

from tfx_pipeline.flags import flag, fraction
from tfx_pipeline.tasks import bert
from tfx_pipeline.tasks.base import GATE, Demo, Task, given_or_first_texts, served_header

NAME = "token_classification"

LABEL_IDS = "label_ids"  # Transform's outputs besides the encoder inputs
LABEL_WEIGHTS = "label_weights"
GOLD_TAGS = "gold_tags"  # spans input: the export's preprocessing signature, and its output the Evaluator reads
_PREFIX_ORDER = {"B": 0, "I": 1, "E": 2, "S": 3}


@dataclasses.dataclass(frozen=True)
class TokenClassificationOptions(bert.CompressibleOptions):
    """`words_feature` holds whitespace-separated words and `tags_feature` as many whitespace-separated tags; with
    `entity_spans`, `words_feature` is a text and `tags_feature` a JSON column of its entities' character spans.
    `tags`: the tag set, `O` first (`sort_tags`)."""

    words_feature: str = "tokens"
    tags_feature: str = "tags"
    entity_spans: bool = False
    tags: Tuple[str, ...] = ()
    min_f1: float = dataclasses.field(default=0.5, metadata=GATE)

    def problems(self) -> List[str]:
        return super().problems() + ([] if self.tags else ["tags must hold the tag set"])


TEXT_FEATURE = flag("--text-feature", action="append",
                    help="with --spans-feature, the text column (default: text)")
WORDS_FEATURE = flag("--words-feature", default="tokens", help="the column of whitespace-separated words")
TAGS_FEATURE = flag("--tags-feature", default="tags",
                    help="the column of whitespace-separated tags, one per word")
SPANS_FEATURE = flag("--spans-feature",
                     help="instead of words and tags, a JSON column of character spans [[start, end, \"type\"], "
                          "...] of the --text-feature column (default: none)")
TAG = flag("--tag", action="append", help="a tag of the tag set, repeatable (default: read from the data)")
# span_qa's --min-f1 too (the registry joins the two declarations' help texts).
MIN_F1 = flag("--min-f1", type=fraction, default=0.3,
              help="value threshold for the blessing (held-out entity F1; in [0, 1])")


def check_args(parser, args) -> None:
    if args.spans_feature and not args.data_root:
        parser.error("argument --spans-feature: the default WNUT-16 data has words and tags; give --data-root")
    if args.input_format == "tfrecord" and not args.tag:
        parser.error("argument --tag: token_classification on tfrecord input needs its tag set as --tag "
                     "(it is read from the data only for CSVs)")
    bert.check_encoder(parser, args)
    bert.check_compression(parser, args)


def options_from_args(args, data_root: str) -> TokenClassificationOptions:
    """The options; the tag set is `--tag`'s, else read from the CSVs in `data_root`."""
    spans = bool(args.spans_feature)
    words, tags = ((args.text_feature or ["text"])[0], args.spans_feature) if spans else (args.words_feature,
                                                                                           args.tags_feature)
    return TokenClassificationOptions(
        words_feature=words, tags_feature=tags, entity_spans=spans,
        tags=sort_tags(args.tag) if args.tag else tags_in_csv(data_root, tags, spans), min_f1=args.min_f1,
        encoder=bert.encoder_from_args(args), **bert.compression_from_args(args))


def prepare_data(args, directory: str) -> str:
    from tfx_pipeline import data

    return data.prepare_wnut_csv(directory, args.rows, words_feature=args.words_feature,
                                 tags_feature=args.tags_feature)


def schema(options: TokenClassificationOptions, columns):
    from tfx_pipeline.tasks.base import declared_schema

    return declared_schema((options.words_feature, options.tags_feature), columns)


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

    from tfx_pipeline.data_checks import csv_column

    found = set()
    for cell in csv_column(data_root, tags_feature, f"--task {NAME}'s tag set"):
        if cell and not spans:
            found.update(cell.split())
        elif cell:
            try:
                kinds = {span[2] for span in json.loads(cell) if isinstance(span, list) and len(span) == 3}
            except (ValueError, TypeError):
                continue  # ExampleValidator's row check names the row
            found.update(f"{prefix}-{kind}" for kind in kinds for prefix in "BI" if isinstance(kind, str))
    return sort_tags(found)


def row_check(options: TokenClassificationOptions) -> Dict:
    """ExampleValidator's row check (`tfx_pipeline.row_checks.token_classification_check`, or with spans
    `token_spans_check`)."""
    if options.entity_spans:
        return {"check": "token_spans_check", "feature": options.tags_feature,
                "text_feature": options.words_feature, "spans_feature": options.tags_feature,
                "tag_set": list(options.tags)}
    return {"check": "token_classification_check", "feature": options.tags_feature,
            "words_feature": options.words_feature, "tags_feature": options.tags_feature,
            "tag_set": list(options.tags)}


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

    return TokenClassifierPreprocessor(bert.tokenizer(hparams), list(hparams.options.tags), hparams.max_seq_length)


def preprocessing_fn(inputs, hparams):
    """Raw `{words, tags}` -> encoder inputs and per-piece `label_ids` / `label_weights` (int64 / float32
    [batch, T]); the first window of each row. Only training reads this graph: the export tokenizes with
    the same tokenizer and vocabulary inside the model (`TokenClassifierPreprocessor`), windows included."""
    import tensorflow as tf

    from tfx_pipeline.tasks.base import dense_1d

    options = hparams.options
    words, tags = words_and_tags(dense_1d(inputs[options.words_feature], b""),
                                 dense_1d(inputs[options.tags_feature], b""), options.entity_spans)
    x, labels, weights = _preprocessor(hparams).align_tensors(words, tags, first_window_only=True)
    outputs = {name: tf.cast(value, tf.int64) for name, value in x.items()}
    outputs.update({LABEL_IDS: tf.cast(labels, tf.int64), LABEL_WEIGHTS: weights})
    return outputs


def train_and_export(fn_args, hparams, tf_transform_output, callbacks):
    """Fine-tunes a `BertTokenClassifier` on Transform's output and exports `extract_entities` (also
    `serving_default`) + the Evaluator's `tag_examples` to `fn_args.serving_model_dir`."""
    import tensorflow as tf

    from tfmodels.export import export_token_classifier
    from tfmodels.export.signatures import EXAMPLES_INPUT
    from tfmodels.models.bert.token_classifier import BertTokenClassifier
    from tfx_pipeline.training import compressed, fine_tune, transformed_dataset

    def dataset(files, shuffle):
        return transformed_dataset(fn_args, files, tf_transform_output, hparams.batch_size, shuffle).map(
            lambda f: (bert.int32_inputs(f), tf.cast(f[LABEL_IDS], tf.int32), f[LABEL_WEIGHTS]))

    options = hparams.options
    model = BertTokenClassifier(bert.build_encoder(hparams), len(options.tags), preprocessor=_preprocessor(hparams))
    fine_tune(model, fn_args, hparams, dataset, callbacks)
    model = compressed(model, fn_args, options, dataset)
    extra = {}
    if options.entity_spans:  # the Evaluator's gold word tags, from the same graph as training's
        spec = {name: tf.io.FixedLenFeature([], tf.string, default_value="")
                for name in (options.words_feature, options.tags_feature)}

        def gold_tags(examples):
            features = tf.io.parse_example(examples, spec)
            _, tags = words_and_tags(features[options.words_feature], features[options.tags_feature], True)
            return {GOLD_TAGS: tf.strings.reduce_join(tags, axis=1, separator=" ")}

        extra[GOLD_TAGS] = (gold_tags, [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    export_token_classifier(fn_args.serving_model_dir, model, warmup_texts=["a warmup request"],
                            model_name=hparams.model_name, words_feature=options.words_feature,
                            extra_endpoints=extra)


def eval_config(options: TokenClassificationOptions):
    """Entity precision/recall/F1 of `predicted_tags` against the tags column (with spans, against the gold tags
    the export's `gold_tags` signature makes of the spans column); gated on `entity_f1 >= min_f1`."""
    from tfmodels.export.signatures import PREDICTED_TAGS_OUTPUT, TAG_EXAMPLES_SIGNATURE
    from tfx_pipeline.metrics import EntityScores, task_eval_config

    if options.entity_spans:
        return task_eval_config(TAG_EXAMPLES_SIGNATURE, GOLD_TAGS, PREDICTED_TAGS_OUTPUT, EntityScores.__name__,
                                options.min_f1, preprocessing_function_names=[GOLD_TAGS])
    return task_eval_config(TAG_EXAMPLES_SIGNATURE, options.tags_feature, PREDICTED_TAGS_OUTPUT, EntityScores.__name__,
                            options.min_f1)


# ---- after the push --------------------------------------------------------------------------------------------
def sample_requests(args, config, count: int) -> list:
    """`--sample-text`; else the data's first rows with an entity in their gold tags (most tweets have none),
    words joined by spaces, then the first rows."""
    from tfx_pipeline import data

    options = config.options
    if getattr(args, "sample_text", None) or options.entity_spans:
        return given_or_first_texts(args, config.data_root, options.words_feature, count)
    rows = data.sample_rows(config.data_root, (options.words_feature, options.tags_feature), count * 50)
    tagged = [words for words, tags in rows if set(tags.split()) - {"O"}]
    return (tagged + [words for words, _ in rows])[:count]


def query(model_base_path: str, model_name: str, options, texts: Sequence[str]) -> Dict:
    """One Predict on `extract_entities`: `{"version", "entities"}` (per text, a list of `{type, text, start,
    end, score}`)."""
    from tfmodels.export import signatures as sig
    from tfx_pipeline.infra_validation import ask_fresh_server

    version, outputs = ask_fresh_server(model_base_path, model_name, lambda client: client.predict(
        model_name, {sig.ENTITIES_TEXT_INPUT: list(texts)}, signature_name=sig.ENTITIES_SIGNATURE))
    entities = []
    for row, count in enumerate(outputs[sig.NUM_ENTITIES_OUTPUT].tolist()):
        entities.append([{"type": outputs[sig.ENTITY_TYPE_OUTPUT][row][k].decode(),
                          "text": outputs[sig.ENTITY_TEXT_OUTPUT][row][k].decode(),
                          "start": int(outputs[sig.ENTITY_START_OUTPUT][row][k]),
                          "end": int(outputs[sig.ENTITY_END_OUTPUT][row][k]),
                          "score": float(outputs[sig.ENTITY_SCORE_OUTPUT][row][k])} for k in range(count)])
    return {"version": version, "entities": entities}


def describe(texts: Sequence[str], answers: Dict) -> List[str]:
    from tfmodels.export.signatures import ENTITIES_SIGNATURE

    lines = [served_header(answers, ENTITIES_SIGNATURE, len(texts))]
    for text, entities in zip(texts, answers["entities"]):
        found = ", ".join(f"{e['text']!r}/{e['type']}" for e in entities) or "(no entity)"
        lines.append(f"  {text[:60]!r}: {found}")
    return lines


TASK = Task(
    name=NAME, summary="words -> one tag each (NER)", options=TokenClassificationOptions,
    flags=(TEXT_FEATURE, WORDS_FEATURE, TAGS_FEATURE, SPANS_FEATURE, TAG, bert.ENCODER, MIN_F1,
           *bert.COMPRESSION_FLAGS),
    check_args=check_args, options_from_args=options_from_args, data_name="wnut", prepare_data=prepare_data,
    learning_rate=bert.learning_rate, schema=schema, row_check=row_check, eval_config=eval_config,
    preprocessing_fn=preprocessing_fn, train_and_export=train_and_export, sample_requests=sample_requests,
    query=query, describe=describe, prepare=bert.prepare, compressible=True,
    # WNUT-16 tweets, 2:1 train/eval, sized for about 10 minutes on 2 CPU cores (measured: README "make demo
    # TASK=..."). The tagger sits at the all-`O` prior (entity F1 0) for the first ~500 steps (measured: 150 steps
    # of 32 and 500 of 16 gave 0.000); 900 steps of 16 leave it.
    demo=Demo(defaults=dict(encoder="minilm", rows=3000, train_steps=900, eval_steps=4, max_seq_length=64,
                            batch_size=16, learning_rate=3e-4, min_f1=0.2, precision="auto", model_name="wnut16_ner",
                            pipeline_name="tfmodels_ner_demo"),
              root="artifacts/demo_token_classification"))
