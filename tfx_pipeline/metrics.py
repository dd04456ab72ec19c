"""Task metrics for the Evaluator, registered the TFMA way (`tfma.metrics.Metric` + a Beam combiner).

They appear in TFMA's results like the built-in metrics, take value/change thresholds for the blessing, and
compute exactly what tfmodels' library metrics compute on the same predictions (`tests/tfx_pipeline` checks
both to 1e-6), because the per-example work is done by those functions:

- `EntityScores`: entity precision / recall / F1 (`tfmodels.metrics.tag_chunks`, as `entity_scores`). Label
  and prediction are each example's tags as one whitespace-joined string ("B-person I-person O").
- `SquadScores`: SQuAD v1.1 exact match and token F1 (`tfmodels.metrics.squad_em_f1`, averaged over questions,
  in [0, 1]). Label: a JSON list of the gold answers (or one answer as plain text); prediction: the answer.

- `CorpusBleu`: sacrebleu's corpus BLEU (default 13a tokenization, exponential smoothing; 0-100) of the
  predictions against one reference each (the label), summed from sacrebleu's own per-sentence statistics.
  TFMA 0.47's `Bleu` returns a `sacrebleu.BLEUScore` object, which its threshold check cannot turn into a
  number (`float(BLEUScore)` fails), so it cannot gate a blessing; this one returns the float score.

- `RougeScores`: ROUGE-1, ROUGE-2 and ROUGE-L F1 (`tfmodels.metrics.rouge_f1`: rouge-score with Porter stemming,
  in [0, 1]) of each prediction against its label, averaged over examples (as `rouge_scores`).

Use in an EvalConfig: `tfma.MetricConfig(class_name="EntityScores", module="tfx_pipeline.metrics")`.
"""

from typing import Dict, Iterable, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

from tfmodels.metrics import rouge_f1, squad_em_f1, tag_chunks
from tfx_pipeline.row_checks import gold_answers

ENTITY_PRECISION, ENTITY_RECALL, ENTITY_F1 = "entity_precision", "entity_recall", "entity_f1"
SQUAD_EXACT_MATCH, SQUAD_F1 = "squad_exact_match", "squad_f1"
BLEU = "bleu"
ROUGE_1, ROUGE_2, ROUGE_L = "rouge_1", "rouge_2", "rouge_l"


def blessing_threshold(lower_bound: float):
    """The pipeline's gate on a metric: at least `lower_bound`, and not worse than the latest blessed model (a
    tiny epsilon so that an equal model still passes)."""
    import tensorflow_model_analysis as tfma

    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound}),
        change_threshold=tfma.GenericChangeThreshold(direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                                     absolute={"value": -1e-10}))


def task_eval_config(signature_name: str, label_key: str, prediction_key: str, metric: str, lower_bound: float,
                     preprocessing_function_names=()):
    """An EvalConfig scoring one string output against one string label column with `metric` (a class of this
    module), gated by `blessing_threshold(lower_bound)`, over the whole eval split; plus the example count.
    `preprocessing_function_names`: signatures whose outputs join the features (a label may be one of them)."""
    import tensorflow_model_analysis as tfma

    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=signature_name, label_key=label_key,
                                    prediction_key=prediction_key,
                                    preprocessing_function_names=list(preprocessing_function_names))],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name=metric, module=__name__, threshold=blessing_threshold(lower_bound))])],
    )


