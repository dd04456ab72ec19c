"""tfmodels.export.export: one call writes a task model with its own preprocessor; the exported
text signature answers raw strings as model.predict does, serving_default takes raw text too."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels import export
from tfmodels.models.bert.token_classifier import TokenClassifierPreprocessor
from tfmodels.text import BertPreprocessor, BertTokenizer

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "a",
    "gorgeous",
    "film",
    "dull",
    "anna",
    "lives",
    "in",
    "paris",
]
REVIEWS = ["A gorgeous film.", "dull, dull film", "gorgeous"]


def _encoder():
    return tfmodels.BertEncoder(
        tfmodels.BertConfig(
            vocab_size=len(VOCAB),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )


@pytest.fixture(scope="module")
def classifier_export(tmp_path_factory):
    model = tfmodels.BertClassifier(
        _encoder(), num_classes=3, preprocessor=BertPreprocessor(BertTokenizer(VOCAB), 12)
    )
    export_dir = str(tmp_path_factory.mktemp("export") / "reviews" / "1")
    assert export.export(model, export_dir, class_names=["neg", "neutral", "pos"]) == export_dir
    return model, tf.saved_model.load(export_dir)


def test_text_signature_answers_raw_strings_as_predict_does(classifier_export):
    model, loaded = classifier_export
    expected = tf.nn.softmax(model.predict(REVIEWS, verbose=0), axis=-1).numpy()
    served = loaded.signatures[export.TEXT_SIGNATURE](text=tf.constant(REVIEWS))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    names = [n.decode() for n in served["label_name"].numpy()]
    assert names == [["neg", "neutral", "pos"][i] for i in expected.argmax(-1)]


def test_serving_default_takes_raw_text_and_predict_examples_tf_examples(classifier_export):
    model, loaded = classifier_export
    expected = tf.nn.softmax(model.predict(REVIEWS, verbose=0), axis=-1).numpy()
    served = loaded.signatures["serving_default"](text=tf.constant(REVIEWS))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    examples = export.make_examples({"text": REVIEWS})
    by_example = loaded.signatures[export.PREDICT_EXAMPLES_SIGNATURE](examples=tf.constant(examples))
    np.testing.assert_allclose(by_example["probabilities"].numpy(), expected, atol=1e-5)


def test_token_classifier_exports_in_one_call(tmp_path):
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    preprocessor = TokenClassifierPreprocessor(BertTokenizer(VOCAB), tags, sequence_length=8)
    model = tfmodels.BertTokenClassifier(_encoder(), len(tags), preprocessor=preprocessor)
    loaded = tf.saved_model.load(export.export(model, str(tmp_path / "ner" / "1")))
    texts = ["Anna lives in Paris", "paris"]
    served = loaded.signatures["extract_entities"](text=tf.constant(texts))
    expected = model.predict_entities(texts)
    served_entities = [
        [(t.decode(), s.decode()) for t, s in zip(types[:n], spans[:n])]
        for types, spans, n in zip(
            served["entity_type"].numpy(),
            served["entity_text"].numpy(),
            served["num_entities"].numpy(),
        )
    ]
    assert served_entities == [[(e["type"], e["text"]) for e in found] for found in expected]
    assert any(expected)  # random weights still tag something in these texts
    # serving_default takes raw text too (issue 33): the same signature under the default name.
    by_default = loaded.signatures["serving_default"](text=tf.constant(texts))
    for key, value in served.items():
        np.testing.assert_array_equal(by_default[key].numpy(), value.numpy())


def test_a_model_without_its_preprocessor_is_named(tmp_path):
    model = tfmodels.BertClassifier(_encoder(), num_classes=2)
    with pytest.raises(ValueError, match="this BertClassifier has no preprocessor"):
        export.export(model, str(tmp_path / "1"))


def test_an_unknown_model_type_names_the_supported_ones(tmp_path):
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(
        TypeError,
        match="export does not know Sequential; it exports: "
        "BertClassifier .*BertTokenClassifier .*BertSpanQA .*"
        "Translator .*CausalLM",
    ):
        export.export(model, str(tmp_path / "1"))


def test_causal_lm_exports_in_one_call(tmp_path):
    from checkpoints.llama_files import TINY, tiny_tokenizer, write_gguf
    from models.llama_reference import random_llama_weights

    from tfmodels.checkpoints import load_gguf

    tokenizer = tiny_tokenizer()
    weights = random_llama_weights(vocab_size=tokenizer.get_vocab_size(), seed=3, **TINY)
    model = load_gguf(
        write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer), sequence_length=16
    )
    export_dir = export.export(
        model, str(tmp_path / "lm" / "1"), max_new_tokens=4, warmup_prompts=(), jit_compile=False
    )
    served = tf.saved_model.load(export_dir).signatures["generate"](
        prompt=tf.constant(["The capital of"]), max_new_tokens=tf.constant([4])
    )
    expected = model.generate(["The capital of"], max_new_tokens=4, jit_compile=False)
    assert [c.decode() for c in served["completion"].numpy()] == expected
    assert served["num_generated_tokens"].numpy().tolist() == [4], expected  # not cut short
