"""The span-QA and translation `preprocessing_fn`s on real rows, run eagerly (as Transform traces them): the
targets point at the answer's tokens, the decoder input and labels are the target shifted by one."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.datasets import minilm_path
from tfx_pipeline import row_checks
from tfx_pipeline.hparams import ModelHParams
from tfx_pipeline.tasks import span_qa, translate
from tfx_pipeline.tasks.bert import MODEL_INPUTS

VOCAB = f"{minilm_path()}/vocab.txt"
CONTEXT = ("Super Bowl 50 was an American football game. The American Football Conference (AFC) champion "
           "Denver Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24–10 "
           "to earn their third Super Bowl title. The game was played on February 7, 2016, at Levi's Stadium "
           "in the San Francisco Bay Area at Santa Clara, California.")


def _column(values):
    return tf.constant([[v] for v in values])


def _qa_hparams(max_seq_length):
    return ModelHParams(task="span_qa", options=span_qa.SpanQAOptions(vocab_file=VOCAB),
                        max_seq_length=max_seq_length, batch_size=2, learning_rate=1e-3)


@pytest.mark.parametrize("max_seq_length", [128, 48])  # 48: the context needs several windows
@pytest.mark.parametrize("json_starts", [True, False])
def test_span_qa_targets_point_at_the_answer(max_seq_length, json_starts):
    from tfmodels.text import BertTokenizer

    answers = [["Denver Broncos", "Broncos"], ["Santa Clara, California"], ["\"Levi's\""]]
    contexts = [CONTEXT, CONTEXT, CONTEXT.replace("Levi's", "\"Levi's\"")]
    starts = [[c.index(a[0])] + ([c.index(a[1])] if len(a) > 1 else []) for c, a in zip(contexts, answers)]
    inputs = {"question": _column(["Who won?", "Where?", "Which stadium?"]), "context": _column(contexts),
              "answers": _column([json.dumps(a, ensure_ascii=False) for a in answers]),
              "answer_start": (_column([json.dumps(s) for s in starts]) if json_starts
                               else tf.constant([[s[0]] for s in starts], tf.int64))}
    out = span_qa.preprocessing_fn(inputs, _qa_hparams(max_seq_length))
    assert out["token_ids"].shape == (3, max_seq_length) and out["start_position"].shape == (3,)
    assert set(out) == {*MODEL_INPUTS, "start_position", "end_position"}
    tokenizer = BertTokenizer.from_vocab_file(VOCAB, lowercase=True)
    for row, gold in enumerate(answers):
        start, end = int(out["start_position"][row]), int(out["end_position"][row])
        assert 0 < start <= end, (row, start, end)  # the chosen window holds the answer (not [CLS])
        pieces = out["token_ids"][row, start:end + 1][tf.newaxis]
        expected = tokenizer.detokenize(tokenizer(tf.constant([gold[0]])))
        assert tokenizer.detokenize(pieces).numpy()[0] == expected.numpy()[0]


def test_span_qa_answer_reading_matches_the_row_check_mirror():
    cells = [json.dumps(["a \"quoted\" answer", "x"], ensure_ascii=False), "plain answer",
             json.dumps(["back\\slash / slash"]), "[not json", json.dumps(["Málaga"], ensure_ascii=False)]
    read = span_qa._first_answer(tf.constant(cells)).numpy()
    assert [v.decode() for v in read] == [row_checks.first_answer_as_transform_reads(c) for c in cells]
    assert read[0].decode() == "a \"quoted\" answer" and read[2].decode() == "back\\slash / slash"


def test_translation_ids_are_the_target_shifted_by_one(tmp_path):
    from tfmodels.text import BertTokenizer

    sources = ["In the beginning God created the heaven and the earth.", "Jesus wept."]
    targets = ["En el principio crió Dios los cielos y la tierra.", "Y lloró Jesús."]
    source_vocab, target_vocab = _vocab_files(tmp_path, sources, targets)
    # Learned again from the same data: the same files (the pipeline's cache key is their path).
    assert _vocab_files(tmp_path, sources, targets) == (source_vocab, target_vocab)
    options = translate.TranslateOptions(source_vocab_file=source_vocab, target_vocab_file=target_vocab)
    hparams = ModelHParams(task="translate", options=options, max_seq_length=12, batch_size=2, learning_rate=1e-3)
    out = translate.preprocessing_fn({"source": _column(sources), "target": _column(targets)}, hparams)
    target_tokenizer = BertTokenizer.from_vocab_file(target_vocab, lowercase=False)
    ids = target_tokenizer(tf.constant(targets)).to_list()
    for row, pieces in enumerate(ids):
        decoder_input, labels = out["target_ids"][row].numpy(), out["labels"][row].numpy()
        assert decoder_input[0] == target_tokenizer.cls_token_id
        expected_labels = (pieces + [target_tokenizer.sep_token_id])[:12]
        assert labels[:len(expected_labels)].tolist() == expected_labels
        assert decoder_input[1:len(pieces) + 1].tolist() == pieces[:11]
        assert np.all(labels[len(expected_labels):] == 0)
    assert out["source_ids"].shape == (2, 12)


def _vocab_files(directory, sources, targets):
    import pandas as pd

    data = directory / "data"
    data.mkdir(exist_ok=True)
    pd.DataFrame({"source": sources * 20, "target": targets * 20}).to_csv(data / "pairs.csv", index=False)
    return translate.learn_vocab_files(str(data), "source", "target", str(directory / "vocab"))
