"""Span QA from raw strings: run_squad windows, decoding on hand-made logits, character offsets,
training targets, BertSpanQA.answer / fit on raw strings / .keras round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels.models.bert.span_qa_reader import SpanQAPreprocessor, decode_answers, window_features
from tfmodels.text import BertTokenizer
from tfmodels.text.windows import max_context as oracle_max_context

WORDS = ["who", "what", "where", "is", "the", "animal", "zebra", "lion", "cafe", "paris", "in", "a", "b",
         "c", "d", "e", "東", "京", "都", "?", ".", ","]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s"]


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(VOCAB)


def _windows(preprocessor, questions, contexts):
    return {k: v.numpy() for k, v in preprocessor((tf.constant(questions), tf.constant(contexts))).items()}


@pytest.mark.parametrize("context_words,question,seq,stride", [
    (0, "who", 12, 3), (5, "who", 12, 3), (8, "who is", 12, 3), (23, "who is the", 14, 4), (30, "a", 10, 1)])
def test_windows_match_run_squad(tokenizer, context_words, question, seq, stride):
    context = " ".join(["a", "b", "c", "d", "e"][i % 5] for i in range(context_words))
    pre = SpanQAPreprocessor(tokenizer, sequence_length=seq, doc_stride=stride, max_query_length=4)
    w = _windows(pre, [question], [context])
    q = tokenizer.tokenize(question).numpy().tolist()
    c = tokenizer.tokenize(context).numpy().tolist() if context else []
    room = seq - 3 - len(q)
    # run_squad's windows and max-context marks (tfmodels.text.windows is tested against its loop).
    expected_max = oracle_max_context(len(c), room, stride).numpy()
    assert len(w["token_ids"]) == len(expected_max)
    for i, start in enumerate(w["window_start"]):
        piece = c[start : start + room]
        tokens = [tokenizer.cls_token_id, *q, tokenizer.sep_token_id, *piece, tokenizer.sep_token_id]
        assert w["token_ids"][i].tolist() == tokens + [0] * (seq - len(tokens))
        assert w["segment_ids"][i].tolist() == [0] * (len(q) + 2) + [1] * (len(piece) + 1) + [0] * (seq - len(tokens))
        assert w["padding_mask"][i].tolist() == [1] * len(tokens) + [0] * (seq - len(tokens))
        offset = len(q) + 2
        np.testing.assert_array_equal(w["max_context"][i, offset : offset + room][: len(piece)],
                                      expected_max[i][: len(piece)])
        assert not w["max_context"][i, :offset].any() and not w["max_context"][i, offset + len(piece):].any()
        assert w["context_token"][i, offset : offset + len(piece)].tolist() == list(range(start, start + len(piece)))
    assert w["max_context"].sum() == len(c)  # each context token scored in exactly one window


def test_long_question_is_truncated_and_bad_settings_fail(tokenizer):
    pre = SpanQAPreprocessor(tokenizer, sequence_length=12, doc_stride=2, max_query_length=3)
    w = _windows(pre, ["who is the animal in paris ?"], ["a b"])
    assert w["token_ids"][0].tolist()[:5] == [2, tokenizer.token_to_id("who"), tokenizer.token_to_id("is"),
                                               tokenizer.token_to_id("the"), 3]
    with pytest.raises(ValueError, match="doc_stride"):
        SpanQAPreprocessor(tokenizer, sequence_length=12, doc_stride=8, max_query_length=3)
    with pytest.raises(ValueError, match="no room"):
        SpanQAPreprocessor(tokenizer, sequence_length=6, doc_stride=1, max_query_length=3)
    with pytest.raises(TypeError, match="contexts must be strings"):
        pre((["who"], [3]))


def _logits_for(windows, start_token, end_token, start_value=5.0, end_value=5.0):
    """Hand-made logits: high at context token indices start_token/end_token wherever they appear."""
    start = np.zeros(windows["token_ids"].shape, "float32")
    end = np.zeros_like(start)
    start[windows["context_token"] == start_token] = start_value
    end[windows["context_token"] == end_token] = end_value
    return start, end


def _decode(windows, contexts, start, end, **kwargs):
    out = decode_answers({k: tf.constant(v) for k, v in windows.items()}, start, end, tf.constant(contexts), **kwargs)
    return {k: v.numpy() for k, v in out.items()}


def test_answer_in_the_last_window_is_found_and_mapped_to_characters(tokenizer):
    pre = SpanQAPreprocessor(tokenizer, sequence_length=12, doc_stride=3, max_query_length=4)
    context = "a b c d e a b c d e a b c d e zebra lion"
    w = _windows(pre, ["what animal"], [context])
    assert len(w["token_ids"]) >= 3
    start, end = _logits_for(w, 15, 16)
    assert (w["context_token"][-1] == 16).any() and not (w["context_token"][0] == 15).any()
    out = _decode(w, [context], start, end)
    assert out["answer_text"][0].decode() == "zebra lion"
    assert (out["answer_start"][0], out["answer_end"][0]) == (context.index("zebra"), len(context))
    assert 0 < out["score"][0] <= 1


def test_decoding_rules_on_hand_made_logits(tokenizer):
    pre = SpanQAPreprocessor(tokenizer, sequence_length=20, doc_stride=4, max_query_length=4)
    context = "a b c d e zebra lion"
    w = _windows(pre, ["who"], [context])
    # End before start: the best *valid* span wins instead.
    start, end = _logits_for(w, 5, 4)
    start[w["context_token"] == 6] = 4.0
    end[w["context_token"] == 6] = 1.0
    assert _decode(w, [context], start, end)["answer_text"][0] == b"zebra lion"
    # Longer than max_answer_length: not allowed.
    start, end = _logits_for(w, 0, 6)
    end[w["context_token"] == 1] = 1.0
    assert _decode(w, [context], start, end, max_answer_length=3)["answer_text"][0] == b"a b"
    assert _decode(w, [context], start, end, max_answer_length=30)["answer_text"][0].decode() == context
    # A span never starts on the question or [CLS], even when their logits are highest.
    start, end = _logits_for(w, 5, 5)
    start[:, :3] = end[:, :3] = 100.0
    assert _decode(w, [context], start, end)["answer_text"][0] == b"zebra"
    # The score is the span's softmax probability among all candidates: one dominant span -> near 1.
    start, end = _logits_for(w, 5, 5, 50.0, 50.0)
    assert _decode(w, [context], start, end)["score"][0] == pytest.approx(1.0, abs=1e-6)


def test_max_context_window_scores_a_token(tokenizer):
    # Token 2 ("c") is in windows 0 and 1; only window 0 gives it max context, so a start logit on it
    # in window 1 alone is ignored.
    pre = SpanQAPreprocessor(tokenizer, sequence_length=8, doc_stride=2, max_query_length=1)
    context = "a b c d e"
    w = _windows(pre, ["who"], [context])
    assert w["max_context"][0][w["context_token"][0] == 2].all()
    start = np.zeros(w["token_ids"].shape, "float32")
    end = np.zeros_like(start)
    start[1][w["context_token"][1] == 2] = 9.0
    end[1][w["context_token"][1] == 2] = 9.0
    start[1][w["context_token"][1] == 3] = 1.0
    end[1][w["context_token"][1] == 3] = 1.0
    assert _decode(w, [context], start, end)["answer_text"][0] == b"d"


@pytest.mark.parametrize("context,answer", [
    ("Le café est à Paris.", "café"),      # accented: 'é' is 2 UTF-8 bytes
    ("東京都 is in paris.", "京"),           # CJK: one token per ideograph, 3 bytes each
    ("I 😀 a zebra 🍕 b.", "zebra"),        # emoji (4 bytes, [UNK]) before the answer
    ("I 😀 a zebra 🍕 b.", "🍕"),
])
def test_character_offsets_for_accents_cjk_and_emoji(tokenizer, context, answer):
    pre = SpanQAPreprocessor(tokenizer, sequence_length=32, doc_stride=8, max_query_length=4)
    ids, starts, ends = (t.numpy() for t in tokenizer.tokenize_with_offsets(tf.constant(context)))
    answer_byte = len(context[: context.index(answer)].encode())
    token = int(np.flatnonzero(starts == answer_byte)[0])
    w = _windows(pre, ["where"], [context])
    out = _decode(w, [context], *_logits_for(w, token, token))
    text, a, b = out["answer_text"][0].decode(), int(out["answer_start"][0]), int(out["answer_end"][0])
    assert text == answer and context[a:b] == answer


def test_empty_context_gives_the_empty_answer(tokenizer):
    pre = SpanQAPreprocessor(tokenizer, sequence_length=12, doc_stride=3, max_query_length=4)
    w = _windows(pre, ["who", "", "who"], ["", "zebra", "   "])
    start, end = _logits_for(w, 0, 0)
    out = _decode(w, ["", "zebra", "   "], start, end)
    assert out["answer_text"].tolist() == [b"", b"zebra", b""]
    assert out["answer_start"].tolist() == [-1, 0, -1] and out["answer_end"].tolist() == [-1, 5, -1]
    assert out["score"][0] == 0.0 and out["score"][2] == 0.0


def test_no_n_best_span_still_answers_the_best_valid_span(tokenizer):
    """Issue 36 item 12: the n-best starts all lie after the n-best ends (or outside the context), so no
    n-best pair is a valid span; run_squad (SQuAD v1.1) still answers with the best valid span."""
    pre = SpanQAPreprocessor(tokenizer, sequence_length=20, doc_stride=4, max_query_length=4)
    context = "a b c d e zebra lion"
    w = _windows(pre, ["who"], [context])
    start, end = _logits_for(w, 6, 0, 9.0, 9.0)  # the only n-best start (lion) is after the only n-best end (a)
    start[w["context_token"] == 0] = -5.0
    out = _decode(w, [context], start, end, n_best=1)
    assert out["answer_text"][0] == b"lion"  # start 9 + end 0 beats "a" (-5 + 9) and "a ... lion"
    assert (out["answer_start"][0], out["answer_end"][0]) == (context.index("lion"), len(context))
    assert 0 < out["score"][0] <= 1
    # Only [CLS] and question logits are high: every n-best start is outside the context.
    start, end = np.zeros_like(start), np.zeros_like(end)
    start[:, :3] = end[:, :3] = 50.0
    start[w["context_token"] == 5] = end[w["context_token"] == 5] = 1.0
    out = _decode(w, [context], start, end, n_best=2)
    assert out["answer_text"][0] == b"zebra"


def test_band_of_spans_matches_the_full_span_matrix(tokenizer):
    """Spans are formed over [windows, seq, max_answer_length] and in chunks of windows: the same answer,
    offsets and score as the full [windows, seq, seq] search on random logits."""
    pre = SpanQAPreprocessor(tokenizer, sequence_length=16, doc_stride=3, max_query_length=3)
    contexts = ["a b c d e zebra lion a b c d e zebra lion", "zebra", "a b c", "lion a zebra b c d e a b"]
    w = _windows(pre, ["who is", "who", "what", "where"], contexts)
    rng = np.random.default_rng(3)
    start, end = (rng.normal(size=w["token_ids"].shape).astype("float32") for _ in range(2))
    expected = _full_matrix_answers(w, contexts, start, end, max_answer_length=4, n_best=5)
    for chunk in (None, 1, 2):
        out = _decode(w, contexts, start, end, max_answer_length=4, n_best=5, window_chunk=chunk)
        assert [(int(a), int(b)) for a, b in zip(out["answer_start"], out["answer_end"])] == expected[0]
        np.testing.assert_allclose(out["score"], expected[1], rtol=1e-5)


def _full_matrix_answers(w, contexts, start, end, max_answer_length, n_best):
    """run_squad's search in numpy: every (start, end) pair of every window, n-best filtered."""
    answers, scores = [], []
    for q, context in enumerate(contexts):
        candidates = []
        for n_best_only in (True, False):  # no n-best span at all: every valid span (issue 36 item 12)
            for row in np.flatnonzero(w["example"] == q):
                top_s = np.sort(start[row])[-n_best] if n_best_only else -np.inf
                top_e = np.sort(end[row])[-n_best] if n_best_only else -np.inf
                for i in range(start.shape[1]):
                    for j in range(i, min(i + max_answer_length, start.shape[1])):
                        if (w["max_context"][row, i] and w["context_token"][row, j] >= 0
                                and start[row, i] >= top_s and end[row, j] >= top_e):
                            candidates.append((start[row, i] + end[row, j], row, i, j))
            if candidates:
                break
        best = max(candidates, key=lambda c: c[0])
        total = np.log(np.sum(np.exp([c[0] for c in candidates])))
        byte_start, byte_end = w["byte_start"][best[1], best[2]], w["byte_end"][best[1], best[3]]
        data = context.encode()
        answers.append((len(data[:byte_start].decode()), len(data[:byte_end].decode())))
        scores.append(np.exp(best[0] - total))
    return answers, scores


