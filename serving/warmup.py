"""Model warmup: replay assets.extra/tf_serving_warmup_requests before a version becomes AVAILABLE."""

import os

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving import inference
from serving.errors import invalid_argument
from serving.servable import Servable

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000

# PredictionLog field -> the inference function that replays its request.
_REPLAY = {
    "predict_log": inference.predict,
    "classify_log": inference.classify,
    "regress_log": inference.regress,
    "multi_inference_log": inference.multi_inference,
}


def run_warmup(servable: Servable) -> int:
    """Replay the version's warmup records (a missing file is fine); returns how many ran.

    A record that fails fails the load, as in TF Serving: a version that cannot answer its own warmup requests
    must not become AVAILABLE.
    """
    path = os.path.join(servable.path, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(path):
        count += 1
        if count > MAX_WARMUP_RECORDS:
            raise invalid_argument(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = log.WhichOneof("log_type")
        if kind not in _REPLAY:
            raise invalid_argument(f"Unsupported log_type for warmup: {kind}")
        _REPLAY[kind](servable, getattr(log, kind).request)
    return count
