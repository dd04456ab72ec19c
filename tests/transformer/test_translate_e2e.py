"""The translation example end to end at a tiny size: data, WordPiece, XLA fit, decoding, BLEU,
``.keras`` and SavedModel export. The reported BLEU comes from the full run (see the example)."""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.datasets import bible

MISSING = bible.missing_reason()


@pytest.mark.e2e
@pytest.mark.skipif(MISSING is not None, reason=f"English-Spanish Bible corpus unavailable: {MISSING}")
def test_tiny_translation_run(tmp_path):
    from tfmodels.examples import translate

    out = tmp_path / "run"
    results = translate.main(["--tiny", "--output-dir", str(out), "--export"])
    assert results["train_pairs"] == 1500 and results["test_pairs"] == 48
    assert results["train_steps"] > 0
    # Label-smoothed loss starts near log(vocabulary) (~8.7); training must bring it down.
    assert results["final_loss"] < 0.8 * math.log(6000)
    for key in ("bleu_greedy", "bleu_beam", "bleu_copy_source", "bleu_most_frequent_target"):
        assert 0.0 <= results[key] <= 100.0
    assert json.loads((out / "results.json").read_text()) == results

    model = keras.saving.load_model(str(out / "model.keras"))
    assert model.end_id == 3 and model.start_id == 2  # [SEP] and [CLS] of the vocabularies
    translator = tf.saved_model.load(str(out / "saved_model"))
    texts = tf.constant(["In the beginning God created the heaven and the earth.", "Amen."])
    translations = translator.signatures["serving_default"](texts=texts)["translations"].numpy()
    assert translations.shape == (2,)
    assert all(isinstance(t, bytes) for t in translations)
    assert np.array_equal(translator.translate(texts).numpy(), translations)
    assert os.path.getsize(out / "samples.txt") > 0
