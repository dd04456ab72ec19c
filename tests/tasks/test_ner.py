"""Token classification end to end in Python: alignment (both forms), offsets, windows, decoding, raw-text
fit / predict_entities and the .keras round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels import BertConfig, BertEncoder
from tfmodels.metrics import tag_chunks
from tfmodels.models.bert.token_classifier import BertTokenClassifier, TokenClassifierPreprocessor
from tfmodels.text import BertTokenizer, alignment

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "anna", "lives", "in", "paris", "new", "york",
         "##er", ".", "and", "cafe", "北", "京", "x"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(VOCAB)


def test_word_tags_label_first_piece_only(tokenizer):
    pre = TokenClassifierPreprocessor(tokenizer, TAGS, sequence_length=10)
    x, y, w = pre.align([["Anna", "lives", "in", "New", "Yorker", "."]],
                        [["B-PER", "O", "O", "B-LOC", "I-LOC", "O"]])
    assert x["token_ids"][0].tolist() == [2, 5, 6, 7, 9, 10, 11, 12, 3, 0]
    assert y[0].tolist() == [0, 1, 0, 0, 3, 4, 0, 0, 0, 0]  # "##er" and specials carry no label
    assert w[0].tolist() == [0, 1, 1, 1, 1, 1, 0, 1, 0, 0]
    assert x["padding_mask"][0].tolist() == [1] * 9 + [0]


def test_a_given_word_of_several_bert_words_labels_each_as_decoding_reads_them(tokenizer):
    # "anna." is two BERT words ("anna", "."): predict_entities reads a tag at both, so both are trained.
    pre = TokenClassifierPreprocessor(tokenizer, TAGS, sequence_length=10)
    _, y, w = pre.align([["anna.", "lives", "in", "Yorker."]], [["B-PER", "O", "O", "O"]])
    assert [TAGS[t] if k else None for t, k in zip(y[0], w[0])][:8] == [
        None, "B-PER", "I-PER", "O", "O", "O", None, "O"]  # ##er: no label; "." of Yorker.: O
    bioes = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    _, _, labels = alignment.align_word_tags(tokenizer, [["paris.x"]], [["S-LOC"]], bioes)
    assert [bioes[i] for i in labels[0].numpy()] == ["B-LOC", "I-LOC", "E-LOC"]
    _, _, labels = alignment.align_word_tags(tokenizer, [["paris."]], [["B-PER"]], ["O", "B-PER"])
    assert labels[0].numpy().tolist() == [1, alignment.IGNORE]  # no I-PER in the tag set


def test_char_spans_align_like_word_tags(tokenizer):
    pre = TokenClassifierPreprocessor(tokenizer, TAGS, sequence_length=10)
    from_words = pre.align([["Anna", "lives", "in", "New", "Yorker", "."]],
                           [["B-PER", "O", "O", "B-LOC", "I-LOC", "O"]])
    text = "Anna lives in New Yorker."
    from_spans = pre.align([text], [[(14, 24, "LOC"), (0, 4, "PER")]])
    for a, b in zip(from_words[1:], from_spans[1:]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(from_words[0]["token_ids"], from_spans[0]["token_ids"])


def test_bioes_spans(tokenizer):
    tags = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "S-PER"]
    _, _, labels = alignment.align_char_spans(tokenizer, ["anna in new york paris"],
                                              [[(0, 4, "PER"), (8, 16, "LOC"), (17, 22, "LOC")]], tags)
    assert [tags[i] for i in labels[0].numpy()] == ["S-PER", "O", "B-LOC", "E-LOC", "S-LOC"]


@pytest.mark.parametrize("text", ["Café Anna", "北京 x", "x 😀 anna", "  anna\t", "", "ÀNNA"])
def test_piece_offsets_are_character_offsets(tokenizer, text):
    pieces = alignment.text_pieces(tokenizer, tf.constant([text]))
    starts, ends = pieces["start"][0].numpy(), pieces["end"][0].numpy()
    surfaces = [text[s:e] for s, e in zip(starts, ends)]
    expected = {"Café Anna": ["Café", "Anna"], "北京 x": ["北", "京", "x"], "x 😀 anna": ["x", "😀", "anna"],
                "  anna\t": ["anna"], "": [], "ÀNNA": ["ÀNNA"]}[text]
    assert surfaces == expected


def test_errors_name_the_sentence(tokenizer):
    pre = TokenClassifierPreprocessor(tokenizer, TAGS, sequence_length=10)
    with pytest.raises(ValueError, match=r"sentence 1 \('new york'\): tag 'B-ORG' is not in the tag set"):
        pre.align([["anna"], ["new", "york"]], [["B-PER"], ["B-ORG", "O"]])
    with pytest.raises(ValueError, match=r"text 0 \('anna'\): span \(2, 9, 'PER'\) does not fall on"):
        pre.align(["anna"], [[(2, 9, "PER")]])
    with pytest.raises(ValueError, match="covers no word"):
        pre.align(["anna  paris"], [[(4, 6, "PER")]])
    with pytest.raises(ValueError, match="overlaps"):
        pre.align(["new york"], [[(0, 8, "LOC"), (4, 8, "LOC")]])
    with pytest.raises(ValueError, match="needs tag 'B-ORG'"):
        pre.align(["anna"], [[(0, 4, "ORG")]])
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        pre.align([["anna", "x"]], [["O"]])


def _logits_from_ids(token_ids, tag_of_id):
    """Hand-made logits: each piece id votes for one tag (10 vs 0)."""
    token_ids = np.asarray(token_ids)
    logits = np.zeros(token_ids.shape + (len(TAGS),), "float32")
    for i, tag in enumerate(np.vectorize(lambda t: tag_of_id.get(int(t), 0))(token_ids).ravel()):
        logits.reshape(-1, len(TAGS))[i, tag] = 10.0
    return tf.constant(logits)


def test_decoding_repairs_bio_and_finds_entities_in_the_last_window(tokenizer):
    pre = TokenClassifierPreprocessor(tokenizer, TAGS, sequence_length=6, stride=2)
    # "paris" -> I-LOC (invalid after O: starts an entity), "york" -> I-LOC, "new" -> B-LOC,
    # "anna" -> B-PER.
    tag_of_id = {8: 4, 10: 4, 9: 3, 5: 1}
    text = "x " * 12 + "in new york paris . anna"
    x, window_text, pieces = pre.windows(tf.constant([text, "paris", ""]))
    assert window_text.numpy().tolist().count(0) > 3  # the long text spans several windows
    logits = _logits_from_ids(x["token_ids"].numpy(), tag_of_id)
    found = alignment.decode_entities(tf.constant([text, "paris", ""]), pieces, logits, window_text,
                                      6, 2, TAGS)
    entities = [list(zip(*(found[k][i].numpy().tolist() for k in ("type", "text", "start", "end"))))
                for i in range(3)]
    york = text.index("new")
    assert entities[0] == [(b"LOC", b"new york paris", york, york + 14), (b"PER", b"anna", len(text) - 4,
                                                                       len(text))]
    assert entities[1] == [(b"LOC", b"paris", 0, 5)] and entities[2] == []
    # Word-level tags chunk as tag_chunks (conlleval) does.
    words = text.split()
    word_tags = [TAGS[tag_of_id.get(VOCAB.index(w) if w in VOCAB else 1, 0)] for w in words]
    assert [(t, " ".join(words[a:b + 1])) for t, a, b in tag_chunks(word_tags)] == [
        ("LOC", "new york paris"), ("PER", "anna")]
    np.testing.assert_allclose(found["score"][0].numpy(), 1 / (1 + 4 * np.exp(-10)), rtol=1e-5)


def _model(preprocessor):
    encoder = BertEncoder(BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32))
    return BertTokenClassifier(encoder, len(TAGS), dropout=0.0, preprocessor=preprocessor)


def test_raw_fit_predict_entities_and_keras_round_trip(tokenizer, tmp_path):
    model = _model(TokenClassifierPreprocessor(tokenizer, TAGS, sequence_length=8, stride=3))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    sentences = [["Anna", "lives", "in", "Paris"], ["New", "York", "and", "Anna"]]
    tags = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "I-LOC", "O", "B-PER"]]
    model.fit(sentences, tags, epochs=40, verbose=0)
    # Raw text with character spans trains through the same call.
    model.fit(["anna in paris"], [[(0, 4, "PER"), (8, 13, "LOC")]], epochs=1, verbose=0)
    texts = ["Anna lives in Paris", "new york and anna lives in paris and anna", "", " "]
    found = model.predict_entities(texts)
    assert [(e["type"], e["text"]) for e in found[0]] == [("PER", "Anna"), ("LOC", "Paris")]
    assert ("LOC", "paris") in [(e["type"], e["text"]) for e in found[1]]  # past the first window
    assert found[2] == [] and found[3] == []
    for text, entities in zip(texts, found):
        for e in entities:
            assert text[e["start"]:e["end"]] == e["text"] and 0 < e["score"] <= 1
    assert model.predict(texts, verbose=0).shape[1:] == (8, len(TAGS))
    path = str(tmp_path / "ner.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.predict_entities(texts) == found
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(2)
    np.testing.assert_allclose(loaded.predict(dataset, verbose=0), model.predict(texts, verbose=0),
                               atol=1e-5)


def test_bad_inputs(tokenizer):
    model = _model(TokenClassifierPreprocessor(tokenizer, TAGS, sequence_length=8))
    with pytest.raises(TypeError, match="item 1 is int"):
        model.predict_entities(["anna", 5])
    with pytest.raises(ValueError, match="needs a model built with preprocessor"):
        _model(None).predict_entities(["anna"])
    with pytest.raises(ValueError, match="4 tags but num_classes=5"):
        _model(TokenClassifierPreprocessor(tokenizer, TAGS[:4], sequence_length=8))
    with pytest.raises(ValueError, match="B-/I-/E-/S-"):
        TokenClassifierPreprocessor(tokenizer, ["O", "PER"])


def test_fit_from_a_dataset_of_words_and_tags_equals_fit_from_lists(tokenizer):
    pre = TokenClassifierPreprocessor(tokenizer, TAGS, sequence_length=8, stride=3)
    sentences = [["Anna", "lives", "in", "Paris"], ["New", "York", "and", "Anna"]]
    tags = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "I-LOC", "O", "B-PER"]]
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.ragged.constant(sentences), tf.ragged.constant(tags))).batch(2)
    model = _model(pre)
    model.compile()
    expected = model.evaluate(sentences, tags, verbose=0)
    np.testing.assert_allclose(model.evaluate(dataset, verbose=0), expected, rtol=1e-5)
    aligned = model.preprocess_dataset(dataset)  # lazily, in the graph: no Python per batch
    assert isinstance(aligned.element_spec[0]["token_ids"], tf.TensorSpec)
    # A dataset that already holds token ids goes to the network as it is, preprocessor or not.
    np.testing.assert_allclose(model.evaluate(aligned, verbose=0), expected, rtol=1e-5)
    bad = tf.data.Dataset.from_tensor_slices(
        (tf.ragged.constant(sentences), tf.ragged.constant([["B-PER", "O", "O", "B-ALIEN"], tags[1]]))).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="B-ALIEN"):
        model.evaluate(bad, verbose=0)


def test_graph_alignment_equals_the_python_alignment_on_wnut():
    import os

    from tfmodels.datasets import minilm_path
    from tfmodels.datasets.wnut import load_wnut16, wnut16_tags

    real = BertTokenizer.from_vocab_file(os.path.join(minilm_path(), "vocab.txt"), lowercase=True)
    sentences = load_wnut16()[:300] + [(["anna.", "\x00", "paris"], ["B-person", "O", "B-geo-loc"])]
    tags = wnut16_tags()
    words = [w for w, _ in sentences]
    _, ids, labels = alignment.align_word_tags(real, words, [t for _, t in sentences], tags)
    index = {t: i for i, t in enumerate(tags)}
    graph = tf.function(lambda w, t: alignment.align_word_tag_ids(real, w, t, tags))
    got_ids, got_labels = graph(tf.ragged.constant(words),
                                tf.ragged.constant([[index[t] for t in s] for _, s in sentences]))
    assert got_ids.to_list() == ids.to_list()
    assert got_labels.to_list() == labels.to_list()
    assert alignment.IGNORE in got_labels.flat_values.numpy()  # some words have several pieces
    bioes, small = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"], BertTokenizer(VOCAB)
    _, _, expected = alignment.align_word_tags(small, [["paris.x", "paris."]], [["S-LOC", "E-LOC"]], bioes)
    _, got = alignment.align_word_tag_ids(small, tf.ragged.constant([["paris.x", "paris."]]),
                                          tf.ragged.constant([[4, 3]]), bioes)
    assert got.to_list() == expected.to_list()


def _word_tags_reference(words, entities):
    """The rule written out plainly: a word overlapping an entity takes its type, B- on its first word."""
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    tags = ["O"] * len(words)
    for entity in entities:
        inside = [i for i, (s, w) in enumerate(zip(starts, words)) if s < entity["end"] and s + len(w) > entity["start"]]
        for k, i in enumerate(inside):
            if tags[i] == "O":
                tags[i] = f"{'B' if k == 0 else 'I'}-{entity['type']}"
    return tags


def test_word_tags_from_entities_follow_the_overlap_rule():
    import random

    from tfmodels.examples.ner import entities_to_word_tags

    rng = random.Random(0)
    batch, expected = [], []
    for _ in range(40):
        words = [rng.choice(["anna", "née", "北京", "😀", "x", "new", "york."]) for _ in range(rng.randint(0, 7))]
        text = " ".join(words)
        entities, cursor = [], 0
        while cursor < len(text) and rng.random() < 0.7:
            start = rng.randint(cursor, len(text) - 1)
            end = rng.randint(start + 1, min(len(text), start + 9))
            entities.append({"start": start, "end": end, "type": rng.choice(["PER", "LOC"])})
            cursor = end + rng.randint(-2, 3)  # some overlap, some gaps
        batch.append((words, entities))
        expected.append(_word_tags_reference(words, entities))
    ragged = lambda key, dtype: tf.ragged.constant([[e[key] for e in ents] for _, ents in batch], dtype,  # noqa: E731
                                                   ragged_rank=1)
    got = alignment.word_tags_from_entities(tf.ragged.constant([w for w, _ in batch], tf.string, ragged_rank=1),
                                            ragged("start", tf.int64), ragged("end", tf.int64),
                                            ragged("type", tf.string))
    assert [[t.decode() for t in row] for row in got.to_list()] == expected
    assert entities_to_word_tags(*batch[3]) == expected[3]
    assert any("I-" in t for row in expected for t in row) and any(not ents for _, ents in batch)
