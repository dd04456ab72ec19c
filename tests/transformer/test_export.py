"""Text in -> text out: the Translator tf.Module as a SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.export.seq2seq import Translator, export_translator
from tfmodels.models.transformer import Seq2SeqTransformer
from tfmodels.models.transformer import text as text_lib
from tfmodels.text import BertTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "in", "the", "beginning", "god", "##s",
         "created", "heaven", "and", "earth", ".", ",", "en", "el", "principio", "dios"]


def test_text_helpers():
    tokenizer = BertTokenizer(VOCAB)
    ids = text_lib.encode_source(tokenizer, tf.constant(["In the beginning", "god"]), 2)
    np.testing.assert_array_equal(ids.numpy(), [[5, 6], [8, 0]])
    decoder_in, labels = text_lib.teacher_forcing(tf.ragged.constant([[5, 6], [8]]), 2, 3)
    assert decoder_in.to_list() == [[2, 5, 6], [2, 8]]
    assert labels.to_list() == [[5, 6, 3], [8, 3]]
    out = text_lib.decode_target(tokenizer, tf.constant([[8, 9, 15, 12, 3, 7], [3, 0, 0, 0, 0, 0]]), 3)
    assert [s.decode() for s in out.numpy()] == ["gods, and", ""]


def test_saved_model_round_trip(tmp_path):
    tokenizer = BertTokenizer(VOCAB)
    model = Seq2SeqTransformer(
        len(VOCAB), hidden_size=16, num_heads=2, intermediate_size=32, num_encoder_layers=1,
        num_decoder_layers=1, dropout=0.0, max_source_length=16, max_target_length=8,
        pad_id=0, start_id=2, end_id=3,
    )
    model.build()
    translator = Translator(model, tokenizer, tokenizer, max_length=6)
    texts = tf.constant(["In the beginning God created the heaven and the earth.", "God"])
    expected = translator.translate(texts).numpy()
    assert expected.shape == (2,) and expected.dtype == object

    path = export_translator(translator, str(tmp_path / "translator"))
    loaded = tf.saved_model.load(path)
    np.testing.assert_array_equal(loaded.translate(texts).numpy(), expected)
    served = loaded.signatures["serving_default"](texts=texts)
    np.testing.assert_array_equal(served["translations"].numpy(), expected)
    # The general generation signature: per-row limits, counts without the end token.
    general = loaded.signatures["generate"](prompt=texts, max_new_tokens=tf.constant([6, 1]))
    assert general["completion"].numpy()[0] == expected[0]
    tokens = model.generate(text_lib.encode_source(tokenizer, texts, 16), max_length=6).numpy()
    counts = [int(np.argmax(row == 3)) if (row == 3).any() else 6 for row in tokens]
    assert general["num_generated_tokens"].numpy()[0] == counts[0]
    assert general["num_generated_tokens"].numpy()[1] == min(counts[1], 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"max_new_tokens must be in \[1, 6\]"):
        loaded.signatures["generate"](prompt=texts, max_new_tokens=tf.constant([7, 1]))
    # Raw Python strings in, Python strings out.
    assert translator.generate(["God"]) == [expected[1].decode()]
    assert translator.generate("God") == expected[1].decode()


def test_old_import_paths_still_work():
    import tfmodels
    from tfmodels.models import transformer
    from tfmodels.models.transformer import export as old_module

    assert old_module.Translator is transformer.Translator is tfmodels.Translator is Translator
    assert old_module.export_translator is tfmodels.export_translator is export_translator
