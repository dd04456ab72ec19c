"""tfmodels.export.litert: a tiny BertClassifier as a LiteRT flatbuffer, run by the LiteRT runtime.

Checks that the token-id file (float32, and dynamic-range int8) gives the Keras logits, at dynamic
and fixed batch sizes, that bad inputs are refused by name, and that the tokenizer-in variant is
opt-in and needs TF Select ops (so `tf.lite.Interpreter`, not the LiteRT runtime).
"""

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels.export import litert

SEQUENCE_LENGTH = 16
NUM_CLASSES = 3
TEXTS = [
    "a wonderful, moving film",
    "dull and far too long",
    "I laughed, I cried",
    "the actors were great but the plot was thin and the ending made no sense at all to me",
    "great",
    "not the worst film of the year, though close",
    "boring boring boring",
    "what a strange, lovely story about two old friends",
    "the music was loud",
    "I would watch it again tomorrow with my family and friends",
    "bad",
    "an honest film about a small town",
]
# fp32: LiteRT and TF differ only by op order and the erf approximation (|error| < 5e-7).
FP32_ATOL = 1e-4
# int8 (int8 weights, inputs of each matmul quantized per row on the fly): logits O(1) move by
# a few hundredths on this model; 0.1 leaves room without hiding a broken conversion.
INT8_ATOL = 0.1
INT8_MIN_ARGMAX_AGREEMENT = 0.8


def _vocab():
    words = sorted({w.strip(",.").lower() for t in TEXTS for w in t.split()})
    filler = [f"w{i}" for i in range(120 - len(words))]  # a vocabulary of ~120 tokens
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "##s", "##ed", "##ing", *filler]


@pytest.fixture(scope="module")
def classifier():
    """(keras model, preprocessor, token-id inputs of TEXTS, keras logits)."""
    vocab = _vocab()
    preprocessor = tfmodels.text.BertPreprocessor(
        tfmodels.text.BertTokenizer(vocab, lowercase=True), sequence_length=SEQUENCE_LENGTH)
    # A wide initializer spreads the random model's logits (O(1)), so the tolerances mean something.
    config = tfmodels.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=SEQUENCE_LENGTH, initializer_range=0.2)
    keras_model = tfmodels.BertClassifier(tfmodels.BertEncoder(config), num_classes=NUM_CLASSES)
    inputs = {k: v.numpy() for k, v in preprocessor(tf.constant(TEXTS)).items()}
    last = inputs["padding_mask"][:, -1]
    assert last.min() == 0 and last.max() == 1  # padded rows and a truncated one
    logits = keras_model(inputs, training=False).numpy()
    assert np.abs(logits).max() > 0.5, "logits too small for the tolerances to mean anything"
    return keras_model, preprocessor, inputs, logits


@pytest.fixture(scope="module")
def fp32_file(classifier, tmp_path_factory):
    keras_model, _, _, _ = classifier
    path = str(tmp_path_factory.mktemp("litert") / "classifier.tflite")
    return litert.export_litert(keras_model, path, sequence_length=SEQUENCE_LENGTH)


def test_fp32_matches_keras_on_litert(classifier, fp32_file):
    _, _, inputs, expected = classifier
    assert litert.flex_ops(fp32_file) == []
    assert "FULLY_CONNECTED" in litert.litert_ops(fp32_file)
    runner = litert.LiteRTClassifier(fp32_file)
    if litert._litert_interpreter_class() is not None:
        assert runner.runtime == "litert"
    assert (runner.signature, runner.sequence_length, runner.batch_size) == (
        "serving_default", SEQUENCE_LENGTH, None)
    logits = runner(inputs)
    assert logits.shape == (len(TEXTS), NUM_CLASSES) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, expected, atol=FP32_ATOL, rtol=0)
    # Any batch size: one row, then all rows again (the runner resizes the inputs per call).
    np.testing.assert_allclose(runner({k: v[3:4] for k, v in inputs.items()}), expected[3:4],
                               atol=FP32_ATOL, rtol=0)
    np.testing.assert_allclose(runner(inputs), logits, atol=0, rtol=0)


def test_fixed_batch_file_runs_any_number_of_rows(classifier, tmp_path):
    keras_model, _, inputs, expected = classifier
    path = litert.export_litert(keras_model, str(tmp_path / "b2.tflite"),
                                sequence_length=SEQUENCE_LENGTH, batch_size=2)
    runner = litert.LiteRTClassifier(path)
    assert runner.batch_size == 2
    rows = {k: v[:5] for k, v in inputs.items()}  # two full chunks and a padded one
    np.testing.assert_allclose(runner(rows), expected[:5], atol=FP32_ATOL, rtol=0)


