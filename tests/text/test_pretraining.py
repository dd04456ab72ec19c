"""BERT pretraining data: masking statistics, NSP balance, fixed shapes, bad input."""

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.text import BertTokenizer
from tfmodels.text.pretraining import (
    mask_tokens,
    pretraining_dataset,
    read_documents,
    sentence_pairs,
    split_sentences,
    tokenize_documents,
)

CLS, SEP, PAD, MASK = 2, 3, 0, 4
SPECIALS = [CLS, SEP, PAD]


def _packed_batch(batch=3000, length=64, seed=0):
    """[CLS] a [SEP] b [SEP] + padding, random lengths, ordinary ids 10..99."""
    rng = np.random.default_rng(seed)
    ids = np.full((batch, length), PAD, np.int32)
    mask = np.zeros((batch, length), np.int32)
    for row in range(batch):
        n = rng.integers(10, length + 1)
        a = rng.integers(1, n - 3)
        ids[row, :n] = rng.integers(10, 100, n)
        ids[row, [0, a + 1, n - 1]] = [CLS, SEP, SEP]
        mask[row, :n] = 1
    return {"token_ids": ids, "padding_mask": mask}


def test_mask_rates_and_specials_never_masked():
    packed = _packed_batch()
    masked, positions, ids, weights = mask_tokens(
        packed, mask_id=MASK, special_ids=SPECIALS, replacement_ids=np.arange(10, 100),
        max_predictions=20, seed=3,
    )
    original, new = packed["token_ids"], masked["token_ids"].numpy()
    positions, ids, weights = positions.numpy(), ids.numpy(), weights.numpy()
    candidate = (packed["padding_mask"] == 1) & ~np.isin(original, SPECIALS)
    chosen = np.zeros_like(candidate)
    for row in range(len(original)):
        p = positions[row][weights[row] == 1]
        chosen[row, p] = True
        np.testing.assert_array_equal(ids[row][weights[row] == 1], original[row, p])
        assert (ids[row][weights[row] == 0] == 0).all()
    # Specials and padding are never chosen nor changed; unchosen tokens never change.
    assert not (chosen & ~candidate).any()
    assert (new[~chosen] == original[~chosen]).all()
    # 15% of the candidates (rounded per example, so allow a little).
    rate = chosen.sum() / candidate.sum()
    assert abs(rate - 0.15) < 0.01, rate
    per_row = chosen.sum(1) / candidate.sum(1)
    assert (np.abs(per_row - 0.15) <= 0.5 / candidate.sum(1) + 1e-6).all()
    # 80% [MASK], 10% random, 10% kept (binomial: n ~ 20k, 5 sigma < 0.015).
    n = chosen.sum()
    as_mask = (new[chosen] == MASK).mean()
    kept = (new[chosen] == original[chosen]).mean()
    randomised = 1 - as_mask - kept
    assert abs(as_mask - 0.8) < 0.015 and abs(randomised - 0.1) < 0.012 and abs(kept - 0.1) < 0.012, (
        n, as_mask, randomised, kept)
    assert np.isin(new[chosen & (new != MASK)], np.arange(10, 100)).all()


def test_max_predictions_caps_and_at_least_one():
    packed = {
        "token_ids": np.array([[CLS, 11, SEP, 12, SEP, PAD] + [PAD] * 2, [CLS] + [20] * 6 + [SEP]], np.int32),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 0, 0, 0], [1] * 8], np.int32),
    }
    _, _, _, weights = mask_tokens(
        packed, mask_id=MASK, special_ids=SPECIALS, replacement_ids=[20], max_predictions=1, seed=1
    )
    assert weights.numpy().sum(1).tolist() == [1, 1]  # 2 candidates -> round(0.3) -> at least 1


def test_whole_word_masking_takes_whole_words():
    rng = np.random.default_rng(1)
    # ids 50..99 are "##" pieces.
    is_continuation = np.arange(100) >= 50
    packed = _packed_batch(batch=800, seed=2)
    ids = packed["token_ids"]
    real = (packed["padding_mask"] == 1) & ~np.isin(ids, SPECIALS)
    ids[real] = np.where(rng.random(real.sum()) < 0.4, rng.integers(50, 100, real.sum()),
                         rng.integers(10, 50, real.sum()))
    masked, positions, _, weights = mask_tokens(
        packed, mask_id=MASK, special_ids=SPECIALS, replacement_ids=np.arange(10, 50),
        is_continuation=is_continuation, whole_word_masking=True, max_predictions=20, seed=5,
    )
    chosen = np.zeros(ids.shape, bool)
    positions, weights = positions.numpy(), weights.numpy()
    for row in range(len(ids)):
        chosen[row, positions[row][weights[row] == 1]] = True
    continuation = real & is_continuation[ids]
    previous_real = np.pad(real[:, :-1], [[0, 0], [1, 0]])
    inside_word = continuation & previous_real  # a ## piece that continues a word
    previous_chosen = np.pad(chosen[:, :-1], [[0, 0], [1, 0]])
    # A piece continuing a word is chosen exactly when the piece before it is.
    assert (chosen[inside_word] == previous_chosen[inside_word]).all()
    rate = chosen.sum() / real.sum()
    assert 0.11 < rate <= 0.151, rate


