"""int8 through Keras' quantization protocol: our Dense, MultiHeadAttention and TokenEmbedding under
``layer.quantize("int8")`` and ``keras.Model.quantize``, compared with their float selves."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels.layers import Dense, MultiHeadAttention, TokenEmbedding, make_attention_mask
from tfmodels.ops.int8 import (
    BFLOAT16,
    DYNAMIC_INT8,
    FLOAT32,
    INT8_PATHS,
    _onednn_int8_available,
    dequantize,
    int8_path,
    quantize_per_channel,
    selected_int8_path,
)

RNG = np.random.default_rng(0)


def _normal(*shape):
    return RNG.normal(size=shape).astype("float32")


def test_per_channel_quantization_error_is_at_most_half_a_step():
    kernel = _normal(64, 8) * np.linspace(0.01, 3.0, 8, dtype="float32")  # columns of very different range
    kernel[:, 3] = 0.0
    q, scale = quantize_per_channel(kernel)
    assert q.dtype == tf.int8 and scale.shape == (8,)
    np.testing.assert_allclose(np.abs(q.numpy()).max(axis=0)[[0, 1, 2, 4, 5, 6, 7]], 127)
    error = np.abs(dequantize(q, scale).numpy() - kernel)
    assert np.all(error <= scale.numpy() / 2 + 1e-7)
    assert np.all(dequantize(q, scale).numpy()[:, 3] == 0.0)


@pytest.mark.parametrize("path", INT8_PATHS)
def test_int8_dense_is_within_the_quantization_bound_of_float(path):
    if path == DYNAMIC_INT8 and not _onednn_int8_available():
        pytest.skip("this TensorFlow has no oneDNN int8 inner product")
    layer = Dense(32, activation=None)
    x = _normal(4, 10, 48)
    float_out = layer(x).numpy()
    float_kernel = layer.kernel.numpy()
    layer.quantize("int8")
    assert layer.kernel.dtype == "int8" and layer.quantization_mode == "int8"
    assert layer.dtype_policy.name == "int8_from_float32"
    with int8_path(path):
        int8_out = layer(x).numpy()
    # |x @ (k_q - k)| <= sum|x| * scale / 2, column by column: the weights' rounding; then the
    # activations' (none on the float32 path, 8 significant bits on bfloat16, per-row int8 steps).
    scale = np.abs(float_kernel).max(axis=0) / 127
    bound = np.abs(x).sum(-1, keepdims=True) * scale / 2 + 1e-5
    kernel_abs = np.abs(float_kernel) + scale / 2
    if path == BFLOAT16:
        bound = bound + 2.0**-7 * np.abs(x) @ kernel_abs
    elif path == DYNAMIC_INT8:
        bound = bound + np.abs(x).max(-1, keepdims=True) / 127 / 2 * kernel_abs.sum(0)
    assert np.all(np.abs(int8_out - float_out) <= bound)
    assert np.abs(int8_out - float_out).max() > 0  # it really runs the int8 weights


def test_int8_layers_default_to_the_bfloat16_path_where_the_cpu_has_bfloat16_matmuls():
    from tensorflow.python.util import _pywrap_util_port

    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("reads the CPU's flags from /proc/cpuinfo")
    layer = Dense(16)
    x = _normal(3, 24)
    layer(x)
    layer.quantize("int8")
    default = selected_int8_path()
    with open("/proc/cpuinfo") as f:
        flags = set(f.read().split())  # read once: a second read() is at the end of the file
    bfloat16_cpu = bool({"amx_bf16", "avx512_bf16"} & flags)
    on_cpu = not tf.config.list_physical_devices("GPU")
    assert default == (BFLOAT16 if bfloat16_cpu and on_cpu and _pywrap_util_port.IsMklEnabled() else FLOAT32)
    with int8_path(default):
        expected = layer(x).numpy()
    np.testing.assert_array_equal(layer(x).numpy(), expected)  # what the layer runs untold
    with int8_path(FLOAT32):
        weight_only = layer(x).numpy()
    assert (np.abs(expected - weight_only).max() > 0) == (default == BFLOAT16)


def test_int8_dense_passes_input_gradients_through_the_dequantized_kernel():
    layer = Dense(6)
    x = tf.constant(_normal(3, 5))
    layer(x)
    layer.quantize("int8")
    upstream = tf.constant(_normal(3, 6))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    dequantized = dequantize(layer.kernel, layer.kernel_scale).numpy()
    np.testing.assert_allclose(tape.gradient(y, x, output_gradients=upstream),
                               upstream.numpy() @ dequantized.T, rtol=1e-5, atol=1e-5)


def test_int8_attention_stays_close_to_float_with_masks_and_cache():
    layer = MultiHeadAttention(num_heads=4, key_dim=8)
    x = _normal(2, 6, 32)
    mask = make_attention_mask(key_padding_mask=np.array([[1] * 6, [1, 1, 1, 1, 0, 0]]), query_length=6)
    float_out = layer(x, attention_mask=mask).numpy()
    layer.quantize("int8")
    assert {w.name: w.dtype for w in layer.weights if w.name.endswith("kernel")} == {
        "query_kernel": "int8", "key_kernel": "int8", "value_kernel": "int8", "output_kernel": "int8"}
    assert layer.output_kernel_scale.shape == (32,) and layer.query_kernel_scale.shape == (4, 8)
    int8_out = layer(x, attention_mask=mask).numpy()
    relative = np.abs(int8_out - float_out).max() / np.abs(float_out).max()
    assert 0 < relative < 0.02

    # Incremental decoding with a cache goes through the same int8 projections.
    cache = np.zeros((2, 2, 6, 4, 8), "float32")
    causal = np.asarray(tfmodels.layers.make_causal_mask(6))
    full = layer(x, attention_mask=causal).numpy()
    steps = []
    for t in range(6):
        out, cache = layer(x[:, t:t + 1], attention_mask=causal[:, t:t + 1], cache=cache, cache_update_index=t)
        steps.append(out.numpy())
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_token_embedding_quantizes_per_row_and_reports_its_float_table():
    layer = TokenEmbedding(50, 16)
    ids = np.array([[1, 2, 49], [0, 7, 7]])
    float_out = layer(ids).numpy()
    table = layer.embeddings.numpy()
    layer.quantize("int8")
    assert layer._embeddings.dtype == "int8"
    step = np.abs(table).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(layer(ids).numpy() - float_out) <= step[ids] / 2 + 1e-6)
    np.testing.assert_allclose(tfmodels.layers.embedding.embedding_table(layer, "float32"), table,
                               atol=float(step.max()) / 2 + 1e-6)


def _small_classifier(num_classes=3, num_layers=2):
    config = tfmodels.BertConfig(vocab_size=200, hidden_size=64, num_hidden_layers=num_layers, num_attention_heads=4,
                                 intermediate_size=128, max_position_embeddings=32)
    return tfmodels.BertClassifier(tfmodels.BertEncoder(config), num_classes=num_classes)


def test_model_quantize_reaches_every_matmul_and_embedding(random_bert_inputs):
    model = _small_classifier()
    x = random_bert_inputs(8, 16, 200, pad_from=[16, 12, 9, 16, 5, 16, 16, 3])
    float_logits = model.predict(x, verbose=0)
    float_bytes = sum(w.numpy().nbytes for w in model.weights)
    with pytest.warns(UserWarning, match="LayerNorm does not have a `quantize`"):
        model.quantize("int8")
    quantized = {layer.path for layer in model._flatten_layers() if layer.quantization_mode == "int8"}
    assert quantized == {
        "embeddings/token_embedding", "embeddings/segment_embedding", "pooler/dense", "logits",
        *(f"encoder_block_{i}/{part}" for i in range(2) for part in (
            "attention", "feed_forward/intermediate_dense", "feed_forward/output_dense"))}
    float_left = [w.path for w in model.weights
                  if w.dtype == "float32" and w.numpy().ndim >= 2 and w.name.endswith(("kernel", "embeddings"))]
    assert float_left == ["embeddings/position_embedding/embeddings"]  # 32 x 64: not worth it
    int8_bytes = sum(w.numpy().nbytes for w in model.weights)
    assert float_bytes / int8_bytes > 3.0
    int8_logits = model.predict(x, verbose=0)
    assert np.abs(int8_logits - float_logits).max() < 0.02 * np.abs(float_logits).max() + 1e-4
    with pytest.raises(ValueError, match="already quantized"):
        model.get_layer("logits").quantize("int8")


def test_quantized_model_saves_reloads_and_recompiles(tmp_path, random_bert_inputs):
    model = _small_classifier(num_layers=1)  # one block: tracing the training step is most of this test's time
    x = random_bert_inputs(4, 16, 200)
    model.quantize("int8")
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / "int8.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert reloaded.get_layer("logits").kernel.dtype == "int8"
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)
    # Under half: biases, norms and the file format stay float (the ratio grows with the model).
    assert os.path.getsize(path) < 0.5 * _float_file_size(tmp_path)
    # A quantized encoder still trains the layers above it (the head here is int8 too: frozen).
    reloaded.compile(optimizer="adam")
    history = reloaded.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def _float_file_size(tmp_path):
    path = str(tmp_path / "float.keras")
    _small_classifier(num_layers=1).save(path)
    return os.path.getsize(path)


def test_quantize_rejects_modes_our_layers_do_not_implement():
    layer = Dense(4)
    layer.build((None, 8))
    with pytest.raises(NotImplementedError, match="int8"):
        layer.quantize("int4")


def test_quantized_layer_configs_round_trip():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    layer.build((None, 3, 8))
    layer.quantize("int8")
    config = keras.saving.serialize_keras_object(layer)
    rebuilt = keras.saving.deserialize_keras_object(config)  # built from its build config
    assert rebuilt.quantization_mode == "int8" and rebuilt.query_kernel.dtype == "int8"
    assert sorted((w.name, w.dtype, tuple(w.shape)) for w in rebuilt.weights) == sorted(
        (w.name, w.dtype, tuple(w.shape)) for w in layer.weights)