def test_training_targets_point_at_the_answer_or_cls(tokenizer):
    pre = SpanQAPreprocessor(tokenizer, sequence_length=12, doc_stride=3, max_query_length=4)
    context = "a b c d e a b c d é zebra lion"
    answer = {"text": "zebra lion", "answer_start": context.index("zebra")}
    x, y, example = window_features(pre, ["what animal"], [context], [answer])
    assert example.tolist() == [0] * len(example) and len(example) >= 3
    holding = np.flatnonzero(y["start_logits"] > 0)
    assert len(holding) >= 1 and (y["start_logits"][y["start_logits"] == 0] == y["end_logits"][y["start_logits"] == 0]).all()
    for i in holding:
        ids = x["token_ids"][i, y["start_logits"][i] : y["end_logits"][i] + 1].tolist()
        assert tokenizer.detokenize([ids]).numpy()[0] == b"zebra lion"
    # The first window does not hold the answer: it points at [CLS].
    assert y["start_logits"][0] == 0 and y["end_logits"][0] == 0
    with pytest.raises(ValueError, match="not at character"):
        window_features(pre, ["what"], [context], [{"text": "zebra", "answer_start": 0}])


def _tiny_model(tokenizer, seq=24, stride=6):
    config = tfmodels.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=seq)
    pre = SpanQAPreprocessor(tokenizer, sequence_length=seq, doc_stride=stride, max_query_length=6)
    return tfmodels.BertSpanQA(tfmodels.BertEncoder(config), preprocessor=pre)


