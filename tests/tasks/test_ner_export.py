"""export_token_classifier: the extract_entities signature equals predict_entities, loads without
tensorflow_text, and is served by serving.server over gRPC Predict and REST."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tfmodels import BertConfig, BertEncoder
from tfmodels.export import export_token_classifier, read_warmup_requests, signatures
from tfmodels.models.bert.token_classifier import BertTokenClassifier, TokenClassifierPreprocessor
from tfmodels.text import BertTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "anna", "lives", "in", "paris", "new", "york",
         "and", "."]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXTS = ["Anna lives in Paris.", "", "new york and anna lives in paris and anna in new york",
         "Zoë 😀 in 北京 and Anna", "   "]
MODEL_NAME = "ner"


def _expected_rows(model):
    """predict_entities as the signature's padded columns."""
    found = model.predict_entities(TEXTS)
    width = max(len(f) for f in found)
    pad = lambda rows, value: [r + [value] * (width - len(r)) for r in rows]  # noqa: E731
    return {
        signatures.ENTITY_TEXT_OUTPUT: pad([[e["text"] for e in f] for f in found], ""),
        signatures.ENTITY_TYPE_OUTPUT: pad([[e["type"] for e in f] for f in found], ""),
        signatures.ENTITY_START_OUTPUT: pad([[e["start"] for e in f] for f in found], -1),
        signatures.ENTITY_END_OUTPUT: pad([[e["end"] for e in f] for f in found], -1),
        signatures.ENTITY_SCORE_OUTPUT: pad([[e["score"] for e in f] for f in found], 0.0),
        signatures.NUM_ENTITIES_OUTPUT: [len(f) for f in found],
    }


def _check(outputs, expected):
    for key, value in expected.items():
        got = np.asarray(outputs[key])
        if got.dtype.kind in "OSU":
            got = [[v.decode() if isinstance(v, bytes) else v for v in row] for row in got.tolist()]
            assert got == value, key
        else:
            np.testing.assert_allclose(got, value, atol=1e-5, err_msg=key)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(7)
    preprocessor = TokenClassifierPreprocessor(BertTokenizer(VOCAB), TAGS, sequence_length=8, stride=3)
    encoder = BertEncoder(BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32))
    model = BertTokenClassifier(encoder, len(TAGS), dropout=0.0, preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit([["Anna", "lives", "in", "Paris"], ["New", "York", "and", "Anna"]],
              [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "I-LOC", "O", "B-PER"]], epochs=30, verbose=0)
    export_dir = str(tmp_path_factory.mktemp("ner") / MODEL_NAME / "1")
    export_token_classifier(export_dir, model, warmup_texts=TEXTS[:2], model_name=MODEL_NAME,
                            words_feature="tokens")
    expected = _expected_rows(model)
    assert max(expected[signatures.NUM_ENTITIES_OUTPUT]) >= 3  # the model found entities to compare
    return export_dir, expected, model


def test_word_level_evaluation_signature(exported):
    import tensorflow as tf

    from tfmodels.examples.ner import entities_to_word_tags

    export_dir, _, model = exported
    sentences = [text.split() for text in TEXTS]
    examples = [tf.train.Example(features=tf.train.Features(feature={"tokens": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[" ".join(words).encode()]))})).SerializeToString()
        for words in sentences]
    served = tf.saved_model.load(export_dir).signatures[signatures.TAG_EXAMPLES_SIGNATURE]
    got = served(examples=tf.constant(examples))[signatures.PREDICTED_TAGS_OUTPUT].numpy()
    found = model.predict_entities([" ".join(words) for words in sentences])
    expected = [" ".join(entities_to_word_tags(words, f)) for words, f in zip(sentences, found)]
    assert [g.decode() for g in got] == expected
    assert any(t != "O" for row in expected for t in row.split())


def test_serving_default_takes_raw_text_beside_the_evaluation_signature(exported):
    """Issue 33: with the Evaluator's tf.Example signature too (the pipeline's export), serving_default is
    `extract_entities`."""
    import tensorflow as tf

    export_dir, expected, _ = exported
    outputs = tf.saved_model.load(export_dir).signatures[signatures.DEFAULT_SIGNATURE](text=tf.constant(TEXTS))
    _check({k: v.numpy() for k, v in outputs.items()}, expected)


def test_signature_matches_predict_entities(exported):
    import tensorflow as tf

    export_dir, expected, _ = exported
    loaded = tf.saved_model.load(export_dir)
    outputs = loaded.signatures[signatures.ENTITIES_SIGNATURE](text=tf.constant(TEXTS))
    assert outputs[signatures.ENTITY_START_OUTPUT].dtype == tf.int64
    assert outputs[signatures.ENTITY_SCORE_OUTPUT].dtype == tf.float32
    _check({k: v.numpy() for k, v in outputs.items()}, expected)
    empty = loaded.signatures[signatures.ENTITIES_SIGNATURE](text=tf.constant([""]))
    assert empty[signatures.NUM_ENTITIES_OUTPUT].numpy().tolist() == [0]
    logs = read_warmup_requests(export_dir)
    assert logs[0].predict_log.request.model_spec.signature_name == signatures.ENTITIES_SIGNATURE


