"""Task metrics as the field computes them."""

from tfmodels.metrics.entities import entity_scores, tag_chunks  # noqa: F401
from tfmodels.metrics.rouge import ROUGE_TYPES, rouge_f1, rouge_scores  # noqa: F401
from tfmodels.metrics.squad import normalize_answer, squad_em_f1, squad_scores  # noqa: F401