def _text(value) -> str:
    """One label or prediction (numpy bytes / str, possibly in a 1-element array) as str."""
    value = np.asarray(value).reshape(-1)
    if value.size != 1:
        raise ValueError(f"expected one string per example, got {value.size} values")
    value = value[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _label_and_prediction(element, key: metric_types.MetricKey, eval_config):
    """(label, prediction) strings of one example, as TFMA routes them for this model and output."""
    for label, prediction, _ in metric_util.to_label_prediction_example_weight(
            element, eval_config=eval_config, model_name=key.model_name, output_name=key.output_name,
            flatten=False, require_single_example_weight=True):
        yield _text(label), _text(prediction)


class _Combiner(beam.CombineFn):
    """Sums per-example counts; `per_example(label, prediction)` gives a count vector of `size` numbers."""

    def __init__(self, keys, eval_config, per_example, finish, size):
        self._keys, self._eval_config = keys, eval_config
        self._per_example, self._finish, self._size = per_example, finish, size

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(self._size, np.float64)

    def add_input(self, accumulator: np.ndarray, element) -> np.ndarray:
        for label, prediction in _label_and_prediction(element, self._keys[0], self._eval_config):
            accumulator = accumulator + np.asarray(self._per_example(label, prediction), np.float64)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return np.sum(list(accumulators), axis=0)

    def extract_output(self, accumulator: np.ndarray) -> Dict[metric_types.MetricKey, float]:
        return dict(zip(self._keys, self._finish(accumulator)))


def entity_counts(label: str, prediction: str):
    """(correct, predicted, gold) entities of one sentence; tags are whitespace-joined."""
    gold, predicted = label.split(), prediction.split()
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold tags but {len(predicted)} predicted: {label!r} / {prediction!r}")
    gold_chunks, predicted_chunks = set(tag_chunks(gold)), set(tag_chunks(predicted))
    return len(gold_chunks & predicted_chunks), len(predicted_chunks), len(gold_chunks)


def _precision_recall_f1(counts):
    correct, predicted, gold = counts
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def squad_counts(label: str, prediction: str):
    """(exact match, F1, 1) of one question; `label` a JSON list of gold answers, or one answer (as
    ExampleValidator's row check reads it)."""
    em, f1 = squad_em_f1(prediction, gold_answers(label))
    return em, f1, 1


def _means(counts):
    *sums, examples = counts
    return tuple(total / examples if examples else 0.0 for total in sums)


def rouge_counts(label: str, prediction: str):
    """(ROUGE-1, ROUGE-2, ROUGE-L F1, 1) of one prediction against its label."""
    return (*rouge_f1(prediction, label), 1)


_SACREBLEU = None


def _sacrebleu():
    global _SACREBLEU
    if _SACREBLEU is None:
        from sacrebleu.metrics import BLEU as SacreBleu

        _SACREBLEU = SacreBleu()
    return _SACREBLEU


def bleu_statistics(label: str, prediction: str):
    """sacrebleu's sufficient statistics of one sentence: hypothesis and reference lengths, then matching and
    total n-grams for n = 1..4 (they add up over a corpus)."""
    return _sacrebleu()._extract_corpus_statistics([prediction], [[label]])[0]


def _bleu_score(statistics):
    return (_sacrebleu()._compute_score_from_stats([int(round(v)) for v in statistics]).score,)


def _computations(names, per_example, finish, size):
    def create(name=None, eval_config=None, model_names=None, output_names=None, sub_keys=None,
               example_weighted=False) -> metric_types.MetricComputations:
        computations = []
        for model_name in model_names or [""]:
            for output_name in output_names or [""]:
                keys = [metric_types.MetricKey(name=n, model_name=model_name, output_name=output_name,
                                               example_weighted=example_weighted) for n in names]
                computations.append(metric_types.MetricComputation(
                    keys=keys, preprocessors=None,
                    combiner=_Combiner(keys, eval_config, per_example, finish, size)))
        return computations
    return create


class EntityScores(metric_types.Metric):
    """Entity precision, recall and F1 (conlleval / seqeval default mode), micro over all sentences."""

    def __init__(self, name: Optional[str] = ENTITY_F1):
        super().__init__(_computations((ENTITY_PRECISION, ENTITY_RECALL, ENTITY_F1), entity_counts,
                                       _precision_recall_f1, 3), name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False


class SquadScores(metric_types.Metric):
    """SQuAD v1.1 exact match and token F1 after the official normalisation, averaged over questions."""

    def __init__(self, name: Optional[str] = SQUAD_F1):
        super().__init__(_computations((SQUAD_EXACT_MATCH, SQUAD_F1), squad_counts, _means, 3), name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False


class CorpusBleu(metric_types.Metric):
    """sacrebleu's corpus BLEU (0-100) of the predictions against the labels, one reference each."""

    def __init__(self, name: Optional[str] = BLEU):
        super().__init__(_computations((BLEU,), bleu_statistics, _bleu_score, 10), name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False


class RougeScores(metric_types.Metric):
    """ROUGE-1/2/L F1 (rouge-score, stemmed, 0-1) of the predictions against the labels, mean over examples."""

    def __init__(self, name: Optional[str] = ROUGE_L):
        super().__init__(_computations((ROUGE_1, ROUGE_2, ROUGE_L), rouge_counts, _means, 4), name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False


metric_types.register_metric(EntityScores)
metric_types.register_metric(SquadScores)
metric_types.register_metric(CorpusBleu)
metric_types.register_metric(RougeScores)
