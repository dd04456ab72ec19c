"""Task metrics as the field computes them."""

from tfmodels.metrics.entities import entity_scores, tag_chunks  # noqa: F401