def _zebra_data(n, seed=0):
    """Filler contexts with the answer "zebra" at a random place; long enough for several windows."""
    rng = np.random.default_rng(seed)
    questions, contexts, answers = [], [], []
    for _ in range(n):
        words = list(rng.choice(["a", "b", "c", "d", "e", "lion", "paris"], size=int(rng.integers(5, 40))))
        words.insert(int(rng.integers(0, len(words) + 1)), "zebra")
        context = " ".join(words)
        questions.append("what animal ?")
        contexts.append(context)
        answers.append({"text": "zebra", "answer_start": context.index("zebra")})
    return questions, contexts, answers


@pytest.fixture(scope="module")
def trained(tokenizer):
    """A tiny model fitted on raw strings to find "zebra" (a learnable rule for windows tests)."""
    keras.utils.set_random_seed(0)
    model = _tiny_model(tokenizer)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    questions, contexts, answers = _zebra_data(192)
    history = model.fit((questions, contexts), answers, batch_size=32, epochs=6, verbose=0)
    return model, history


def test_raw_string_fit_learns_and_answer_finds_the_last_window(trained):
    model, history = trained
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    context = " ".join(["a b c d e lion"] * 8) + " paris zebra"  # 50 tokens: zebra in the last window only
    windows = model.preprocessor((tf.constant(["what animal ?"]), tf.constant([context])))
    assert len(windows["example"]) > 3
    (answer,) = model.answer(["what animal ?"], [context])
    assert answer["text"] == "zebra" and context[answer["start"]:answer["end"]] == "zebra"
    assert answer["start"] == context.index("zebra") and answer["score"] > 0.3


