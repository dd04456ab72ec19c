"""The text classification task: text (or a text pair) -> class id, a fine-tuned `BertClassifier`.

Input: one text column (`--text-feature`, default `text`; give it twice for text pairs) and an integer class-id
column (`--label-feature`, `label`) of `--num-classes` classes. Transform tokenizes and packs with tfmodels.text;
Trainer fine-tunes a `BertClassifier` (compressed with `--distill-into` / `--quantize` when asked); the export
serves `serving_default` and `predict_text` (raw text in), `classify` (tf.Examples, TF Serving's Classify API) and
`predict_examples` (tf.Examples, the Evaluator's).
The Evaluator scores accuracy and AUC and blesses on `sparse_categorical_accuracy >= --min-accuracy` and not
below the baseline. The demo (`make demo`) fine-tunes MiniLM on IMDB reviews and asks the served model about
reviews the pipeline never saw, through both Predict and Classify.
"""

import dataclasses
import math
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

from tfx_pipeline.flags import flag, fraction, positive_int
from tfx_pipeline.tasks import bert
from tfx_pipeline.tasks.base import GATE, Demo, DemoError, Task, served_header

NAME = "classify"
IMDB_CLASS_NAMES = ["negative", "positive"]  # IMDB's label 0 and 1
SERVER_START_TIMEOUT = 300
REQUEST_TIMEOUT = 120


@dataclasses.dataclass(frozen=True)
class ClassifyOptions(bert.CompressibleOptions):
    """`text_features` (one, or two for pairs) -> `label_feature` (class ids in [0, num_classes)); `class_names`:
    one name per class id (the served `label_name` and Classify's classes; None: "0", "1", ...)."""

    text_features: Tuple[str, ...] = ("text",)
    label_feature: str = "label"
    num_classes: int = 2
    class_names: Optional[Tuple[str, ...]] = None
    min_accuracy: float = dataclasses.field(default=0.5, metadata=GATE)

    def problems(self) -> List[str]:
        problems = super().problems()
        if len(self.text_features) not in (1, 2):
            problems.append(f"text_features must be one or two columns, got {self.text_features}")
        if self.num_classes < 1:
            problems.append(f"num_classes must be >= 1, got {self.num_classes}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            problems.append(f"{self.num_classes} classes but {len(self.class_names)} class_names: {self.class_names}")
        return problems


TEXT_FEATURE = flag("--text-feature", action="append",
                    help="text column; give it twice for text pairs (default: text)")
LABEL_FEATURE = flag("--label-feature", default="label", help="integer class-id column")
NUM_CLASSES = flag("--num-classes", type=positive_int, default=2, help="number of classes of the label")
CLASS_NAME = flag("--class-name", action="append",
                  help="name of class 0, 1, ... in that order, repeatable (default: the class ids)")
MIN_ACCURACY = flag("--min-accuracy", type=fraction, default=0.6,
                    help="value threshold for the blessing (held-out accuracy)")


def check_args(parser, args) -> None:
    if args.text_feature and len(args.text_feature) > 2:
        parser.error(f"argument --text-feature: one text column, or two for pairs; got {args.text_feature}")
    if args.class_name is not None and len(args.class_name) != args.num_classes:
        parser.error(f"argument --class-name: {len(args.class_name)} names {args.class_name} for "
                     f"--num-classes {args.num_classes}")
    bert.check_encoder(parser, args)
    bert.check_compression(parser, args)


def options_from_args(args, data_root: str) -> ClassifyOptions:
    return ClassifyOptions(
        text_features=tuple(args.text_feature or ["text"]), label_feature=args.label_feature,
        num_classes=args.num_classes, class_names=args.class_name, min_accuracy=args.min_accuracy,
        encoder=bert.encoder_from_args(args), **bert.compression_from_args(args))


def prepare_data(args, directory: str) -> str:
    from tfx_pipeline import data

    return data.prepare_imdb_csv(directory, max_rows=args.rows)


def schema(options: ClassifyOptions, columns):
    """Texts present as strings in every row, the label an int in [0, num_classes); other columns declared."""
    from tfx_pipeline.schema import expected_schema

    others = {n: t for n, t in columns.items() if n not in set(options.text_features) | {options.label_feature}}
    return expected_schema(options.text_features, options.label_feature, options.num_classes, others)


def row_check(options: ClassifyOptions) -> Dict:
    """ExampleValidator's row check (`tfx_pipeline.row_checks.label_check`): a class id in every row, named by
    file and line when it is empty, not an integer or out of range (TFDV says only that the column has
    strings)."""
    return {"check": "label_check", "feature": options.label_feature, "label_feature": options.label_feature,
            "num_classes": options.num_classes}


def eval_config(options: ClassifyOptions):
    """Example count, accuracy and AUC; blessed when accuracy >= `min_accuracy` and not below the baseline.

    AUC is one-vs-rest per class (for two classes, class 1's AUC is the usual binary AUC); accuracy gates.
    """
    import tensorflow_model_analysis as tfma

    from tfmodels.export.signatures import PREDICT_EXAMPLES_SIGNATURE
    from tfx_pipeline.metrics import blessing_threshold

    auc_classes = [1] if options.num_classes == 2 else list(range(options.num_classes))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=PREDICT_EXAMPLES_SIGNATURE, label_key=options.label_feature,
                                    prediction_key="probabilities", preprocessing_function_names=[])],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                tfma.MetricConfig(class_name="SparseCategoricalAccuracy",
                                  threshold=blessing_threshold(options.min_accuracy))]),
            tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="AUC")],
                             binarize=tfma.BinarizationOptions(class_ids={"values": auc_classes})),
        ])


