"""Edits to a written SavedModel's `saved_model.pb` that TF 2's `tf.saved_model.save` has no option for."""

import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

SAVED_MODEL_FILE = "saved_model.pb"
FINGERPRINT_FILE = "fingerprint.pb"


def read_saved_model(export_dir: str) -> saved_model_pb2.SavedModel:
    """The SavedModel proto at `export_dir`."""
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(export_dir, SAVED_MODEL_FILE), "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def set_method_name(export_dir: str, signature: str, method_name: str) -> None:
    """Set the `method_name` of `signature` in every MetaGraph of the SavedModel at `export_dir`.

    TF 2 writes every signature as `tensorflow/serving/predict`; TF Serving's Classify and Regress APIs check
    for their own method name (when `--enable_signature_method_name_check` is on, and in older servers always).
    The fingerprint is recomputed, since it covers `saved_model.pb`.
    """
    proto = read_saved_model(export_dir)
    found = False
    for meta_graph in proto.meta_graphs:
        if signature in meta_graph.signature_def:
            meta_graph.signature_def[signature].method_name = method_name
            found = True
    if not found:
        raise KeyError(f"no signature {signature!r} in the SavedModel at {export_dir}")
    with tf.io.gfile.GFile(os.path.join(export_dir, SAVED_MODEL_FILE), "wb") as f:
        f.write(proto.SerializeToString(deterministic=True))
    _rewrite_fingerprint(export_dir)


def _rewrite_fingerprint(export_dir: str) -> None:
    fingerprint_path = os.path.join(export_dir, FINGERPRINT_FILE)
    if not tf.io.gfile.exists(fingerprint_path):
        return
    # TF's own fingerprinting (what tf.saved_model.save calls); private, so a failure leaves the old file,
    # which TensorFlow only reads for logging and metrics.
    try:
        from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting
        serialized = fingerprinting.CreateFingerprintDef(export_dir)
    except Exception:  # noqa: BLE001 - an informational file; never fail an export over it
        return
    with tf.io.gfile.GFile(fingerprint_path, "wb") as f:
        f.write(serialized)
