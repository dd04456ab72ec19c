"""Knowledge distillation (Hinton et al., 2015) of a fine-tuned BERT task model into a smaller student.

``make_student`` keeps ``num_layers`` of the teacher's encoder blocks, evenly spaced and always the top one
(DistilBERT starts from every other layer; the top block is the one the fine-tuned head reads), with the
teacher's embeddings, pooler and head: the student starts close to the teacher rather than from scratch.
``distill`` then trains it on the task's own text, labelled or not, to match the teacher's softened outputs:

    loss = (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + alpha * hard-label loss

The ``T^2`` keeps the soft term's gradients the same size whatever the temperature. Without labels (``x``
batches only) the loss is the soft term alone. For a token classifier the soft term is a mean over the real
tokens (``padding_mask``), the hard term the model's own per-token loss with its sample weights.

Why not ``keras.distillation.Distiller`` (Keras 3.12): its ``compute_loss`` ignores ``sample_weight`` ("currently
unused") and its distillation losses see only the two outputs, so a token classifier's KL would be averaged over
padding positions as well; and its combined loss is fixed to the student's compiled loss. The training wrapper
here is the same idea (a ``keras.Model`` whose ``compute_loss`` calls the frozen teacher) with the mask.
"""

import dataclasses

import keras
from keras import ops

from tfmodels.compress.pruning import prune_layers
from tfmodels.models.bert.task import BertTask
from tfmodels.models.bert.token_classifier import BertTokenClassifier


def student_layers(teacher_layers, num_layers):
    """The teacher blocks a ``num_layers`` student starts from: evenly spaced, the top one included
    (6 -> 2: ``[2, 5]``; 6 -> 3: ``[1, 3, 5]``)."""
    if not 1 <= num_layers <= teacher_layers:
        raise ValueError(f"a student of {num_layers} layers from a teacher of {teacher_layers}: needs "
                         f"1 <= num_layers <= {teacher_layers}")
    return [round((i + 1) * teacher_layers / num_layers) - 1 for i in range(num_layers)]


def make_student(teacher, num_layers):
    """A copy of the task model ``teacher`` with ``num_layers`` of its encoder blocks (``student_layers``).

    Args:
        teacher: a fine-tuned ``BertTask`` (``BertClassifier``, ``BertTokenClassifier``, ...).
        num_layers: the student's encoder depth.

    Returns:
        A new, uncompiled model of the teacher's class, with the same preprocessor and head weights.

    Example:
    >>> from tfmodels import BertClassifier, BertConfig, BertEncoder
    >>> teacher = BertClassifier(BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=4,
    ...                                                 num_attention_heads=2, intermediate_size=64)), 2)
    >>> make_student(teacher, 2).encoder.config.num_hidden_layers
    2
    """
    if not isinstance(teacher, BertTask):
        raise TypeError(f"make_student takes a BertTask model, got {type(teacher).__name__}")
    depth = teacher.encoder.config.num_hidden_layers
    kept = set(student_layers(depth, num_layers))
    return prune_layers(teacher, [layer for layer in range(depth) if layer not in kept])


def soft_target_loss(teacher_logits, student_logits, temperature):
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` over the last axis (per example/position)."""
    teacher_logits = ops.cast(teacher_logits, "float32") / temperature
    student_logits = ops.cast(student_logits, "float32") / temperature
    teacher_log_probs = ops.log_softmax(teacher_logits, axis=-1)
    student_log_probs = ops.log_softmax(student_logits, axis=-1)
    kl = ops.sum(ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return kl * temperature**2


@dataclasses.dataclass(frozen=True)
class DistillationSettings:
    """How ``distill`` mixes its two losses.

    Attributes:
        temperature: softmax temperature of the soft targets (> 0).
        alpha: weight of the hard-label loss, in [0, 1]; unused for unlabelled data.
    """

    temperature: float = 2.0
    alpha: float = 0.5

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


class _Distillation(keras.Model):
    """Trains ``student`` against the frozen ``teacher``; ``fit`` on it updates the student's weights."""

    def __init__(self, teacher, student, settings):
        super().__init__(name="distillation")
        self.teacher = teacher
        self.student = student
        self.settings = settings
        self.per_token = isinstance(student, BertTokenClassifier)
        self.hard_loss = student.default_loss()

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        teacher_logits = ops.stop_gradient(self.teacher(x, training=False))
        soft = soft_target_loss(teacher_logits, y_pred, self.settings.temperature)
        if self.per_token:  # a mean over real tokens, not padding
            mask = ops.cast(x["padding_mask"], soft.dtype)
            soft = ops.sum(soft * mask) / ops.maximum(ops.sum(mask), 1.0)
        else:
            soft = ops.mean(soft)
        if y is None or self.settings.alpha == 0.0:
            return soft
        hard = self.hard_loss(y, y_pred, sample_weight=sample_weight)
        return (1.0 - self.settings.alpha) * soft + self.settings.alpha * hard


def distill(teacher, student, data, *, temperature=2.0, alpha=0.5, epochs=1, steps_per_epoch=None,
            optimizer=None, callbacks=None, jit_compile=True, verbose=0):
    """Trains ``student`` (e.g. from ``make_student``) to reproduce ``teacher`` on ``data``; returns the history.

    Args:
        teacher: the fine-tuned task model; frozen for the run.
        student: a task model of the same outputs; trained in place.
        data: a ``tf.data.Dataset`` of token-id dicts ``x`` (unlabelled: soft targets only), ``(x, y)`` or
            ``(x, y, sample_weight)`` as the student's own ``fit`` takes them.
        temperature: softmax temperature of the soft targets.
        alpha: weight of the hard-label loss (labelled data only).
        epochs, steps_per_epoch, callbacks, verbose: as for ``fit``.
        optimizer: default AdamW at 1e-4.
        jit_compile: XLA for the training step.

    Returns:
        The ``keras.callbacks.History`` of the run. ``student`` stays a plain task model: compile, save and
        export it like any other.
    """
    settings = DistillationSettings(temperature=float(temperature), alpha=float(alpha))
    was_trainable, teacher.trainable = teacher.trainable, False
    try:
        trainer = _Distillation(teacher, student, settings)
        trainer.compile(optimizer=optimizer or keras.optimizers.AdamW(1e-4), jit_compile=jit_compile)
        return trainer.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                           verbose=verbose)
    finally:
        teacher.trainable = was_trainable