def preprocessing_fn(inputs, hparams):
    """Raw `{text..., label}` -> `{token_ids, segment_ids, padding_mask}` (int64 [batch, T]) and `label`."""
    import tensorflow as tf

    from tfmodels.text import BertPreprocessor
    from tfx_pipeline.tasks.base import dense_1d

    options = hparams.options
    preprocessor = BertPreprocessor(bert.tokenizer(hparams), sequence_length=hparams.max_seq_length)
    texts = tuple(dense_1d(inputs[name], b"") for name in options.text_features)
    packed = preprocessor(texts[0] if len(texts) == 1 else texts)
    outputs = {name: tf.cast(packed[name], tf.int64) for name in bert.MODEL_INPUTS}
    if options.label_feature in inputs:
        outputs[options.label_feature] = tf.cast(dense_1d(inputs[options.label_feature], -1), tf.int64)
    return outputs


def transformed_text_preprocess(tft_layer, text_features):
    """Raw texts `{feature: DT_STRING [batch]}` -> int32 model inputs, through Transform's own graph (a
    `tf.Module`, so that the export tracks what it holds)."""
    import tensorflow as tf

    class TransformedTextPreprocess(tf.Module):
        def __init__(self):
            super().__init__(name="transformed_text_preprocess")
            self.tft_layer = tft_layer

        def __call__(self, features):
            raw = {name: tf.reshape(features[name], [-1, 1]) for name in text_features}
            return bert.int32_inputs(self.tft_layer(raw))

    return TransformedTextPreprocess()


def train_and_export(fn_args, hparams, tf_transform_output, callbacks):
    """Fine-tunes a `BertClassifier` (then compresses it when asked) and exports `serving_default` and
    `predict_text` (raw text), `predict_examples` (the Evaluator's) and `classify` to `fn_args.serving_model_dir`."""
    import keras

    import tfmodels
    from tfmodels import export
    from tfx_pipeline.training import compressed, fine_tune, transformed_dataset

    options = hparams.options
    model = tfmodels.BertClassifier(bert.build_encoder(hparams), num_classes=options.num_classes)
    # Linear decay to 0 over the run, as for BERT fine-tuning: a short run still ends on small steps.
    schedule = keras.optimizers.schedules.PolynomialDecay(
        hparams.learning_rate, decay_steps=max(int(fn_args.train_steps), 1), end_learning_rate=0.0)

    def dataset(files, shuffle):
        return transformed_dataset(fn_args, files, tf_transform_output, hparams.batch_size, shuffle,
                                   label_key=options.label_feature).map(
            lambda features, labels: (bert.int32_inputs(features), labels))

    fine_tune(model, fn_args, hparams, dataset, callbacks, optimizer=keras.optimizers.AdamW(schedule),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["sparse_categorical_accuracy"])
    model = compressed(model, fn_args, options, dataset)
    tft_layer = tf_transform_output.transform_features_layer()
    text_features = list(options.text_features)
    export.export_text_classifier(
        fn_args.serving_model_dir, model, transformed_text_preprocess(tft_layer, text_features),
        text_features=text_features, class_names=options.class_names, track=[tft_layer],
        warmup_texts={name: ["a warmup request"] for name in text_features}, model_name=hparams.model_name)