def test_split_sentences():
    text = 'Great film. I loved it!<br /><br />Would I watch again? "Yes." 10/10 from me. e.g. this'
    assert split_sentences(text) == [
        "Great film.", "I loved it!", "Would I watch again?", '"Yes."', "10/10 from me. e.g. this"]
    assert split_sentences("   ") == []


def test_sentence_pairs_are_balanced_and_real_next_follows():
    documents = [[[d * 1000 + s] * 5 for s in range(8)] for d in range(40)]
    labels, next_ok = [], []
    rng = np.random.default_rng(0)
    for _ in range(20):
        for a, b, label in sentence_pairs(documents, sequence_length=24, rng=rng):
            labels.append(label)
            same_doc = a[-1] // 1000 == b[0] // 1000
            if label == 0:
                next_ok.append(same_doc and b[0] == a[-1] + 1)
            else:
                assert not same_doc
    n = len(labels)
    assert n > 1000
    assert abs(np.mean(labels) - 0.5) < 4 * 0.5 / np.sqrt(n)
    assert all(next_ok)


def test_pipeline_shapes_labels_and_specials(tokenizer, imdb_texts):
    ds = pretraining_dataset(
        imdb_texts[:120], tokenizer, sequence_length=64, max_predictions=12, batch_size=32, seed=7
    )
    specials = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id]
    labels, rates = [], []
    for x, y, w in ds.repeat(2):
        assert {k: v.shape.as_list() for k, v in x.items()} == {
            "token_ids": [32, 64], "segment_ids": [32, 64], "padding_mask": [32, 64],
            "masked_positions": [32, 12]}
        assert y["mlm_logits"].shape == (32, 12) and y["nsp_logits"].shape == (32,)
        assert w["mlm_logits"].shape == (32, 12) and w["nsp_logits"].shape == (32,)
        assert all(v.dtype == tf.int32 for v in list(x.values()) + list(y.values()))
        token_ids, weights = x["token_ids"].numpy(), w["mlm_logits"].numpy()
        targets = y["mlm_logits"].numpy()
        used = weights == 1
        assert not np.isin(targets[used], specials).any()
        at = np.take_along_axis(token_ids, x["masked_positions"].numpy(), axis=1)
        assert not np.isin(at[used], [tokenizer.cls_token_id, tokenizer.sep_token_id]).any()
        # [CLS] first, two [SEP], segment ids 0 then 1.
        assert (token_ids[:, 0] == tokenizer.cls_token_id).all()
        assert ((token_ids == tokenizer.sep_token_id).sum(1) == 2).all()
        real = x["padding_mask"].numpy().sum(1) - 3
        rates += list(used.sum(1) / real)
        labels += y["nsp_logits"].numpy().tolist()
    assert abs(np.mean(labels) - 0.5) < 4 * 0.5 / np.sqrt(len(labels)), np.mean(labels)
    assert 0.12 < np.mean(rates) < 0.17, np.mean(rates)


# -- bad input -------------------------------------------------------------


def test_empty_documents_skipped_or_refused(tokenizer, caplog):
    docs = ["A first sentence. And a second one.", "", "   \n ", "Another document here. Two."]
    with caplog.at_level("WARNING"):
        tokenized = tokenize_documents(docs, tokenizer)
    assert len(tokenized) == 2 and "skipped 2 empty document" in caplog.text
    with pytest.raises(ValueError, match="document 1 is empty"):
        tokenize_documents(docs, tokenizer, on_empty="error")
    with pytest.raises(ValueError, match="every document is empty"):
        pretraining_dataset(["", "  "], tokenizer)
    with pytest.raises(ValueError, match="no document has any token"):
        tokenize_documents(["\x00\x07"], tokenizer)


def test_non_utf8_input_is_refused_clearly(tokenizer, tmp_path):
    with pytest.raises(ValueError, match="document 1 is not valid UTF-8"):
        tokenize_documents([b"fine text.", b"bad \xff\xfe bytes"], tokenizer)
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"Doc one line.\nMore.\n\nDoc two \xc3\x28 broken.\n")
    with pytest.raises(ValueError, match="line 4 is not valid UTF-8"):
        read_documents(str(path))
    path.write_bytes(b"Doc one line.\nMore.\n\n\nDoc two.\n")
    assert read_documents(str(path)) == ["Doc one line. More.", "Doc two."]


@pytest.mark.parametrize("missing", ["[CLS]", "[SEP]", "[MASK]", "[UNK]"])
def test_vocab_without_special_token_is_refused(tmp_path, missing):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film"]
    vocab.remove(missing)
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) " + missing.replace("[", r"\[")):
        BertTokenizer.from_vocab_file(str(path))


def test_non_utf8_vocab_is_refused(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nfi\xffm\n")
    with pytest.raises(ValueError, match="not valid UTF-8 at line 6"):
        BertTokenizer.from_vocab_file(str(path))


def test_bad_rates_are_refused(tokenizer):
    with pytest.raises(ValueError, match="mask_rate"):
        pretraining_dataset(["Some text. More text."], tokenizer, mask_rate=0.0)
    with pytest.raises(ValueError, match="mask_token_rate"):
        pretraining_dataset(["Some text. More text."], tokenizer, mask_token_rate=0.95)