def test_loads_without_tensorflow_text(exported):
    export_dir, expected, _ = exported
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["tensorflow_text"] = None  # any import of it now fails
        import tensorflow as tf
        loaded = tf.saved_model.load({export_dir!r})
        out = loaded.signatures["{signatures.ENTITIES_SIGNATURE}"](text=tf.constant({TEXTS!r}))
        print(json.dumps({{k: v.numpy().tolist() for k, v in out.items()}}, default=bytes.decode))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    _check(json.loads(result.stdout.strip().splitlines()[-1]), expected)


def test_served_over_grpc_and_rest(exported):
    from serving.client import GrpcClient, RestClient
    from serving.server import ModelServer

    export_dir, expected, _ = exported
    server = ModelServer(model_base_path=os.path.dirname(export_dir), model_name=MODEL_NAME, port=0,
                         rest_api_port=0, file_system_poll_wait_seconds=0)
    with server, GrpcClient(f"127.0.0.1:{server.grpc_port}", timeout=60) as client:
        predicted = client.predict(MODEL_NAME, {"text": np.array([t.encode() for t in TEXTS])},
                                   signature_name=signatures.ENTITIES_SIGNATURE)
        _check(predicted, expected)
        rest = RestClient(f"http://127.0.0.1:{server.rest_port}", timeout=60)
        outputs = rest.predict(MODEL_NAME, inputs={"text": TEXTS},
                               signature_name=signatures.ENTITIES_SIGNATURE)
        _check(outputs, expected)


# ---- issue 36: empty batches, request limits, windows run in chunks ----

@pytest.fixture(scope="module")
def limited(exported, tmp_path_factory):
    """The same model exported with small limits and one window per model call."""
    _, expected, model = exported
    export_dir = str(tmp_path_factory.mktemp("ner_limited") / MODEL_NAME / "1")
    export_token_classifier(export_dir, model, max_text_chars=60, max_windows=12, window_chunk=1)
    return export_dir, expected


def test_empty_batch_answers_with_no_rows(exported):
    """Issue 36 item 11: an empty batch was a graph error (LowerBound_1) instead of an empty answer."""
    import tensorflow as tf

    out = tf.saved_model.load(exported[0]).signatures[signatures.ENTITIES_SIGNATURE](
        text=tf.constant([], tf.string))
    assert out[signatures.NUM_ENTITIES_OUTPUT].shape == (0,)
    assert out[signatures.ENTITY_TEXT_OUTPUT].shape[0] == 0


def test_windows_in_chunks_match_predict_entities(limited):
    import tensorflow as tf

    export_dir, expected = limited
    outputs = tf.saved_model.load(export_dir).signatures[signatures.ENTITIES_SIGNATURE](text=tf.constant(TEXTS))
    _check({k: v.numpy() for k, v in outputs.items()}, expected)


def test_request_limits_are_invalid_argument_before_the_model_runs(limited):
    """Issue 36 item 3: one long text or many texts could take unbounded memory and time."""
    import tensorflow as tf

    serve = tf.saved_model.load(limited[0]).signatures[signatures.ENTITIES_SIGNATURE]
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 60 characters"):
        serve(text=tf.constant(["anna " * 13]))  # 65 characters
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 12 windows"):
        serve(text=tf.constant(["anna lives in paris"] * 13))  # one window each
    assert serve(text=tf.constant(["anna lives in paris"] * 12))[signatures.NUM_ENTITIES_OUTPUT].shape == (12,)


def test_entity_text_is_linear_in_the_text_length(exported):
    """Issue 36 item 3: each entity's text was cut from a copy of its whole text (quadratic memory and time);
    a text with thousands of entities is decoded in well under the time of the old decoding."""
    import time

    import tensorflow as tf

    from tfmodels.text import alignment

    _, _, model = exported
    pre = model.preprocessor
    text = tf.constant([" ".join(["anna"] * 20000)])
    pieces = alignment.text_pieces(pre.tokenizer, text)
    x, window_text, _ = pre.windows(text)
    person = np.zeros([int(tf.size(window_text)), pre.sequence_length, len(TAGS)], np.float32)
    person[..., TAGS.index("B-PER")] = 9.0  # every word its own entity
    start = time.perf_counter()
    found = alignment.decode_entities(text, pieces, tf.constant(person), window_text, pre.sequence_length,
                                      pre.stride, TAGS)
    elapsed = time.perf_counter() - start
    assert found["text"].row_lengths().numpy().tolist() == [20000]
    assert set(found["text"].flat_values.numpy().tolist()) == {b"anna"}
    assert elapsed < 5.0, elapsed
