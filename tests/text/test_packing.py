"""BertPacker / BertPreprocessor: layout, truncation strategies, graph use."""

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.text import BertPacker, BertPreprocessor, truncation_lengths


def _round_robin(lengths, budget):
    keep = [0] * len(lengths)
    while budget > 0 and any(k < n for k, n in zip(keep, lengths)):
        for i, n in enumerate(lengths):
            if budget > 0 and keep[i] < n:
                keep[i] += 1
                budget -= 1
    return keep


def _truncate_seq_pair(len_a, len_b, budget):
    """google-research/bert run_classifier._truncate_seq_pair, on lengths."""
    while len_a + len_b > budget:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return [len_a, len_b]


def test_truncation_strategies_match_python_definitions():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 40, size=(300, 2))
    budgets = rng.integers(0, 50, size=300)
    for strategy in ("round_robin", "longest_first", "waterfall"):
        for budget in set(budgets.tolist()):
            rows = lengths[budgets == budget]
            got = truncation_lengths(tf.constant(rows), budget, strategy).numpy().tolist()
            for row, keep in zip(rows.tolist(), got):
                if strategy == "round_robin":
                    assert keep == _round_robin(row, budget), (row, budget)
                elif strategy == "longest_first":
                    assert keep == _truncate_seq_pair(*row, budget), (row, budget)
                else:
                    assert keep == [min(row[0], budget), min(row[1], max(0, budget - row[0]))]
    three = rng.integers(0, 20, size=(100, 3))
    got = truncation_lengths(tf.constant(three), 17, "round_robin").numpy().tolist()
    assert got == [_round_robin(r, 17) for r in three.tolist()]


def test_pack_pair_layout_and_padding():
    packer = BertPacker(sequence_length=10, cls_id=101, sep_id=102, pad_id=0)
    a = tf.ragged.constant([[1, 2, 3], [4, 5, 6, 7, 8, 9, 10]])
    b = tf.ragged.constant([[11], [12, 13, 14, 15, 16]])
    out = packer((a, b))
    assert out["token_ids"].numpy().tolist() == [
        [101, 1, 2, 3, 102, 11, 102, 0, 0, 0],
        [101, 4, 5, 6, 7, 102, 12, 13, 14, 102],
    ]
    assert out["segment_ids"].numpy().tolist() == [
        [0, 0, 0, 0, 0, 1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
    ]
    assert out["padding_mask"].numpy().tolist() == [[1] * 7 + [0] * 3, [1] * 10]
    assert all(v.dtype == tf.int32 and v.shape == (2, 10) for v in out.values())


def test_pack_single_segment_truncates_and_accepts_lists():
    packer = BertPacker(sequence_length=5, cls_id=101, sep_id=102)
    out = packer([[1, 2, 3, 4, 5], []])
    assert out["token_ids"].numpy().tolist() == [[101, 1, 2, 3, 102], [101, 102, 0, 0, 0]]
    with pytest.raises(ValueError, match="no room"):
        BertPacker(sequence_length=2, cls_id=1, sep_id=2)((tf.ragged.constant([[1]]),) * 2)
    with pytest.raises(ValueError, match="truncate"):
        BertPacker(8, 1, 2, truncate="middle_out")


def test_preprocessor_on_real_pairs(tokenizer, squad_texts):
    pre = BertPreprocessor(tokenizer, sequence_length=64)
    questions, contexts = squad_texts[1:20:3], squad_texts[0:19:3]
    out = pre((tf.constant(questions), tf.constant(contexts)))
    q_ids = tokenizer(questions).to_list()
    for row, seg, q in zip(out["token_ids"].numpy(), out["segment_ids"].numpy(), q_ids):
        assert row[0] == tokenizer.cls_token_id
        # Short questions are kept whole; the long paragraph is truncated.
        assert row[1 : 1 + len(q)].tolist() == q and row[1 + len(q)] == tokenizer.sep_token_id
        assert row[-1] == tokenizer.sep_token_id and seg[-1] == 1
    single = pre(tf.constant("A scalar text."))
    assert single["token_ids"].shape == (64,)


def test_preprocessor_in_tf_data_functional_model_and_config(tokenizer, imdb_texts):
    pre = BertPreprocessor(tokenizer, sequence_length=32)
    expected = pre(tf.constant(imdb_texts[:8]))
    ds = tf.data.Dataset.from_tensor_slices(imdb_texts[:8]).batch(4).map(pre)
    got = np.concatenate([b["token_ids"].numpy() for b in ds])
    np.testing.assert_array_equal(got, expected["token_ids"].numpy())

    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, pre(inputs))
    np.testing.assert_array_equal(
        model(tf.constant(imdb_texts[:8]))["token_ids"].numpy(), expected["token_ids"].numpy()
    )
    # The vocabulary is an asset, not config: a config round trip passes it back in.
    serialized = keras.saving.serialize_keras_object(pre)
    assert serialized["config"]["tokenizer"]["config"]["vocabulary"] is None
    serialized["config"]["tokenizer"]["config"]["vocabulary"] = tokenizer.get_vocabulary()
    clone = keras.saving.deserialize_keras_object(serialized)
    np.testing.assert_array_equal(
        clone(tf.constant(imdb_texts[:8]))["segment_ids"].numpy(), expected["segment_ids"].numpy()
    )
    empty = BertPreprocessor.from_config(pre.get_config())
    with pytest.raises(ValueError, match="has no vocabulary"):
        empty(tf.constant(imdb_texts[:2]))


def test_keras_file_keeps_the_vocabulary_as_an_asset(tokenizer, imdb_texts, tmp_path):
    pre = BertPreprocessor(tokenizer, sequence_length=32)
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, pre(inputs))
    path = tmp_path / "pre.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        config = archive.read("config.json").decode("utf-8")
        assets = [n for n in names if n.startswith("assets/") and n.endswith("vocabulary.json")]
        assert len(assets) == 1, names
        assert json.loads(archive.read(assets[0])) == tokenizer.get_vocabulary()
    # The config JSON holds no token list: it stays small whatever the vocabulary size.
    assert "##" not in config and len(config) < 4000, len(config)
    assert tokenizer.vocabulary_size() > 1000
    loaded = keras.saving.load_model(path)
    texts = tf.constant(imdb_texts[:8])
    for name, value in model(texts).items():
        np.testing.assert_array_equal(loaded(texts)[name].numpy(), value.numpy(), err_msg=name)
    loaded_tokenizer = loaded.layers[-1].tokenizer
    assert loaded_tokenizer.get_vocabulary() == tokenizer.get_vocabulary()
    assert loaded_tokenizer(texts).to_list() == tokenizer(texts).to_list()
