"""`python -m tfmodels.examples.squad --smoke --export-dir DIR`: trains a tiny model a few steps, scores it
next to the sliding-window baseline and writes an answer_question SavedModel that answers like the model."""

import pytest
import tensorflow as tf

from tfmodels.examples.squad import main, sliding_window_answer


def test_sliding_window_baseline_picks_the_span_next_to_the_question_words():
    context = "Bob was born in 1950. Alice lives in Rome."
    # One-word candidates: the rare word in the window with the question's words wins.
    assert sliding_window_answer("When was Bob born?", context, max_answer_words=1) == "1950"
    # Longer candidates add their own words' weight, which favours long spans (why this baseline is weak).
    assert sliding_window_answer("When was Bob born?", context) == "Alice lives in Rome"
    assert sliding_window_answer("who?", "") == ""


@pytest.mark.e2e
def test_smoke_run_exports_a_model_that_answers_like_python(tmp_path):
    export_dir = str(tmp_path / "squad" / "1")
    result, model = main(["--smoke", "--export-dir", export_dir, "--results", str(tmp_path / "r.json")])
    assert result["dev_questions"] == 16 and 0 <= result["f1"] <= 100 and 0 <= result["baseline_f1"] <= 100
    questions = ["Which NFL team won Super Bowl 50?", "Who?"]
    contexts = ["The Denver Broncos defeated the Carolina Panthers 24–10 to win Super Bowl 50.", ""]
    out = tf.saved_model.load(export_dir).signatures["answer_question"](
        question=tf.constant(questions), context=tf.constant(contexts))
    expected = model.answer(questions, contexts)
    assert [t.decode() for t in out["answer_text"].numpy()] == [a["text"] for a in expected]
    assert out["answer_start"].numpy().tolist() == [a["start"] for a in expected]
    assert expected[1] == {"text": "", "start": -1, "end": -1, "score": 0.0}
