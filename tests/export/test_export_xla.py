"""tfmodels.export.xla: the model part of an export compiled with XLA, per batch bucket (issue 35).

A tiny random classifier exported with `jit_compile=True` must answer as the uncompiled model does at every
batch size (inside a bucket, between buckets, beyond the largest, none), keep XLA in the saved graph, warm up
each bucket, and be served by `serving.server` (which loads it as TF Serving does with XLA's CPU JIT on).
"""

import os

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels import export
from tfmodels.export.saved_model_proto import read_saved_model
from tfmodels.export.xla import batch_bucketed, check_batch_buckets

TEXTS = ["a wonderful, moving film", "dull and far too long", "I laughed, I cried", "too long", "moving",
         "a film", "dull"]
MODEL_NAME = "reviews"
BUCKETS = (1, 2, 4)
# XLA fuses and reorders float work; the probabilities of this tiny model agree to this (float32).
ATOL = 1e-5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xla_export")
    words = sorted({w.strip(",.") for t in TEXTS for w in t.lower().split()})
    vocab = tmp / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    preprocessor = tfmodels.text.BertPreprocessor(
        tfmodels.text.BertTokenizer.from_vocab_file(str(vocab), lowercase=True), sequence_length=12)
    config = tfmodels.BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=12)
    model = tfmodels.BertClassifier(tfmodels.BertEncoder(config), num_classes=2, preprocessor=preprocessor)
    export_dir = str(tmp / MODEL_NAME / "1")
    export.export(model, export_dir, warmup_texts={"text": TEXTS[:2]}, model_name=MODEL_NAME,
                  jit_compile=True, batch_buckets=BUCKETS)
    expected = tf.nn.softmax(model(preprocessor(tf.constant(TEXTS)), training=False), -1).numpy()
    return export_dir, expected


@pytest.mark.parametrize("rows", [1, 3, 4, 7, 0])
def test_every_batch_size_answers_as_the_uncompiled_model(exported, rows):
    """3 rows run padded to the bucket of 4; 7 rows (> the largest bucket) run as chunks of 4 and 3."""
    export_dir, expected = exported
    signature = tf.saved_model.load(export_dir).signatures[export.TEXT_SIGNATURE]
    probabilities = signature(text=tf.constant(TEXTS[:rows], tf.string))["probabilities"].numpy()
    assert probabilities.shape == (rows, 2)
    np.testing.assert_allclose(probabilities, expected[:rows], atol=ATOL)


def test_the_saved_graph_keeps_the_xla_function(exported):
    """The model's function carries `_XlaMustCompile` in the SavedModel: the loader compiles it, not only the
    exporting process."""
    export_dir, _ = exported
    library = read_saved_model(export_dir).meta_graphs[0].graph_def.library
    compiled = [f.signature.name for f in library.function if f.attr["_XlaMustCompile"].b]
    assert compiled, "no function of the export is marked for XLA"
    assert not any("StringSplit" in node.op or "Lookup" in node.op
                   for f in library.function if f.attr["_XlaMustCompile"].b for node in f.node_def), (
        "the tokenizer's string ops must stay outside the XLA function")


def test_warmup_compiles_every_bucket(exported):
    export_dir, _ = exported
    sizes = [len(log.predict_log.request.inputs["text"].string_val) for log in export.read_warmup_requests(
        export_dir) if log.predict_log.request.model_spec.signature_name == export.TEXT_SIGNATURE]
    assert sizes == [2, *BUCKETS]  # the ordinary request, then one per bucket


def test_model_server_serves_the_xla_export(exported):
    from serving.client import GrpcClient
    from serving.server import ModelServer

    export_dir, expected = exported
    server = ModelServer(model_base_path=os.path.dirname(export_dir), model_name=MODEL_NAME, port=0,
                         rest_api_port=None, file_system_poll_wait_seconds=0)  # the flag is on by default
    with server, GrpcClient(f"127.0.0.1:{server.grpc_port}", timeout=60) as client:
        predicted = client.predict(MODEL_NAME, {"text": np.array([t.encode() for t in TEXTS[:3]])},
                                   signature_name="serving_default")
    np.testing.assert_allclose(predicted["probabilities"], expected[:3], atol=ATOL)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="XLA on GPU needs no flag")
def test_without_the_flag_the_load_fails_naming_it(exported):
    """TF Serving's default (`--xla_cpu_compilation_enabled=false`, which ours reproduces when given): the XLA
    model does not serve on CPU."""
    from serving.errors import ServingError
    from serving.servable import Servable

    export_dir, _ = exported
    with pytest.raises(ServingError, match="--xla_cpu_compilation_enabled=true"):
        Servable.load(MODEL_NAME, 1, export_dir, xla_cpu_compilation_enabled=False)
    assert Servable.load(MODEL_NAME, 1, export_dir, xla_cpu_compilation_enabled=True).signatures


def test_batch_bucketed_pads_and_chunks_a_plain_function():
    run = tf.function(batch_bucketed(lambda x: {"y": x["x"] * 2.0}, batch_buckets=(4, 2)))
    for rows in (1, 2, 3, 5):
        x = tf.reshape(tf.range(rows * 3, dtype=tf.float32), [rows, 3])
        np.testing.assert_array_equal(run({"x": x})["y"].numpy(), x.numpy() * 2.0)


@pytest.mark.parametrize("buckets", [(), (0, 4), (-2,)])
def test_bad_buckets_are_refused_by_name(buckets):
    with pytest.raises(ValueError, match="batch_buckets"):
        check_batch_buckets(buckets)
