"""from_preset: the shipped names (all-MiniLM-L6-v2, SmolLM2) load what the existing import paths
load, local .keras / Hugging Face / GGUF paths work, and a bad name or a wrong class is named."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from checkpoints.llama_files import TINY, tiny_tokenizer, write_gguf, write_hf_llama
from models.llama_reference import random_llama_weights

import tfmodels
from tfmodels import datasets
from tfmodels.checkpoints import load_gguf, load_hf_bert, load_hf_llama
from tfmodels.models.bert.span_qa_reader import SpanQAPreprocessor
from tfmodels.models.bert.token_classifier import TokenClassifierPreprocessor
from tfmodels.presets import resolve
from tfmodels.text import BertPreprocessor, BertTokenizer, BytePairTokenizer

TEXTS = ["A gorgeous film, I loved it.", "Dull and far too long."]
MINILM = "all_minilm_l6_v2"


@pytest.fixture(scope="module")
def minilm_classifier():
    return tfmodels.BertClassifier.from_preset(MINILM, num_classes=2, sequence_length=32)


@pytest.fixture(scope="module")
def hf_encoder():
    """all-MiniLM-L6-v2 loaded the existing way."""
    return load_hf_bert(datasets.minilm_path())


def test_presets_lists_the_shipped_names():
    assert tfmodels.presets() == ["all_minilm_l6_v2", "smollm2_135m_instruct"]
    assert resolve(MINILM) == ("hf_bert", datasets.minilm_path())
    assert resolve(datasets.minilm_path()) == ("hf_bert", datasets.minilm_path())
    assert resolve("smollm2_135m_instruct") == ("gguf", datasets.smollm2_path())


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match="unknown preset 'minilm'; known presets: all_minilm_l6_v2, " "smollm2_135m_instruct",
    ):
        tfmodels.BertClassifier.from_preset("minilm", num_classes=2)


def test_a_class_of_the_other_family_is_refused_before_loading(tmp_path):
    with pytest.raises(ValueError, match="BERT checkpoint; CausalLM cannot be loaded"):
        tfmodels.CausalLM.from_preset(MINILM)
    with pytest.raises(ValueError, match="causal LM.*BertTokenizer cannot be loaded"):
        BertTokenizer.from_preset("smollm2_135m_instruct")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="neither a .keras file"):
        tfmodels.BertEncoder.from_preset(str(tmp_path / "notes.txt"))


def test_minilm_classifier_has_the_hf_encoder_and_the_minilm_tokenizer(
    minilm_classifier, hf_encoder
):
    model = minilm_classifier
    assert isinstance(model.preprocessor, BertPreprocessor)
    assert model.preprocessor.sequence_length == 32
    reference_tokenizer = BertTokenizer.from_vocab_file(
        f"{datasets.minilm_path()}/vocab.txt", lowercase=True
    )
    x = model.preprocessor(tf.constant(TEXTS))
    expected_ids = BertPreprocessor(reference_tokenizer, 32)(tf.constant(TEXTS))["token_ids"]
    np.testing.assert_array_equal(x["token_ids"], expected_ids)
    outputs = model.encoder(x)
    expected = hf_encoder(x)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(np.asarray(outputs[key]), np.asarray(expected[key]))


def test_minilm_classifier_predicts_on_raw_strings(minilm_classifier):
    """(Its first fit traces MiniLM's train step for ~45 s on 2 busy cores: the tiny classifier of
    the .keras test fits on raw strings instead.)"""
    model = minilm_classifier
    direct = model(model.preprocessor(tf.constant(TEXTS)), training=False)
    np.testing.assert_allclose(model.predict(TEXTS, verbose=0), direct, atol=1e-5)


def test_every_bert_role_loads_from_the_preset(hf_encoder):
    encoder = tfmodels.BertEncoder.from_preset(MINILM)
    for got, want in zip(encoder.get_weights(), hf_encoder.get_weights()):
        np.testing.assert_array_equal(got, want)
    tokenizer = BertTokenizer.from_preset(MINILM)
    assert tokenizer.lowercase and tokenizer.vocabulary_size() == 30522
    assert BertPreprocessor.from_preset(MINILM, sequence_length=16).sequence_length == 16
    tagger = tfmodels.BertTokenClassifier.from_preset(
        MINILM, tags=["O", "B-PER", "I-PER"], sequence_length=32
    )
    assert isinstance(tagger.preprocessor, TokenClassifierPreprocessor)
    assert tagger.num_classes == 3
    reader = tfmodels.BertSpanQA.from_preset(MINILM, sequence_length=128, doc_stride=32)
    assert isinstance(reader.preprocessor, SpanQAPreprocessor)
    assert reader.preprocessor.doc_stride == 32
    with pytest.raises(ValueError, match="needs tags="):
        tfmodels.BertTokenClassifier.from_preset(MINILM)


def _tiny_classifier():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "gorgeous", "film", "dull"]
    config = tfmodels.BertConfig(
        vocab_size=len(vocab),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
    )
    return tfmodels.BertClassifier(
        tfmodels.BertEncoder(config),
        num_classes=2,
        preprocessor=BertPreprocessor(BertTokenizer(vocab), 8),
    )


def test_a_keras_file_round_trips_and_gives_its_parts(tmp_path):
    model = _tiny_classifier()
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = tfmodels.BertClassifier.from_preset(path)
    np.testing.assert_allclose(
        loaded.predict(TEXTS, verbose=0), model.predict(TEXTS, verbose=0), atol=1e-6
    )
    loaded.compile(optimizer=keras.optimizers.Adam(0.01), jit_compile=False)
    history = loaded.fit(TEXTS * 4, np.array([1, 0] * 4), epochs=10, verbose=0)  # raw strings in
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert isinstance(tfmodels.BertEncoder.from_preset(path), tfmodels.BertEncoder)
    assert BertTokenizer.from_preset(path).decode([6, 7]) == "gorgeous film"
    assert BertPreprocessor.from_preset(path).sequence_length == 8
    with pytest.raises(ValueError, match="holds a BertClassifier, which has no CausalLM"):
        tfmodels.CausalLM.from_preset(path)
    with pytest.raises(ValueError, match="loaded as saved; got options"):
        tfmodels.BertClassifier.from_preset(path, num_classes=3)


@pytest.fixture(scope="module")
def tiny_llama():
    tokenizer = tiny_tokenizer()
    return tokenizer, random_llama_weights(vocab_size=tokenizer.get_vocab_size(), seed=3, **TINY)


@pytest.mark.parametrize("kind", ["gguf", "hf_llama"])
def test_a_tiny_decoder_file_loads_like_the_existing_import(tmp_path, tiny_llama, kind):
    tokenizer, weights = tiny_llama
    if kind == "gguf":
        path, existing = write_gguf(str(tmp_path / "tiny.gguf"), weights, tokenizer), load_gguf
    else:
        write_hf_llama(str(tmp_path / "hf"), weights, tokenizer)
        path, existing = str(tmp_path / "hf"), load_hf_llama
    assert resolve(path) == (kind, path)
    model = tfmodels.CausalLM.from_preset(path, sequence_length=16)
    reference = existing(path, sequence_length=16)
    ids = np.array([[5, 6, 7, 8]], "int32")
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    np.testing.assert_array_equal(np.asarray(model(inputs)), np.asarray(reference(inputs)))
    unnamed = ("name", "tokenizer")  # layer names are numbered per process
    assert {k: v for k, v in model.preprocessor.get_config().items() if k not in unnamed} == {
        k: v for k, v in reference.preprocessor.get_config().items() if k not in unnamed
    }
    bpe = BytePairTokenizer.from_preset(path)
    assert bpe.decode(bpe.tokenize("Hello world!")) == "Hello world!"
    assert isinstance(tfmodels.DecoderBackbone.from_preset(path), tfmodels.DecoderBackbone)
    assert tfmodels.CausalLMPreprocessor.from_preset(path, sequence_length=8).sequence_length == 8
    with pytest.raises(ValueError, match="BertClassifier cannot be loaded"):
        tfmodels.BertClassifier.from_preset(path, num_classes=2)


@pytest.mark.e2e
def test_smollm2_preset_is_load_gguf_of_the_packaged_file():
    """The shipped SmolLM2 by name: the same weights, tokenizer and chat template as
    ``load_gguf(datasets.smollm2_path())`` (whose greedy answers tests/checkpoints checks)."""
    model = tfmodels.CausalLM.from_preset("smollm2_135m_instruct", sequence_length=64)
    reference = load_gguf(datasets.smollm2_path(), sequence_length=64)
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, want)
    prompt = model.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}]
    )
    assert prompt == reference.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}]
    )
    np.testing.assert_array_equal(model.preprocessor.tokenizer.tokenize(prompt),
                                  reference.preprocessor.tokenizer.tokenize(prompt))
