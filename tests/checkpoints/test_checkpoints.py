import io
import json
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import erf

from tfmodels import BertConfig, BertEncoder
from tfmodels.checkpoints import CheckpointMismatchError, load_google_bert, load_hf_bert
from tfmodels.checkpoints.huggingface import read_hf_state_dict
from tfmodels.datasets import minilm_path
from tfmodels.text import BertTokenizer

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
]


@pytest.fixture(scope="module")
def minilm():
    return minilm_path()


@pytest.fixture(scope="module")
def minilm_encoder(minilm):
    return load_hf_bert(minilm)


def _encode(directory, sentences):
    tokenizer = BertTokenizer.from_vocab_file(os.path.join(directory, "vocab.txt"), lowercase=True)
    ids = tokenizer(tf.constant(sentences))
    ids = tf.concat(
        [tf.fill([len(sentences), 1], tokenizer.cls_token_id), ids,
         tf.fill([len(sentences), 1], tokenizer.sep_token_id)], axis=1
    ).to_tensor(0).numpy().astype("int32")
    mask = (ids != 0).astype("int32")
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def _layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _numpy_bert(state, config, inputs):
    """An independent BERT forward pass straight from the HF tensor names (float64)."""
    w = {k: v.astype(np.float64) for k, v in state.items()}
    ids, mask = inputs["token_ids"], inputs["padding_mask"]
    length = ids.shape[1]
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:length]
         + w["embeddings.token_type_embeddings.weight"][inputs["segment_ids"]])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads = config.num_attention_heads
    dim = config.hidden_size // heads
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."

        def lin(h, name, p=p):
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(h):
            return h.reshape(h.shape[0], length, heads, dim).transpose(0, 2, 1, 3)

        q, k, v = (split(lin(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dim) + (1 - mask[:, None, None, :]) * -1e9
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = _layer_norm(x + lin(ctx, "attention.output.dense"),
                        w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
        x = _layer_norm(x + lin(h, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    return x


def _mean_pooled_unit(sequence, mask):
    pooled = (sequence * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_minilm_sentence_similarity_matches_the_published_figure(minilm, minilm_encoder):
    inputs = _encode(minilm, SENTENCES)
    out = minilm_encoder(inputs, training=False)
    emb = _mean_pooled_unit(np.asarray(out["sequence_output"]), inputs["padding_mask"])
    sims = emb @ emb.T
    # all-MiniLM-L6-v2's model card: "A man is eating food." vs "A man is eating a piece of bread."
    assert sims[0, 1] == pytest.approx(0.755, abs=0.002)
    # The food/bread pair is the closest pair to sentence 0; unrelated sentences are far apart.
    assert np.argsort(sims[0])[-2] == 1
    assert sims[0, 2] < 0.1 and sims[1, 4] < 0.1


def test_minilm_matches_an_independent_numpy_forward_pass(minilm, minilm_encoder):
    inputs = _encode(minilm, SENTENCES[:3])  # padded batch: sentence lengths differ
    _, state = read_hf_state_dict(minilm)
    config = BertConfig.from_json_file(os.path.join(minilm, "config.json"))
    expected = _numpy_bert(state, config, inputs)
    got = np.asarray(minilm_encoder(inputs, training=False)["sequence_output"])
    real = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(got[real], expected[real], atol=2e-4)
    pooled = np.tanh(expected[:, 0] @ state["pooler.dense.weight"].T.astype(np.float64) + state["pooler.dense.bias"])
    np.testing.assert_allclose(np.asarray(minilm_encoder(inputs)["pooled_output"]), pooled, atol=2e-4)


def _fake_torch_modules():
    """Stand-ins for the torch globals a state-dict pickle names, so we can write one without torch."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only used as a pickle reference")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2, torch._utils = FloatStorage, _rebuild_tensor_v2, utils
    return {"torch": torch, "torch._utils": utils}


class _Storage:
    def __init__(self, key, flat):
        self.key, self.flat = key, flat


class _Tensor:
    """Pickles like a torch tensor: ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

    def __init__(self, storage, shape, stride):
        self.storage, self.shape, self.stride = storage, shape, stride

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, 0, self.shape, self.stride, False, {})


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", sys.modules["torch"].FloatStorage, obj.key, "cpu", obj.flat.size)
        return None


def _write_torch_zip(path, state):
    """Writes ``state`` in PyTorch's zip layout (``archive/data.pkl`` + ``archive/data/<key>``);
    2-D tensors are stored column-major to exercise strided storages."""
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update(_fake_torch_modules())
    try:
        tensors, storages = {}, []
        for i, (name, array) in enumerate(state.items()):
            if array.ndim == 2:
                storage = _Storage(str(i), np.ascontiguousarray(array.T).ravel())
                tensors[name] = _Tensor(storage, array.shape, (1, array.shape[0]))
            else:
                storage = _Storage(str(i), np.ascontiguousarray(array).ravel())
                strides = tuple(s // array.itemsize for s in np.ascontiguousarray(array).strides)
                tensors[name] = _Tensor(storage, array.shape, strides)
            storages.append(storage)
        buffer = io.BytesIO()
        _TorchPickler(buffer, protocol=2).dump(tensors)
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", buffer.getvalue())
            for storage in storages:
                archive.writestr(f"archive/data/{storage.key}", storage.flat.astype("<f4").tobytes())
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def test_pytorch_bin_loads_without_torch_and_equals_safetensors(minilm, minilm_encoder, tmp_path):
    _, state = read_hf_state_dict(minilm)
    state = {k: v for k, v in state.items() if v.dtype == np.float32}
    _write_torch_zip(tmp_path / "pytorch_model.bin", state)
    (tmp_path / "config.json").write_text(open(os.path.join(minilm, "config.json")).read())
    assert "torch" not in sys.modules
    encoder = load_hf_bert(str(tmp_path))
    for a, b in zip(encoder.weights, minilm_encoder.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_pytorch_bin_refuses_arbitrary_globals(tmp_path):
    from tfmodels.checkpoints.torch_pickle import load_torch_state_dict

    class Evil:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    with zipfile.ZipFile(tmp_path / "pytorch_model.bin", "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="unsupported object"):
        load_torch_state_dict(tmp_path / "pytorch_model.bin")


def _google_names_for(encoder):
    """Writes nothing: returns {google_name: array} built from a random encoder's weights."""
    c = encoder.config
    heads, dim = c.num_attention_heads, c.hidden_size // c.num_attention_heads
    e = encoder.embeddings
    names = {
        "bert/embeddings/word_embeddings": e.token_embedding.embeddings.numpy(),
        "bert/embeddings/position_embeddings": e.position_layer.embeddings.numpy(),
        "bert/embeddings/token_type_embeddings": e.segment_embedding.embeddings.numpy(),
        "bert/embeddings/LayerNorm/gamma": e.layer_norm.gamma.numpy(),
        "bert/embeddings/LayerNorm/beta": e.layer_norm.beta.numpy(),
        "bert/pooler/dense/kernel": encoder.pooler.dense.kernel.numpy(),
        "bert/pooler/dense/bias": encoder.pooler.dense.bias.numpy(),
        "cls/predictions/output_bias": np.zeros(c.vocab_size, np.float32),  # heads are ignored
    }
    for i, block in enumerate(encoder.encoder_blocks):
        p = f"bert/encoder/layer_{i}/"
        a = block.attention
        for part, k, b in (("query", a.query_kernel, a.query_bias), ("key", a.key_kernel, a.key_bias),
                           ("value", a.value_kernel, a.value_bias)):
            names[p + f"attention/self/{part}/kernel"] = k.numpy().reshape(c.hidden_size, heads * dim)
            names[p + f"attention/self/{part}/bias"] = b.numpy().reshape(-1)
        names[p + "attention/output/dense/kernel"] = a.output_kernel.numpy().reshape(heads * dim, -1)
        names[p + "attention/output/dense/bias"] = a.output_bias.numpy()
        names[p + "attention/output/LayerNorm/gamma"] = block.attention_norm.gamma.numpy()
        names[p + "attention/output/LayerNorm/beta"] = block.attention_norm.beta.numpy()
        ff = block.feed_forward
        names[p + "intermediate/dense/kernel"] = ff.intermediate_dense.kernel.numpy()
        names[p + "intermediate/dense/bias"] = ff.intermediate_dense.bias.numpy()
        names[p + "output/dense/kernel"] = ff.output_dense.kernel.numpy()
        names[p + "output/dense/bias"] = ff.output_dense.bias.numpy()
        names[p + "output/LayerNorm/gamma"] = block.output_norm.gamma.numpy()
        names[p + "output/LayerNorm/beta"] = block.output_norm.beta.numpy()
    return names


def _write_tf1_checkpoint(prefix, arrays):
    """A TF1-style checkpoint with exactly these variable names (as Google's BERT release has)."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(v, name=n) for n, v in arrays.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix)


TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=32, max_position_embeddings=20)


def test_google_tf1_checkpoint_round_trip(tmp_path, random_bert_inputs):
    source = BertEncoder(BertConfig(**TINY))
    prefix = str(tmp_path / "bert_model.ckpt")
    _write_tf1_checkpoint(prefix, _google_names_for(source))
    (tmp_path / "bert_config.json").write_text(json.dumps(TINY))
    assert "bert/encoder/layer_1/attention/self/query/kernel" in dict(tf.train.list_variables(prefix))
    loaded = load_google_bert(prefix, str(tmp_path / "bert_config.json"))
    x = random_bert_inputs(2, 7, 50, pad_from=[5, 7])
    np.testing.assert_allclose(loaded(x)["sequence_output"], source(x)["sequence_output"], atol=1e-6)


def test_missing_and_mismatched_weights_are_named(tmp_path):
    arrays = _google_names_for(BertEncoder(BertConfig(**TINY)))
    del arrays["bert/encoder/layer_1/output/dense/bias"]
    arrays["bert/pooler/dense/kernel"] = np.zeros((16, 8), np.float32)
    prefix = str(tmp_path / "broken.ckpt")
    _write_tf1_checkpoint(prefix, arrays)
    (tmp_path / "bert_config.json").write_text(json.dumps(TINY))
    with pytest.raises(CheckpointMismatchError) as error:
        load_google_bert(prefix, str(tmp_path / "bert_config.json"))
    message = str(error.value)
    assert "missing weight 'bert/encoder/layer_1/output/dense/bias'" in message
    assert "model expects (16, 16), checkpoint 'bert/pooler/dense/kernel' has (16, 8)" in message


def test_hf_directory_errors(tmp_path, minilm):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_bert(str(tmp_path))
    config = json.load(open(os.path.join(minilm, "config.json")))
    config["num_hidden_layers"] = 7  # one more layer than the weights have
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_hf_bert(str(tmp_path))
    os.symlink(os.path.join(minilm, "model.safetensors"), tmp_path / "model.safetensors")
    with pytest.raises(CheckpointMismatchError, match="encoder.layer.6.attention.self.query.weight"):
        load_hf_bert(str(tmp_path))
