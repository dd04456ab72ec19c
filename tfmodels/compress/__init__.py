"""Compression for deployment: distillation, int8 quantization and structured pruning.

Distillation: ``make_student`` (or ``student_config`` + ``init_student_from_teacher``) + ``distill``. Pruning: ``prune_heads``, ``prune_layers``, ``prune_by_importance``.

int8 is Keras' own API: ``model.quantize("int8")`` on any tfmodels model (our layers implement Keras'
quantization protocol, ``tfmodels.layers.quantization``); a quantized model saves to ``.keras``, reloads and
exports like any other.
"""

from tfmodels.compress.distillation import (
    SoftTargetLoss,
    distill,
    init_student_from_teacher,
    make_student,
    soft_target_loss,
    student_config,
    student_layers,
)
from tfmodels.compress.pruning import (
    PruningPlan,
    head_importance,
    layer_importance,
    prune_by_importance,
    prune_heads,
    prune_layers,
)

__all__ = [
    "SoftTargetLoss",
    "distill",
    "init_student_from_teacher",
    "make_student",
    "soft_target_loss",
    "student_config",
    "student_layers",
    "PruningPlan",
    "head_importance",
    "layer_importance",
    "prune_by_importance",
    "prune_heads",
    "prune_layers",
]