def test_dynamic_int8_is_smaller_and_close(classifier, fp32_file, tmp_path):
    keras_model, _, inputs, expected = classifier
    path = litert.export_litert(keras_model, str(tmp_path / "int8.tflite"),
                                sequence_length=SEQUENCE_LENGTH, quantize="dynamic_int8")
    assert litert.flex_ops(path) == []
    logits = litert.LiteRTClassifier(path)(inputs)
    np.testing.assert_allclose(logits, expected, atol=INT8_ATOL, rtol=0)
    agreement = (logits.argmax(-1) == expected.argmax(-1)).mean()
    assert agreement >= INT8_MIN_ARGMAX_AGREEMENT, (agreement, logits, expected)
    # Most of this tiny model is weights of matmuls; its embeddings are small.
    assert tf.io.gfile.stat(path).length < 0.7 * tf.io.gfile.stat(fp32_file).length


def test_bad_inputs_are_refused_by_name(classifier, fp32_file):
    _, _, inputs, _ = classifier
    runner = litert.LiteRTClassifier(fp32_file)
    with pytest.raises(ValueError, match=r"token_ids has sequence length 8, .*sequence_length=16"):
        runner({k: v[:, :8] for k, v in inputs.items()})
    with pytest.raises(ValueError, match=r"missing input\(s\) \['padding_mask'\]"):
        runner({k: v for k, v in inputs.items() if k != "padding_mask"})
    with pytest.raises(ValueError, match="different batch sizes"):
        runner({**inputs, "segment_ids": inputs["segment_ids"][:2]})
    with pytest.raises(ValueError, match="must hold integers"):
        runner({**inputs, "token_ids": inputs["token_ids"].astype(np.float32)})
    with pytest.raises(ValueError, match="takes token ids, not text"):
        runner.predict_text(["a film"])
    with pytest.raises(ValueError, match="quantize must be one of"):
        litert.export_litert(None, "unused.tflite", sequence_length=16, quantize="int4")


def test_model_built_for_another_length_is_refused(tmp_path):
    config = tfmodels.BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1,
                                 num_attention_heads=1, intermediate_size=8,
                                 max_position_embeddings=8)
    encoder = tfmodels.BertEncoder(config, sequence_length=8)
    model = tfmodels.BertClassifier(encoder, num_classes=2)
    with pytest.raises(ValueError, match="sequence length 8, not sequence_length=16"):
        litert.export_litert(model, str(tmp_path / "m.tflite"), sequence_length=16)


def test_tokenizer_in_needs_flex_ops(classifier, tmp_path):
    keras_model, preprocessor, _, expected = classifier
    path = str(tmp_path / "text.tflite")
    with pytest.raises(ValueError, match="the tokenizer needs TF Select"):
        litert.export_litert(keras_model, path, sequence_length=SEQUENCE_LENGTH,
                             preprocessor=preprocessor)
    litert.export_litert(keras_model, path, sequence_length=SEQUENCE_LENGTH,
                         preprocessor=preprocessor, select_tf_ops=True)
    needed = litert.flex_ops(path)
    assert {"HashTableV2", "LookupTableFindV2", "StringSplitV2", "StaticRegexReplace"} <= set(needed)
    with pytest.raises(ValueError, match=r"needs TF Select \(Flex\) ops"):
        litert.LiteRTClassifier(path, runtime="litert")
    # With the Flex delegate it gives the Keras logits on these texts (it fails on others, e.g.
    # a batch whose words are all vocabulary entries: see the module docstring).
    runner = litert.LiteRTClassifier(path)
    assert (runner.runtime, runner.signature) == ("tensorflow", "predict_text")
    with pytest.raises(ValueError, match="expected the text features"):
        runner.predict_text({"review": TEXTS})
    try:
        logits = runner.predict_text(TEXTS)
    except RuntimeError as error:
        # TF 2.21's pip build ships tf.lite.Interpreter (deprecated for LiteRT) without the Flex delegate.
        if "Select TensorFlow op" in str(error) and tuple(map(int, tf.__version__.split(".")[:2])) >= (2, 20):
            pytest.skip(f"tf.lite.Interpreter of TensorFlow {tf.__version__} has no Flex delegate")
        raise
    np.testing.assert_allclose(logits, expected, atol=FP32_ATOL, rtol=0)


def test_erf_approximation_matches_tensorflow():
    x = np.linspace(-6.0, 6.0, 200001, dtype=np.float32)
    graph = tf.Graph()
    with graph.as_default():
        tf.math.erf(tf.compat.v1.placeholder(tf.float32, [None], name="x"), name="erf")
    graph_def = graph.as_graph_def()
    assert litert.replace_erf(graph_def) == 1
    assert "Erf" not in {node.op for node in graph_def.node}
    approximate = tf.compat.v1.wrap_function(
        lambda: tf.graph_util.import_graph_def(graph_def, name=""), []).prune("x:0", "erf:0")
    np.testing.assert_allclose(approximate(tf.constant(x)).numpy(), tf.math.erf(x).numpy(),
                               atol=1e-6, rtol=0)