# ---- after the push: requests, answers, the demo ---------------------------------------------------------------
def sample_requests(args, config, count: int) -> list:
    """`--sample-text`; else unseen IMDB reviews for the packaged data; else the data's first texts."""
    from tfx_pipeline import data

    if getattr(args, "sample_text", None):
        return list(args.sample_text)
    if args.data_root is None:
        return data.heldout_imdb_reviews(count, skip_rows=args.rows)
    return data.sample_texts(config.data_root, config.options.text_features[0], count)


def ask(client, model_name: str, text_feature: str, texts: Sequence[str]) -> Dict:
    """One Predict on the raw-text signature and one Classify (serialized tf.Examples): `{"labels",
    "probabilities", "classify"}` (classify: per text, its (class, score) pairs)."""
    from serving.client import text_examples
    from tfmodels.export.signatures import CLASSIFY_SIGNATURE, TEXT_SIGNATURE

    outputs = client.predict(model_name, {text_feature: list(texts)}, signature_name=TEXT_SIGNATURE)
    classified = client.classify(model_name, text_examples(list(texts), text_feature),
                                 signature_name=CLASSIFY_SIGNATURE)
    return {"labels": [name.decode() for name in outputs["label_name"].tolist()],
            "probabilities": outputs["probabilities"].tolist(),
            "classify": [[[label.decode() if isinstance(label, bytes) else label, float(score)]
                          for label, score in row] for row in classified]}


def query(model_base_path: str, model_name: str, options: ClassifyOptions, texts: Sequence[str]) -> Dict:
    """`ask` a fresh server: `{"version", "labels", "probabilities", "classify"}`."""
    from tfx_pipeline.infra_validation import ask_fresh_server

    version, answers = ask_fresh_server(model_base_path, model_name,
                                        lambda client: ask(client, model_name, options.text_features[0], texts))
    return {"version": version, **answers}


def describe(texts: Sequence[str], answers: Dict) -> List[str]:
    from tfmodels.export.signatures import TEXT_SIGNATURE

    lines = [served_header(answers, f"{TEXT_SIGNATURE} and Classify", len(texts))]
    for text, label, probabilities in zip(texts, answers["labels"], answers["probabilities"]):
        lines.append(f"  {label:>8}  p={max(probabilities):.3f}  {text[:90]}")
    return lines


def check_answers(answers: Dict, count: int, class_names: Sequence[str]) -> None:
    """Raises DemoError unless every text got a probability distribution, its argmax label, and the same
    class scores from Classify."""
    problems = []
    if not (len(answers["labels"]) == len(answers["probabilities"]) == len(answers["classify"]) == count):
        problems.append(f"expected {count} answers from each API, got {len(answers['labels'])} labels, "
                        f"{len(answers['probabilities'])} probability rows, "
                        f"{len(answers['classify'])} classifications")
    for i, (label, row, classes) in enumerate(zip(answers["labels"], answers["probabilities"],
                                                  answers["classify"])):
        if len(row) != len(class_names) or not all(math.isfinite(p) and 0 <= p <= 1 for p in row) \
                or abs(sum(row) - 1) > 1e-3:
            problems.append(f"text {i}: not a probability distribution over {len(class_names)} classes: {row}")
            continue
        if label != class_names[max(range(len(row)), key=row.__getitem__)]:
            problems.append(f"text {i}: label {label!r} is not the most probable class of {row}")
        if [c for c, _ in classes] != list(class_names) or \
                any(abs(score - p) > 1e-4 for (_, score), p in zip(classes, row)):
            problems.append(f"text {i}: Classify answered {classes}, Predict {row}")
    if problems:
        raise DemoError("the served model answered wrongly:\n  " + "\n  ".join(problems))


