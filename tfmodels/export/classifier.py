"""The SavedModel of a text classifier for TF Serving: three signatures over one tokenize-and-classify graph.

Signatures (all share one graph, so every entry point tokenizes exactly as training did):

- `serving_default` and `predict_text`: one DT_STRING [batch] input of raw text per text feature, keyed by the
  feature name -> `probabilities` (DT_FLOAT [batch, n]), `label` (DT_INT64 [batch]), `label_name` (DT_STRING
  [batch]). Raw text in, as every task's `serving_default`.
- `predict_examples`: `examples` (DT_STRING [batch], serialized tf.Example with one bytes feature per text
  feature) -> the same outputs. The signature TFX's Evaluator uses (it was `serving_default` until issue 33).
- `classify`: `inputs` (serialized tf.Example) -> `classes` (DT_STRING [batch, n]), `scores` (DT_FLOAT
  [batch, n]); its method name is `tensorflow/serving/classify`, so TF Serving's Classify RPC accepts it.
"""

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from tfmodels.export.archive import write_archive
from tfmodels.export.saved_model_proto import set_method_name
from tfmodels.export.signatures import (
    CLASSIFY_INPUT,
    CLASSIFY_METHOD_NAME,
    CLASSIFY_OUTPUT_CLASSES,
    CLASSIFY_OUTPUT_SCORES,
    CLASSIFY_SIGNATURE,
    DEFAULT_SIGNATURE,
    EXAMPLES_INPUT,
    LABEL_NAME_OUTPUT,
    LABEL_OUTPUT,
    PREDICT_EXAMPLES_SIGNATURE,
    PROBABILITIES_OUTPUT,
    TEXT_SIGNATURE,
)
from tfmodels.export.warmup import write_warmup_requests
from tfmodels.export.xla import DEFAULT_BATCH_BUCKETS, batch_bucketed, check_batch_buckets

Preprocess = Callable[[Dict[str, tf.Tensor]], Dict[str, tf.Tensor]]


@dataclasses.dataclass(frozen=True)
class ClassifierSignatures:
    """The serving contract of an export: which text features it reads and which classes it names."""

    text_features: Tuple[str, ...]
    class_names: Tuple[str, ...]

    def __post_init__(self):
        if len(self.text_features) not in (1, 2):
            raise ValueError(f"a text classifier reads one text or a text pair, got {self.text_features}")
        if len(self.class_names) < 2:
            raise ValueError(f"a classifier needs at least two classes, got {self.class_names}")

    def example_spec(self) -> Dict[str, tf.io.FixedLenFeature]:
        """How the serving graph parses a tf.Example: every text feature required, one string each."""
        return {name: tf.io.FixedLenFeature([], tf.string) for name in self.text_features}


