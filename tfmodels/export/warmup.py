"""TF Serving's SavedModel warmup file: `assets.extra/tf_serving_warmup_requests`.

A TFRecord of `PredictionLog` protos that TF Serving replays when it loads a version, before the version serves,
so the first real request does not pay for graph initialization. We write one Predict request per
signature that takes tensors (`serving_default`, `predict_text`, `predict_examples`) and one Classify request
(`classify`).
"""

import os
from typing import List, Mapping, Optional, Sequence

import tensorflow as tf

from tfmodels.export.examples import make_examples
from tfmodels.export.signatures import (
    CLASSIFY_SIGNATURE,
    DEFAULT_SIGNATURE,
    EXAMPLES_INPUT,
    PREDICT_EXAMPLES_SIGNATURE,
    TEXT_SIGNATURE,
    WARMUP_FILE,
)


def warmup_path(export_dir: str) -> str:
    return os.path.join(export_dir, WARMUP_FILE)


def predict_warmup_log(signature: str, inputs: Mapping[str, Sequence], *, model_name: str = ""):
    """One PredictionLog: a Predict request of `signature` with string `inputs` ({input key: values})."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
    for name, values in inputs.items():
        values = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def write_prediction_logs(export_dir: str, logs: Sequence) -> str:
    """Write PredictionLog protos as the warmup file of the SavedModel at `export_dir`; returns its path."""
    path = warmup_path(export_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def build_warmup_requests(texts: Mapping[str, Sequence[str]], *, model_name: str = "",
                          text_signature_inputs: Optional[Sequence[str]] = None,
                          batch_sizes: Sequence[int] = ()) -> List:
    """PredictionLog protos for `serving_default`, `predict_text`, `predict_examples` and `classify` on the same
    `texts`, then one `predict_text` request of each of `batch_sizes` rows (the texts repeated): an export
    compiled per batch bucket (`tfmodels.export.xla`) compiles every program during warmup."""
    # Imported here: the protos come from tensorflow-serving-api, needed only by exporters that write warmup.
    from tensorflow_serving.apis import (
        classification_pb2,
        model_pb2,
        predict_pb2,
        prediction_log_pb2,
    )

    serialized = make_examples(texts)
    spec = lambda signature: model_pb2.ModelSpec(name=model_name, signature_name=signature)  # noqa: E731

    examples_request = predict_pb2.PredictRequest(model_spec=spec(PREDICT_EXAMPLES_SIGNATURE))
    examples_request.inputs[EXAMPLES_INPUT].CopyFrom(tf.make_tensor_proto(serialized, dtype=tf.string))

    text_inputs = {name: texts[name] for name in text_signature_inputs or list(texts)}
    text_logs = [predict_warmup_log(signature, text_inputs, model_name=model_name)
                 for signature in (DEFAULT_SIGNATURE, TEXT_SIGNATURE)]
    bucket_logs = [predict_warmup_log(TEXT_SIGNATURE, {name: repeated(values, rows)
                                                       for name, values in text_inputs.items()},
                                      model_name=model_name)
                   for rows in batch_sizes]

    classify_request = classification_pb2.ClassificationRequest(model_spec=spec(CLASSIFY_SIGNATURE))
    for example in serialized:
        classify_request.input.example_list.examples.add().ParseFromString(example)

    return [
        prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=examples_request)),
        *text_logs,
        prediction_log_pb2.PredictionLog(
            classify_log=prediction_log_pb2.ClassifyLog(request=classify_request)),
        *bucket_logs,
    ]


def repeated(values: Sequence, rows: int) -> List:
    """`values` cycled to `rows` items."""
    if not values:
        raise ValueError("warmup needs at least one text per feature")
    return [values[i % len(values)] for i in range(int(rows))]


def write_warmup_requests(export_dir: str, texts: Mapping[str, Sequence[str]], *, model_name: str = "",
                          text_signature_inputs: Optional[Sequence[str]] = None,
                          batch_sizes: Sequence[int] = ()) -> str:
    """Write the warmup file of the SavedModel at `export_dir` (`build_warmup_requests`); returns its path."""
    logs = build_warmup_requests(texts, model_name=model_name, text_signature_inputs=text_signature_inputs,
                                 batch_sizes=batch_sizes)
    return write_prediction_logs(export_dir, logs)


def read_warmup_requests(export_dir: str) -> List:
    """The PredictionLog protos in the warmup file of the SavedModel at `export_dir`."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(warmup_path(export_dir)).as_numpy_iterator():
        logs.append(prediction_log_pb2.PredictionLog.FromString(record))
    return logs
