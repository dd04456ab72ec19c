"""tfmodels.export: a tiny BertClassifier with the tokenizer in the graph, exported for TF Serving.

Checks the three signatures (contract and values), the Classify method name, the warmup file, loading in a
fresh process where `tensorflow_text` cannot be imported, and Predict + Classify through `serving.server`.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels import export
from tfmodels.export.saved_model_proto import read_saved_model

TEXTS = ["a wonderful, moving film", "dull and far too long", "I laughed, I cried"]
CLASS_NAMES = ("negative", "positive")
MODEL_NAME = "reviews"
SEQUENCE_LENGTH = 16


def _tiny_vocab(tmp_path):
    words = sorted({w.strip(",.") for t in TEXTS for w in t.lower().split()})
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "##s", "##ed", "##ing"]) + "\n")
    return str(path)


@pytest.fixture(scope="module", params=["float32", "int8"])
def exported(request, tmp_path_factory):
    """(export_dir, keras model, preprocessor) of a tiny random classifier exported as version 1, as is
    and int8-quantized (`model.quantize("int8")`): a compressed model exports like any other."""
    tmp = tmp_path_factory.mktemp("export")
    tokenizer = tfmodels.text.BertTokenizer.from_vocab_file(_tiny_vocab(tmp), lowercase=True)
    preprocessor = tfmodels.text.BertPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    config = tfmodels.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=SEQUENCE_LENGTH)
    model = tfmodels.BertClassifier(tfmodels.BertEncoder(config), num_classes=2)
    model(preprocessor(tf.constant(TEXTS)))
    if request.param == "int8":
        model.quantize("int8")
    export_dir = str(tmp / MODEL_NAME / "1")
    export.export_text_classifier(
        export_dir, model, export.text_preprocess(preprocessor, ["review"]), text_features=["review"],
        class_names=CLASS_NAMES, warmup_texts={"review": TEXTS[:2]}, model_name=MODEL_NAME)
    return export_dir, model, preprocessor


def _expected_probabilities(model, preprocessor):
    return tf.nn.softmax(model(preprocessor(tf.constant(TEXTS)), training=False), axis=-1).numpy()


def test_the_export_holds_each_weight_once_in_its_dtype(exported):
    """Every variable of the model is in the checkpoint exactly once (Keras' archive alone writes each twice,
    `tfmodels.export.archive`), int8 kernels as int8."""
    export_dir, model, _ = exported
    reader = tf.train.load_checkpoint(os.path.join(export_dir, "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    saved = sorted((tuple(shape), dtypes[name].name) for name, shape in reader.get_variable_to_shape_map().items()
                   if name != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert saved == sorted((tuple(v.shape), v.dtype) for v in model.variables)
    saved_int8 = [key for key in saved if key[1] == "int8"]
    assert len(saved_int8) == len([w for w in model.weights if w.dtype == "int8"])
    assert bool(saved_int8) == (model.get_layer("logits").quantization_mode == "int8")


def test_signatures_and_method_names(exported):
    export_dir, _, _ = exported
    signatures = read_saved_model(export_dir).meta_graphs[0].signature_def
    assert {"serving_default", export.TEXT_SIGNATURE, export.PREDICT_EXAMPLES_SIGNATURE,
            export.CLASSIFY_SIGNATURE} <= set(signatures)
    # Issue 33: serving_default takes raw text, as every task's; the tf.Example signature has its own name.
    assert set(signatures["serving_default"].inputs) == {"review"}
    assert set(signatures[export.TEXT_SIGNATURE].inputs) == {"review"}
    assert set(signatures[export.PREDICT_EXAMPLES_SIGNATURE].inputs) == {export.EXAMPLES_INPUT}
    classify = signatures[export.CLASSIFY_SIGNATURE]
    assert classify.method_name == export.CLASSIFY_METHOD_NAME
    assert set(classify.inputs) == {export.CLASSIFY_INPUT}
    assert classify.outputs["classes"].dtype == tf.string.as_datatype_enum
    assert classify.outputs["scores"].dtype == tf.float32.as_datatype_enum
    assert set(signatures["serving_default"].outputs) == {"probabilities", "label", "label_name"}


def test_signature_values_match_the_model(exported):
    export_dir, model, preprocessor = exported
    expected = _expected_probabilities(model, preprocessor)
    loaded = tf.saved_model.load(export_dir)
    by_text = loaded.signatures[export.TEXT_SIGNATURE](review=tf.constant(TEXTS))
    np.testing.assert_allclose(by_text["probabilities"].numpy(), expected, atol=1e-5)
    examples = tf.constant(export.make_examples({"review": TEXTS}, labels=[1, 0, 1]))
    by_default = loaded.signatures["serving_default"](review=tf.constant(TEXTS))
    np.testing.assert_allclose(by_default["probabilities"].numpy(), expected, atol=1e-5)
    by_example = loaded.signatures[export.PREDICT_EXAMPLES_SIGNATURE](examples=examples)
    np.testing.assert_allclose(by_example["probabilities"].numpy(), expected, atol=1e-5)
    assert by_example["label_name"].numpy().tolist() == [
        CLASS_NAMES[i].encode() for i in expected.argmax(-1)]
    classified = loaded.signatures[export.CLASSIFY_SIGNATURE](inputs=examples)
    assert classified["classes"].numpy().tolist() == [[c.encode() for c in CLASS_NAMES]] * len(TEXTS)
    np.testing.assert_allclose(classified["scores"].numpy(), expected, atol=1e-5)


def test_warmup_file_has_one_request_per_signature(exported):
    export_dir, _, _ = exported
    logs = export.read_warmup_requests(export_dir)
    kinds = [log.WhichOneof("log_type") for log in logs]
    assert kinds == ["predict_log", "predict_log", "predict_log", "classify_log"]
    assert [log.predict_log.request.model_spec.signature_name for log in logs[:3]] == [
        export.PREDICT_EXAMPLES_SIGNATURE, "serving_default", export.TEXT_SIGNATURE]
    assert set(logs[1].predict_log.request.inputs) == {"review"}
    assert logs[3].classify_log.request.model_spec.name == MODEL_NAME
    assert len(logs[3].classify_log.request.input.example_list.examples) == 2


def test_loads_in_a_fresh_process_without_tensorflow_text(exported):
    export_dir, model, preprocessor = exported
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["tensorflow_text"] = None  # any import of it now fails
        import tensorflow as tf
        loaded = tf.saved_model.load({export_dir!r})
        out = loaded.signatures["predict_text"](review=tf.constant({TEXTS!r}))
        print(json.dumps(out["probabilities"].numpy().tolist()))
        assert "tensorflow_text" not in [m for m, v in sys.modules.items() if v is not None]
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    probabilities = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(probabilities, _expected_probabilities(model, preprocessor), atol=1e-5)


def test_model_server_answers_predict_and_classify_on_raw_text(exported):
    from serving.client import GrpcClient, text_examples
    from serving.server import ModelServer

    export_dir, model, preprocessor = exported
    expected = _expected_probabilities(model, preprocessor)
    server = ModelServer(model_base_path=os.path.dirname(export_dir), model_name=MODEL_NAME, port=0,
                         rest_api_port=None, file_system_poll_wait_seconds=0)
    with server, GrpcClient(f"127.0.0.1:{server.grpc_port}", timeout=60) as client:
        predicted = client.predict(MODEL_NAME, {"review": np.array([t.encode() for t in TEXTS])},
                                   signature_name=export.TEXT_SIGNATURE)
        np.testing.assert_allclose(predicted["probabilities"], expected, atol=1e-5)
        classified = client.classify(MODEL_NAME, text_examples(TEXTS, feature_name="review"),
                                     signature_name=export.CLASSIFY_SIGNATURE)
    assert [[label for label, _ in row] for row in classified] == [list(CLASS_NAMES)] * len(TEXTS)
    np.testing.assert_allclose([[score for _, score in row] for row in classified], expected, atol=1e-5)