class TextPreprocess(tf.Module):
    """Adapts a text -> model-inputs layer (e.g. `tfmodels.text.BertPreprocessor`) to the feature-dict form.

    One feature is passed as a 1-D string tensor, a pair as a `(first, second)` tuple. It is a `tf.Module`
    so that exporting it tracks the preprocessor's resources (the tokenizer's lookup tables).
    """

    def __init__(self, preprocessor: Callable, text_features: Sequence[str]):
        super().__init__(name="text_preprocess")
        self.preprocessor = preprocessor
        self.text_features = tuple(text_features)

    def __call__(self, features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        texts = tuple(features[name] for name in self.text_features)
        return self.preprocessor(texts[0] if len(texts) == 1 else texts)


def text_preprocess(preprocessor: Callable, text_features: Sequence[str]) -> Preprocess:
    """`TextPreprocess(preprocessor, text_features)`: the feature-dict form of a text preprocessor."""
    return TextPreprocess(preprocessor, text_features)


def export_text_classifier(
    export_dir: str,
    model: keras.Model,
    preprocess: Preprocess,
    *,
    text_features: Sequence[str] = ("text",),
    class_names: Optional[Sequence[str]] = None,
    from_logits: bool = True,
    track: Sequence[Any] = (),
    warmup_texts: Optional[Mapping[str, Sequence[str]]] = None,
    model_name: str = "",
    jit_compile: bool = False,
    batch_buckets: Sequence[int] = DEFAULT_BATCH_BUCKETS,
) -> str:
    """Write `model`, fed by `preprocess`, as a TF Serving SavedModel at `export_dir`.

    Args:
        export_dir: the SavedModel directory (e.g. a TFX `serving_model_dir` or `<base>/<model>/<version>`).
        model: a Keras model from the dict `preprocess` returns to class scores [batch, n].
        preprocess: maps `{text_feature: DT_STRING [batch]}` to the model's input dict. It is the training
            preprocessing itself (a tokenizer layer, or a tf.Transform layer), so serving cannot skew from it.
        text_features: names of the text features: one, or two for text pairs. They are the tf.Example
            feature names and the input keys of `serving_default` and `predict_text`.
        class_names: one name per class, in class-id order; defaults to "0", "1", ...
        from_logits: whether the model returns logits (softmax is applied) or probabilities.
        track: objects holding resources `preprocess` uses (lookup tables, tf.Transform layers); `preprocess`
            itself is tracked when it is trackable.
        warmup_texts: when given, `{text_feature: [texts...]}` written as warmup requests for every signature.
        model_name: the model name put in the warmup requests' ModelSpec.
        jit_compile: compile the model (not the tokenizer) with XLA, one program per batch bucket
            (`tfmodels.export.xla`). Faster on CPU; stock TF Serving then needs
            `--xla_cpu_compilation_enabled=true`. The warmup file (if any) then holds one request per bucket,
            so every program is compiled before the version serves.
        batch_buckets: with `jit_compile`, the batch sizes compiled; a request runs padded to the next one
            (larger ones in chunks of the largest).

    Returns:
        `export_dir`.
    """
    if class_names is None:
        class_names = [str(i) for i in range(int(model.output_shape[-1]))]
    signatures = ClassifierSignatures(tuple(text_features), tuple(str(c) for c in class_names))
    names = tf.constant(signatures.class_names)
    batch_buckets = check_batch_buckets(batch_buckets)
    scores_of = lambda inputs: model(inputs, training=False)  # noqa: E731
    if jit_compile:
        scores_of = batch_bucketed(scores_of, batch_buckets)

    # One function the three signatures call: the SavedModel then holds the model's graph once, not three times
    # (1 MB of graph per copy for all-MiniLM-L6-v2).
    @tf.function(autograph=False, input_signature=[
        {name: tf.TensorSpec([None], tf.string, name=name) for name in signatures.text_features}])
    def probabilities_of(features: Dict[str, tf.Tensor]) -> tf.Tensor:
        scores = tf.cast(scores_of(preprocess(features)), tf.float32)
        return tf.nn.softmax(scores, axis=-1) if from_logits else scores

    def prediction(probabilities: tf.Tensor) -> Dict[str, tf.Tensor]:
        label = tf.argmax(probabilities, axis=-1)
        return {PROBABILITIES_OUTPUT: probabilities, LABEL_OUTPUT: label,
                LABEL_NAME_OUTPUT: tf.gather(names, label)}

    def parse(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
        return tf.io.parse_example(serialized, signatures.example_spec())

    def serve_examples(examples):
        return prediction(probabilities_of(parse(examples)))

    def serve_texts(*texts):
        return prediction(probabilities_of(dict(zip(signatures.text_features, texts))))

    def classify(inputs):
        probabilities = probabilities_of(parse(inputs))
        batch = tf.shape(probabilities)[0]
        return {CLASSIFY_OUTPUT_CLASSES: tf.tile(names[tf.newaxis], [batch, 1]),
                CLASSIFY_OUTPUT_SCORES: probabilities}

    archive = keras.export.ExportArchive()
    archive.track(model)
    for resource in (preprocess, *track):
        if isinstance(resource, tf.__internal__.tracking.Trackable):
            archive.track(resource)
    strings = lambda name: tf.TensorSpec([None], tf.string, name=name)  # noqa: E731
    text_inputs = [strings(name) for name in signatures.text_features]
    archive.add_endpoint(DEFAULT_SIGNATURE, serve_texts, input_signature=text_inputs)
    archive.add_endpoint(TEXT_SIGNATURE, serve_texts, input_signature=text_inputs)
    archive.add_endpoint(PREDICT_EXAMPLES_SIGNATURE, serve_examples, input_signature=[strings(EXAMPLES_INPUT)])
    archive.add_endpoint(CLASSIFY_SIGNATURE, classify, input_signature=[strings(CLASSIFY_INPUT)])
    write_archive(archive, export_dir)
    set_method_name(export_dir, CLASSIFY_SIGNATURE, CLASSIFY_METHOD_NAME)

    if warmup_texts is not None:
        write_warmup_requests(export_dir, warmup_texts, model_name=model_name,
                              text_signature_inputs=signatures.text_features,
                              batch_sizes=batch_buckets if jit_compile else ())
    return export_dir


__all__ = [
    "CLASSIFY_INPUT",
    "CLASSIFY_METHOD_NAME",
    "CLASSIFY_SIGNATURE",
    "EXAMPLES_INPUT",
    "PREDICT_EXAMPLES_SIGNATURE",
    "TEXT_SIGNATURE",
    "ClassifierSignatures",
    "TextPreprocess",
    "export_text_classifier",
    "text_preprocess",
]