def test_answer_bad_input_and_edge_cases(trained):
    model, _ = trained
    answers = model.answer(["what animal ?", "", "what " * 50 + "animal ?"], ["", "a zebra b", "a b zebra"])
    assert (answers[0]["text"], answers[0]["start"], answers[0]["end"], answers[0]["score"]) == ("", -1, -1, 0.0)
    assert answers[1]["text"] == "a zebra b"[answers[1]["start"]:answers[1]["end"]]
    assert answers[2]["text"] == "zebra"  # a question past max_query_length is truncated, not an error
    with pytest.raises(TypeError, match="questions must be strings"):
        model.answer([1], ["a zebra"])
    with pytest.raises(ValueError, match="2 questions but 1 contexts"):
        model.answer(["a", "b"], ["a zebra"])
    with pytest.raises(ValueError, match="preprocessor"):
        tfmodels.BertSpanQA(model.encoder).answer(["a"], ["b"])


def test_raw_predict_and_keras_round_trip(trained, tmp_path):
    model, _ = trained
    questions, contexts, _ = _zebra_data(4, seed=1)
    logits = model.predict((questions, contexts), verbose=0)
    x, _, example = window_features(model.preprocessor, questions, contexts)
    assert logits["start_logits"].shape == (len(example), 24)
    np.testing.assert_allclose(logits["start_logits"], model.predict(x, verbose=0)["start_logits"], atol=1e-6)
    path = str(tmp_path / "qa.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.preprocessor.get_config() == model.preprocessor.get_config()
    assert loaded.answer(questions, contexts) == model.answer(questions, contexts)


# ---- export: the answer_question SavedModel ----

EXPORT_QUESTIONS = ["what animal ?", "what animal ?", "what animal ?", "who ?"]
EXPORT_CONTEXTS = [" ".join(["a b c d e lion"] * 8) + " paris zebra", "a zebra b", "", "Le café à 東京 😀 zebra."]
MODEL_NAME = "squad"


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    from tfmodels.export import export_span_qa

    model, _ = trained
    export_dir = str(tmp_path_factory.mktemp("qa_export") / MODEL_NAME / "1")
    # With the Evaluator's tf.Example signature, as the pipeline exports it.
    export_span_qa(export_dir, model, warmup=list(zip(EXPORT_QUESTIONS[:2], EXPORT_CONTEXTS[:2])),
                   model_name=MODEL_NAME, example_features=("q", "c"))
    expected = model.answer(EXPORT_QUESTIONS, EXPORT_CONTEXTS)
    return export_dir, expected


def _as_answers(out):
    return [{"text": t.decode() if isinstance(t, bytes) else t, "start": int(s), "end": int(e), "score": float(p)}
            for t, s, e, p in zip(out["answer_text"], out["answer_start"], out["answer_end"], out["score"])]


def _assert_same(answers, expected):
    assert [(a["text"], a["start"], a["end"]) for a in answers] == [(a["text"], a["start"], a["end"]) for a in expected]
    np.testing.assert_allclose([a["score"] for a in answers], [a["score"] for a in expected], atol=1e-5)


def test_export_signature_matches_python_answer(exported):
    from tfmodels.export import signatures as names

    export_dir, expected = exported
    assert expected[0]["text"] == "zebra" and expected[2] == {"text": "", "start": -1, "end": -1, "score": 0.0}
    loaded = tf.saved_model.load(export_dir)
    fn = loaded.signatures[names.ANSWER_SIGNATURE]
    assert set(fn.structured_input_signature[1]) == {names.QUESTION_INPUT, names.CONTEXT_INPUT}
    out = fn(**{names.QUESTION_INPUT: tf.constant(EXPORT_QUESTIONS), names.CONTEXT_INPUT: tf.constant(EXPORT_CONTEXTS)})
    # serving_default is the same raw-text signature, also beside the tf.Example one (issue 33).
    by_default = loaded.signatures[names.DEFAULT_SIGNATURE](
        **{names.QUESTION_INPUT: tf.constant(EXPORT_QUESTIONS), names.CONTEXT_INPUT: tf.constant(EXPORT_CONTEXTS)})
    _assert_same(_as_answers({k: v.numpy() for k, v in by_default.items()}), expected)
    examples = [tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))
        for name, text in (("q", question), ("c", context))})).SerializeToString()
        for question, context in zip(EXPORT_QUESTIONS, EXPORT_CONTEXTS)]
    by_examples = loaded.signatures[names.ANSWER_EXAMPLES_SIGNATURE](examples=tf.constant(examples))
    _assert_same(_as_answers({k: v.numpy() for k, v in by_examples.items()}), expected)
    assert {k: v.dtype for k, v in out.items()} == {
        names.ANSWER_TEXT_OUTPUT: tf.string, names.ANSWER_START_OUTPUT: tf.int64,
        names.ANSWER_END_OUTPUT: tf.int64, names.ANSWER_SCORE_OUTPUT: tf.float32}
    _assert_same(_as_answers({k: v.numpy() for k, v in out.items()}), expected)
    empty = fn(**{names.QUESTION_INPUT: tf.constant([], tf.string), names.CONTEXT_INPUT: tf.constant([], tf.string)})
    assert empty[names.ANSWER_TEXT_OUTPUT].shape == (0,)


