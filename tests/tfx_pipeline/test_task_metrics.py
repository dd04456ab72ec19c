"""The Evaluator's task metrics: through TFMA itself (analyze_raw_data, the Beam path the Evaluator runs) they
equal tfmodels' library metrics on the same predictions."""

import json
import random

import pytest

from tfmodels.metrics import entity_scores, squad_em_f1

TAGS = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]  # I- without B-: conlleval's repair


def _tfma_metrics(frame, class_name):
    import tensorflow_model_analysis as tfma

    config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="label", prediction_key="prediction")],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name=class_name, module="tfx_pipeline.metrics")])],
        slicing_specs=[tfma.SlicingSpec()])
    result = tfma.analyze_raw_data(frame, config)
    (_, metrics), = [(k, v) for k, v in result.slicing_metrics if k == ()]
    return {name: value["doubleValue"] for name, value in metrics[""][""].items()}


def test_entity_scores_through_tfma_equal_the_library_metric():
    import pandas as pd

    rng = random.Random(0)
    gold, predicted = [], []
    for _ in range(60):
        n = rng.randint(1, 12)
        gold.append([rng.choice(TAGS) for _ in range(n)])
        # Mostly right, some tags changed: partial matches, type errors, boundary errors.
        predicted.append([t if rng.random() < 0.7 else rng.choice(TAGS) for t in gold[-1]])
    frame = pd.DataFrame({"label": [" ".join(t) for t in gold], "prediction": [" ".join(t) for t in predicted]})
    got = _tfma_metrics(frame, "EntityScores")
    expected = entity_scores(gold, predicted)
    assert 0.2 < expected["f1"] < 0.9  # a non-trivial case
    for name in ("precision", "recall", "f1"):
        assert got[f"entity_{name}"] == pytest.approx(expected[name], abs=1e-6)


def test_squad_scores_through_tfma_equal_the_library_metric():
    import pandas as pd

    golds = [["Denver Broncos", "Broncos"], ["the 1990s"], ["Paris"], ["two"], ["Saint Bernadette Soubirous"]]
    predictions = ["The Broncos!", "1990s", "London", "2", "Bernadette Soubirous"]
    frame = pd.DataFrame({"label": [json.dumps(g) for g in golds], "prediction": predictions})
    got = _tfma_metrics(frame, "SquadScores")
    per_question = [squad_em_f1(p, g) for p, g in zip(predictions, golds)]
    assert got["squad_exact_match"] == pytest.approx(sum(s[0] for s in per_question) / 5, abs=1e-6)
    assert got["squad_f1"] == pytest.approx(sum(s[1] for s in per_question) / 5, abs=1e-6)
    assert 0 < got["squad_exact_match"] < got["squad_f1"] < 1


def test_entity_counts_reject_mismatched_lengths():
    from tfx_pipeline.metrics import entity_counts

    with pytest.raises(ValueError, match="2 gold tags but 1 predicted"):
        entity_counts("B-PER O", "O")


def test_corpus_bleu_through_tfma_equals_sacrebleu_and_gates():
    import pandas as pd
    import sacrebleu
    import tensorflow_model_analysis as tfma


    references = ["En el principio creó Dios los cielos y la tierra.", "Y la tierra estaba desordenada y vacía,",
                  "y las tinieblas estaban sobre la faz del abismo.", "Y dijo Dios: Sea la luz: y fué la luz."]
    hypotheses = ["En el principio creó Dios el cielo y la tierra.", "La tierra estaba vacía.",
                  "y las tinieblas sobre el abismo.", "Y dijo Dios: Sea la luz."]
    frame = pd.DataFrame({"label": references, "prediction": hypotheses})
    got = _tfma_metrics(frame, "CorpusBleu")
    expected = sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert 10 < expected < 90
    assert got["bleu"] == pytest.approx(expected, abs=1e-6)

    # Unlike TFMA 0.47's own Bleu (a sacrebleu.BLEUScore, which float() rejects), the value takes thresholds.
    from tensorflow_model_analysis.evaluators import metrics_validator
    from tensorflow_model_analysis.metrics import metric_types

    def passes(value, lower_bound):
        config = tfma.EvalConfig(model_specs=[tfma.ModelSpec()], metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="CorpusBleu", module="tfx_pipeline.metrics", threshold=tfma.MetricThreshold(
                value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound})))])])
        return metrics_validator.validate_metrics(((), {metric_types.MetricKey(name="bleu"): value}),
                                                  config).validation_ok

    assert passes(got["bleu"], expected - 1) and not passes(got["bleu"], expected + 1)
    with pytest.raises(TypeError):
        passes(sacrebleu.corpus_bleu(hypotheses, [references]), 0.0)