def _snippet(text: str, width: int) -> str:
    text = " ".join(text.replace("<br />", " ").split())
    return text if len(text) <= width else text[:width - 3] + "..."


def format_answers(reviews: Sequence[Tuple[str, Optional[int]]], answers: Dict,
                   class_names: Sequence[str], width: int = 72) -> str:
    lines = [f"  {'true':<9} {'predicted':<9} {'p':>5}  review"]
    for (text, truth), label, row in zip(reviews, answers["labels"], answers["probabilities"]):
        true_name = class_names[truth] if truth is not None else "?"
        lines.append(f"  {true_name:<9} {label:<9} {max(row):5.3f}  {_snippet(text, width)}")
    return "\n".join(lines)


def _heldout_reviews(count: int, skip_rows: int) -> List[Tuple[str, int]]:
    """`count` labelled IMDB reviews outside the pipeline's data, half of each label when possible."""
    from tfx_pipeline import data

    candidates = data.heldout_imdb_examples(max(count * 5, 20), skip_rows=skip_rows)
    by_label = {0: [r for r in candidates if r[1] == 0], 1: [r for r in candidates if r[1] == 1]}
    picked = [r for pair in zip(by_label[1], by_label[0]) for r in pair][:count]
    return picked if len(picked) == count else candidates[:count]


def serve_in_demo(args, config, root: str, result: Dict) -> None:
    """`python -m serving.server` on the pushed base path in a fresh process, then Predict and Classify on
    held-out IMDB reviews (or the data's first texts); checks and prints the answers (into `result`). Raises
    DemoError or ServerProcessError."""
    from serving.client import GrpcClient
    from serving.process import ServerProcess

    options = config.options
    class_names = list(options.class_names or [str(i) for i in range(options.num_classes)])
    if args.data_root is None:
        reviews = _heldout_reviews(args.reviews, args.rows)
    else:
        from tfx_pipeline import data

        reviews = [(text, None) for text in data.sample_texts(config.data_root, options.text_features[0],
                                                              args.reviews)]
    serve_start = time.monotonic()
    # Entering waits until the model is AVAILABLE; leaving stops it with SIGTERM, SIGKILL after 30 s.
    server = ServerProcess([f"--model_name={config.model_name}", f"--model_base_path={config.model_base_path()}"],
                           model_name=config.model_name, log_path=os.path.join(root, "server.log"),
                           start_timeout=SERVER_START_TIMEOUT)
    with server:
        result["server_pid"] = server.pid
        print(f"Listening on 127.0.0.1:{server.grpc_port} after {time.monotonic() - serve_start:.0f} s; "
              f"sending {len(reviews)} IMDB reviews the pipeline never saw", flush=True)
        with GrpcClient(f"127.0.0.1:{server.grpc_port}", timeout=REQUEST_TIMEOUT) as client:
            available = [s["version"] for s in client.status(config.model_name) if s["state"] == "AVAILABLE"]
            if not available:
                raise DemoError(f"no AVAILABLE version of {config.model_name}: {client.status(config.model_name)}")
            answers = {"version": int(max(available)),
                       **ask(client, config.model_name, options.text_features[0], [text for text, _ in reviews])}
        check_answers(answers, len(reviews), class_names)
    result["server_exit_code"] = server.exit_code
    result["serving_seconds"] = time.monotonic() - serve_start
    result["answers"] = answers
    result["reviews"] = [{"text": text, "label": truth} for text, truth in reviews]
    print(f"gRPC Predict (signature predict_text) -> model {config.model_name}, version "
          f"{answers['version']}; Classify (signature classify) gave the same scores:")
    print(format_answers(reviews, answers, class_names))
    known = [(truth, label) for (_, truth), label in zip(reviews, answers["labels"]) if truth is not None]
    if known:
        right = sum(class_names[truth] == label for truth, label in known)
        print(f"  {right}/{len(known)} right (these few are an illustration; the accuracy above is "
              f"the measurement)")
    print(f"Server stopped (exit status {server.exit_code}).")
    if server.exit_code != 0:
        raise DemoError(f"the server exited with status {server.exit_code}; log: {server.log_path}")