def test_export_warmup_file_holds_an_answer_question_request(exported):
    from tfmodels.export import read_warmup_requests
    from tfmodels.export import signatures as names

    (log,) = read_warmup_requests(exported[0])
    request = log.predict_log.request
    assert request.model_spec.signature_name == names.ANSWER_SIGNATURE and request.model_spec.name == MODEL_NAME
    assert tf.make_ndarray(request.inputs[names.CONTEXT_INPUT]).tolist() == [c.encode() for c in EXPORT_CONTEXTS[:2]]


def test_export_loads_without_tensorflow_text(exported):
    import json
    import os
    import subprocess
    import sys
    import textwrap

    export_dir, expected = exported
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["tensorflow_text"] = None  # any import of it now fails
        import tensorflow as tf
        out = tf.saved_model.load({export_dir!r}).signatures["answer_question"](
            question=tf.constant({EXPORT_QUESTIONS!r}), context=tf.constant({EXPORT_CONTEXTS!r}))
        assert "tensorflow_text" not in [m for m, v in sys.modules.items() if v is not None]
        assert not any(m.startswith("tfmodels") for m in sys.modules)
        print(json.dumps({{k: [x.decode() if isinstance(x, bytes) else x for x in v.numpy().tolist()]
                          for k, v in out.items()}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_same(_as_answers(json.loads(result.stdout.strip().splitlines()[-1])), expected)


def test_served_over_grpc_predict_and_rest(exported):
    """`python -m serving.server` in a fresh process answers the signature like `answer` does."""
    import os

    from serving.client import GrpcClient, RestClient
    from serving.process import ServerProcess

    export_dir, expected = exported
    args = [f"--model_name={MODEL_NAME}", f"--model_base_path={os.path.dirname(export_dir)}"]
    with ServerProcess(args, model_name=MODEL_NAME, rest=True, start_timeout=300) as server:
        inputs = {"question": np.array([q.encode() for q in EXPORT_QUESTIONS]),
                  "context": np.array([c.encode() for c in EXPORT_CONTEXTS])}
        with GrpcClient(server.grpc_target, timeout=60) as client:
            _assert_same(_as_answers(client.predict(MODEL_NAME, inputs, signature_name="answer_question")), expected)
        rest = RestClient(server.rest_url, timeout=60).predict(
            MODEL_NAME, inputs={"question": EXPORT_QUESTIONS, "context": EXPORT_CONTEXTS},
            signature_name="answer_question")
        _assert_same(_as_answers(rest), expected)
