"""The ``preprocessor=`` mechanism of BERT tasks: raw strings / string pairs / tf.data of strings into
fit, evaluate and predict, and a .keras round trip that keeps the preprocessor. (Span QA's and the
token classifier's preprocessors are tested with their tasks.)"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels import BertConfig, BertEncoder
from tfmodels.models.bert import BertClassifier
from tfmodels.text import BertPreprocessor, BertTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "film", "bad", "!", "what", "?"]
TEXTS = ["good film!", "bad film", "good", "bad!", "what a film"]
LABELS = np.array([1, 0, 1, 0, 1])


def _encoder():
    return BertEncoder(BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32))


def _preprocessor():
    return BertPreprocessor(BertTokenizer(VOCAB), sequence_length=8)


def test_classifier_raw_strings_match_token_ids_and_learn():
    preprocessor = _preprocessor()
    model = BertClassifier(_encoder(), num_classes=2, dropout=0.0, preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    ids = {k: v.numpy() for k, v in preprocessor(tf.constant(TEXTS)).items()}
    np.testing.assert_allclose(model.predict(TEXTS, verbose=0), model.predict(ids, verbose=0))
    before = model.evaluate(TEXTS, LABELS, verbose=0)[0]
    model.fit(TEXTS, LABELS, epochs=15, batch_size=5, verbose=0)
    assert model.evaluate(TEXTS, LABELS, verbose=0)[0] < before
    # tf.data of strings (batched, as Keras expects) gives the same loss as the arrays.
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(2)
    np.testing.assert_allclose(
        model.evaluate(dataset, verbose=0)[0], model.evaluate(TEXTS, LABELS, verbose=0)[0], rtol=1e-5
    )
    history = model.fit(dataset, validation_data=(TEXTS, LABELS), epochs=1, verbose=0)
    assert "val_loss" in history.history


def test_classifier_string_pairs():
    preprocessor = _preprocessor()
    model = BertClassifier(_encoder(), num_classes=2, preprocessor=preprocessor)
    first, second = ["good film", "bad"], ["what?", "film!"]
    ids = preprocessor((tf.constant(first), tf.constant(second)))
    assert ids["segment_ids"].numpy().max() == 1
    np.testing.assert_allclose(
        model.predict((first, second), verbose=0), model.predict(ids, verbose=0), rtol=1e-6
    )
    dataset = tf.data.Dataset.from_tensor_slices(((first, second),)).batch(2)
    np.testing.assert_allclose(model.predict(dataset, verbose=0), model.predict(ids, verbose=0),
                               rtol=1e-6)


def test_classifier_keras_round_trip_keeps_preprocessor(tmp_path):
    model = BertClassifier(_encoder(), num_classes=3, preprocessor=_preprocessor())
    model.compile()
    model.fit(TEXTS, np.array([0, 1, 2, 0, 1]), epochs=1, verbose=0)
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.preprocessor.tokenizer.get_vocabulary() == VOCAB
    np.testing.assert_array_equal(loaded.predict(TEXTS, verbose=0), model.predict(TEXTS, verbose=0))


def test_without_preprocessor_raw_strings_fail_clearly():
    model = BertClassifier(_encoder(), num_classes=2)
    with pytest.raises(ValueError, match="raw text but has no preprocessor"):
        model.predict(TEXTS, verbose=0)


def test_non_string_raw_input_is_a_clear_error():
    model = BertClassifier(_encoder(), num_classes=2, preprocessor=_preprocessor())
    with pytest.raises(TypeError, match="item 1 is int"):
        model.predict(["good", 3], verbose=0)
    with pytest.raises(TypeError, match="one string"):
        model.predict("good film", verbose=0)