def _demo_class_names(args) -> None:
    if args.class_name is None and args.data_root is None:
        args.class_name = list(IMDB_CLASS_NAMES)


# Held-out accuracy at most this far above the majority class's share counts as "has not learned yet".
NEAR_MAJORITY = 0.05
MAJORITY_ROWS = 200_000  # label cells counted for the majority share (a sample of a bigger data set)


def majority_share(config) -> Optional[float]:
    """The share of the most frequent label in the CSV data (the accuracy of always answering it), or None: not
    CSV input, or data the pipeline's own checks refuse (they name the problem when the run reads it)."""
    import collections
    import itertools

    from tfx_pipeline.data_checks import DataError, csv_column

    if config.input_format != "csv":
        return None
    try:
        counts = collections.Counter(itertools.islice(
            csv_column(config.data_root, config.options.label_feature, "the label"), MAJORITY_ROWS))
    except (OSError, DataError):
        return None
    total = sum(counts.values())
    return max(counts.values()) / total if total else None


def not_blessed_hint(config, metric: str, value: float) -> str:
    """What to try when the accuracy sits near the majority-class baseline ("" otherwise)."""
    if "accuracy" not in metric:
        return ""
    share = majority_share(config)
    if share is None or not value <= share + NEAR_MAJORITY:
        return ""
    tips = [f"more training steps (--train-steps, now {config.train_steps}; e.g. {config.train_steps * 4})",
            f"a larger learning rate (--learning-rate, now {config.learning_rate:g}; e.g. "
            f"{config.learning_rate * 2:g} to {config.learning_rate * 4:g}: the rate decays to 0 over the run, so "
            f"a short run takes small steps)"]
    if config.options.encoder == "tiny":
        tips.append("the pretrained encoder (--encoder minilm) instead of the random tiny one")
    return (f"\nHint: {metric} {value:.4f} is near {share:.4f}, what always answering the most frequent label "
            f"scores on this data: the model has not learned the task yet. Try " + "; ".join(tips) + ".")


TASK = Task(
    name=NAME, summary="text -> class id", options=ClassifyOptions,
    flags=(TEXT_FEATURE, LABEL_FEATURE, NUM_CLASSES, CLASS_NAME, bert.ENCODER, MIN_ACCURACY,
           *bert.COMPRESSION_FLAGS),
    check_args=check_args, options_from_args=options_from_args, data_name="imdb", prepare_data=prepare_data,
    learning_rate=bert.learning_rate, schema=schema, row_check=row_check, eval_config=eval_config,
    preprocessing_fn=preprocessing_fn, train_and_export=train_and_export, sample_requests=sample_requests,
    query=query, describe=describe, prepare=bert.prepare, compressible=True, not_blessed_hint=not_blessed_hint,
    # Sized for under 5 minutes on 2 CPU cores (the Trainer is about 2/3 of it) with held-out accuracy ~0.8;
    # measured: README "make demo". 1,500 rows split 2:1 into ~1,000 train / ~500 eval reviews (64 x 32 = 2 epochs).
    demo=Demo(defaults=dict(encoder="minilm", rows=1500, train_steps=64, eval_steps=4, max_seq_length=128,
                            batch_size=32, learning_rate=1e-4, min_accuracy=0.7, precision="auto",
                            model_name="imdb_sentiment", pipeline_name="tfmodels_imdb_demo"),
              root="artifacts/demo", adjust_args=_demo_class_names,
              metrics_note=lambda metrics: f", AUC {metrics.get('auc/class_1', float('nan')):.4f} (chance 0.5)",
              serve=serve_in_demo))
