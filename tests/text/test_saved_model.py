"""The tokenizer in a SavedModel loads and runs where tensorflow_text cannot be imported."""

import json
import os
import subprocess
import sys
import textwrap

import tensorflow as tf

from tfmodels.text import BertPreprocessor

# Ops that tensorflow_text registers for its tokenizers; none may be in our graph.
TF_TEXT_OPS = {
    "CaseFoldUTF8",
    "NormalizeUTF8",
    "NormalizeUTF8WithOffsetsMap",
    "RegexSplitWithOffsets",
    "WordpieceTokenizeWithOffsets",
    "FastWordpieceTokenizeWithOffsets",
    "FastBertNormalize",
    "WhitespaceTokenizeWithOffsets",
}

# Runs in a fresh interpreter: makes `import tensorflow_text` fail, loads the
# SavedModel with plain TensorFlow, checks every op is a core op, runs it.
LOADER = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class BlockTensorflowText(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "tensorflow_text" or name.startswith("tensorflow_text."):
                raise ImportError("tensorflow_text is blocked in this process")

    sys.meta_path.insert(0, BlockTensorflowText())
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    export_dir, texts = sys.argv[1], json.loads(sys.argv[2])
    try:
        import tensorflow_text  # noqa: F401
        raise SystemExit("tensorflow_text was importable")
    except ImportError:
        pass
    proto = saved_model_pb2.SavedModel()
    with open(export_dir + "/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    ops = {n.op for n in graph.node}
    ops |= {n.op for fn in graph.library.function for n in fn.node_def}
    unknown = sorted(op for op in ops if op_def_registry.get(op) is None)
    loaded = tf.saved_model.load(export_dir)
    packed = loaded.signatures["serving_default"](texts=tf.constant(texts))
    ids = loaded.tokenize(tf.constant(texts))
    print(json.dumps({
        "ops": sorted(ops),
        "unknown_ops": unknown,
        "tensorflow_text_loaded": "tensorflow_text" in sys.modules,
        "packed": {k: v.numpy().tolist() for k, v in packed.items()},
        "ids": ids.to_list(),
    }))
    """
)


def load_without_tensorflow_text(export_dir, texts):
    """Runs LOADER in a fresh interpreter; checks the graph holds only core ops; its report."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-c", LOADER, export_dir, json.dumps(texts)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["unknown_ops"] == []
    assert not out["tensorflow_text_loaded"]
    assert not TF_TEXT_OPS & set(out["ops"])
    return out


class _Export(tf.Module):
    def __init__(self, preprocessor):
        super().__init__()
        self.preprocessor = preprocessor

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(self, texts):
        return self.preprocessor(texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        return self.preprocessor.tokenizer.tokenize(texts)


def test_saved_model_loads_without_tensorflow_text(tokenizer, imdb_texts, tmp_path):
    preprocessor = BertPreprocessor(tokenizer, sequence_length=128)
    module = _Export(preprocessor)
    export_dir = str(tmp_path / "tokenizer_model")
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
    texts = imdb_texts[:8] + ["Café 北京 😀", ""]
    out = load_without_tensorflow_text(export_dir, texts)
    assert out["ids"] == tokenizer(texts).to_list()
    expected = preprocessor(tf.constant(texts))
    for name in ("token_ids", "segment_ids", "padding_mask"):
        assert out["packed"][name] == expected[name].numpy().tolist(), name


def test_text_package_imports_without_tensorflow_text():
    code = LOADER.split("import tensorflow as tf")[0] + textwrap.dedent(
        """
        import tfmodels.text as text
        tok = text.BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ok"])
        assert tok(["ok"]).to_list() == [[5]]
        assert "tensorflow_text" not in sys.modules
        print("fine")
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("fine")
