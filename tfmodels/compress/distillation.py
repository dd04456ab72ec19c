"""Knowledge distillation (Hinton et al., 2015) of a fine-tuned BERT task model into a smaller student.

**The student.** ``student_config`` shrinks the teacher's ``BertConfig`` (fewer layers, optionally narrower:
heads keep the teacher's head size, the feed-forward keeps its width ratio); ``init_student_from_teacher``
copies the teacher's embeddings, a subset of its blocks and its pooler into a student encoder of matching
widths; ``make_student`` builds the same task class (``BertClassifier``, ``BertTokenClassifier``, ...) over that
encoder with the teacher's task arguments and preprocessor object, head copied when the encoder is. The
default blocks (``student_layers``) are evenly spaced and include the top one: 6 -> 3 keeps ``[1, 3, 5]``,
12 -> 4 keeps ``[2, 5, 8, 11]``. DistilBERT also takes every other layer; we anchor the spacing at the top
because the top block is the one whose output the fine-tuned head (and pooler) was trained on. A narrower
student cannot take the teacher's weights and starts from its own random initialisation.

**The loss.** ``distill`` trains the student on the task's own text, labelled or not:

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
         + (1 - alpha) * hard-label loss                       (labelled batches only)
         + hidden_weight * MSE(project(student sequence output), teacher sequence output)

The ``T^2`` keeps the soft term's gradients the same size whatever the temperature. Unlabelled batches
(``x`` only) get the soft term with weight 1 (plus the hidden term). The soft term is a ``keras.losses.Loss``
(``SoftTargetLoss``) with the hard loss's reduction and the same weights, so both are averaged the same way:
for a token classifier the per-token KL is weighted by the batch's ``sample_weight`` exactly as the model's
own per-token loss is (0 on padding, specials and sub-word continuations, ``TokenClassifierPreprocessor``),
and by ``padding_mask`` when there are no labels (the first pieces of words are not known from token ids
alone, so every real token counts). A regression head (``num_classes=1``) matches the teacher's scores by MSE.

Hidden-state matching compares the final sequence outputs over real tokens (TinyBERT's hidden loss on the
last layer). When widths differ a learned linear projection maps the student's states to the teacher's width
(TinyBERT's ``W_h``); it belongs to the training wrapper and is discarded afterwards, so the trained student is
the plain task model it was. Attention-map matching is not implemented.

**Why not ``keras.distillation.Distiller`` (Keras 3.12).** Tried on our models, it fails on four counts:

- ``compute_loss`` ignores ``sample_weight`` ("currently unused"), for the student loss as well: a token
  classifier batch with all-zero weights still gave a student loss of 1.20 instead of 0, and its
  distillation losses only see the two outputs, so a per-token KL is averaged over padding too.
- ``LogitsDistillation``'s default ``loss="kl_divergence"`` resolves to the *function*, not the
  ``KLDivergence`` class its ``isinstance`` check expects, so it takes the KL of raw temperature-scaled
  logits, without ``T^2``: 16.12 instead of 1.09 on a 3-class example (correct only when passing
  ``loss=keras.losses.KLDivergence()``).
- ``FeatureDistillation`` with layer names fails on our task models: the nested ``BertEncoder``'s
  ``layer.output`` belongs to the encoder's own graph, and the feature extractor raises
  ``ValueError: The name "token_ids" is used 2 times in the model``. It has no projection for unequal
  widths and no padding mask either.
- It freezes the teacher for good (``teacher.trainable = False`` in its constructor); here the teacher is
  frozen for the run only.

Dict inputs, ``fit`` without labels and ``.keras`` saving did work. The wrapper here is the same idea (a
``keras.Model`` whose ``compute_loss`` calls the frozen teacher) with weights, masks and the projection.
"""

import keras
from keras import ops

from tfmodels.layers.quantization import quantized_layers
from tfmodels.models.bert.classifier import BertClassifier
from tfmodels.models.bert.config import BertConfig
from tfmodels.models.bert.encoder import BertEncoder
from tfmodels.models.bert.task import BertTask
from tfmodels.models.bert.token_classifier import BertTokenClassifier

# The encoder output the head of each task reads (hidden-state matching recomputes logits from it).
_HEAD_INPUT = ((BertTokenClassifier, "sequence_output"), (BertClassifier, "pooled_output"))


# -- the student ----------------------------------------------------------------


def student_layers(teacher_layers, num_layers):
    """The teacher blocks a ``num_layers`` student starts from: evenly spaced, the top one included.

    Args:
        teacher_layers: the teacher's ``num_hidden_layers``.
        num_layers: the student's, ``1 <= num_layers <= teacher_layers``.

    Example:
    >>> student_layers(6, 3), student_layers(6, 2), student_layers(12, 4)
    ([1, 3, 5], [2, 5], [2, 5, 8, 11])
    """
    if not 1 <= num_layers <= teacher_layers:
        raise ValueError(f"a student of {num_layers} layers from a teacher of {teacher_layers}: needs "
                         f"1 <= num_layers <= {teacher_layers}")
    return [round((i + 1) * teacher_layers / num_layers) - 1 for i in range(num_layers)]


def student_config(teacher_config, num_layers, hidden_size=None, num_attention_heads=None,
                   intermediate_size=None, layer_indices=None):
    """The ``BertConfig`` of a student of ``teacher_config``: same vocabulary, positions, segment types,
    activation, dropout and normalisation; fewer (and optionally narrower) layers.

    Args:
        teacher_config: the teacher's ``BertConfig``.
        num_layers: the student's ``num_hidden_layers``.
        hidden_size: the student's width; default the teacher's.
        num_attention_heads: default: the teacher's head count at the teacher's width, otherwise
            ``hidden_size // teacher head size`` (BERT-base 768/12 -> 256: 4 heads, 128: 2 heads).
        intermediate_size: default: the teacher's at its width, otherwise the teacher's
            ``intermediate_size / hidden_size`` ratio times ``hidden_size`` (4x for BERT).
        layer_indices: the teacher blocks the student copies (default ``student_layers``); at the
            teacher's width and heads their ``pruned_heads`` move with them, so the blocks' shapes match.

    Example:
    >>> teacher = BertConfig()  # BERT-base
    >>> small = student_config(teacher, 4, hidden_size=256)
    >>> small.num_hidden_layers, small.hidden_size, small.num_attention_heads, small.intermediate_size
    (4, 256, 4, 1024)
    """
    if isinstance(teacher_config, dict):
        teacher_config = BertConfig.from_dict(teacher_config)
    teacher_hidden = teacher_config.hidden_size
    hidden = teacher_hidden if hidden_size is None else int(hidden_size)
    if num_attention_heads is None:
        head_size = teacher_hidden // teacher_config.num_attention_heads
        num_attention_heads = (teacher_config.num_attention_heads if hidden == teacher_hidden
                               else max(1, hidden // head_size))
        if hidden % num_attention_heads:
            raise ValueError(f"hidden_size={hidden} does not split into {num_attention_heads} heads of the "
                             f"teacher's head size {head_size}: give num_attention_heads")
    if intermediate_size is None:
        intermediate_size = max(1, round(teacher_config.intermediate_size * hidden / teacher_hidden))
    pruned_heads = {}
    if hidden == teacher_hidden and num_attention_heads == teacher_config.num_attention_heads:
        indices = _layer_indices(teacher_config.num_hidden_layers, num_layers, layer_indices)
        pruned_heads = {new: teacher_config.pruned_heads[old] for new, old in enumerate(indices)
                        if old in teacher_config.pruned_heads}
    values = teacher_config.to_dict()
    values.update(num_hidden_layers=int(num_layers), hidden_size=hidden, pruned_heads=pruned_heads,
                  num_attention_heads=int(num_attention_heads), intermediate_size=int(intermediate_size))
    return BertConfig(**values)


def init_student_from_teacher(student_encoder, teacher_encoder, layer_indices=None):
    """Copies the teacher encoder's embeddings, blocks ``layer_indices`` and pooler (and final norm of a
    pre-LN model) into ``student_encoder``, layer by layer (``get_weights`` / ``set_weights``).

    Every shape is checked before anything is copied: on a mismatch nothing is copied.

    Args:
        student_encoder: a ``BertEncoder`` of ``len(layer_indices)`` blocks of the teacher's widths.
        teacher_encoder: a float (not quantized) ``BertEncoder``.
        layer_indices: the teacher block each student block copies, in order; default
            ``student_layers(teacher depth, student depth)``.

    Returns:
        The ``layer_indices`` used.

    Raises:
        ValueError: for indices out of range or of the wrong count, a quantized teacher, or layers whose
            weights differ in shape (the message names the layers and the shapes).

    Example:
    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=4,
    ...                     num_attention_heads=2, intermediate_size=64)
    >>> teacher = BertEncoder(config)
    >>> init_student_from_teacher(BertEncoder(student_config(config, 2)), teacher)
    [1, 3]
    """
    for encoder, role in ((student_encoder, "student"), (teacher_encoder, "teacher")):
        if not isinstance(encoder, BertEncoder):
            raise TypeError(f"the {role} must be a BertEncoder, got {type(encoder).__name__}")
        if quantized_layers(encoder):
            raise ValueError(f"the {role} encoder is quantized: copy weights between float models "
                             "(distil first, quantize the student afterwards)")
    indices = _layer_indices(len(teacher_encoder.encoder_blocks), len(student_encoder.encoder_blocks),
                             layer_indices)
    pairs = [(student_encoder.embeddings, teacher_encoder.embeddings, "embeddings"),
             (student_encoder.pooler, teacher_encoder.pooler, "pooler")]
    if (student_encoder.final_norm is None) != (teacher_encoder.final_norm is None):
        raise ValueError(f"norm_first differs: student {student_encoder.config.norm_first}, "
                         f"teacher {teacher_encoder.config.norm_first}")
    if student_encoder.final_norm is not None:
        pairs.append((student_encoder.final_norm, teacher_encoder.final_norm, "final norm"))
    pairs += [(student_encoder.encoder_blocks[i], teacher_encoder.encoder_blocks[source],
               f"student block {i} <- teacher block {source}") for i, source in enumerate(indices)]
    problems = [problem for target, source, what in pairs for problem in _shape_problems(target, source, what)]
    if problems:
        raise ValueError("cannot initialise the student from the teacher, shapes differ (student vs "
                         "teacher): " + "; ".join(problems))
    for target, source, _ in pairs:
        target.set_weights(source.get_weights())
    return indices


def make_student(teacher, num_layers, hidden_size=None, *, num_attention_heads=None, intermediate_size=None,
                 layer_indices=None, init_from_teacher=None):
    """A new task model of ``teacher``'s class over a smaller ``BertEncoder``.

    Args:
        teacher: a fine-tuned ``BertTask`` (``BertClassifier``, ``BertTokenClassifier``, ...).
        num_layers, hidden_size, num_attention_heads, intermediate_size, layer_indices: the student encoder,
            as for ``student_config``.
        init_from_teacher: ``None``: copy the teacher's embeddings, blocks ``layer_indices``, pooler and
            head when the widths (hidden, heads, feed-forward) allow, else start from a random
            initialisation; ``True``: copy or raise ``ValueError``; ``False``: random initialisation.

    Returns:
        A new, uncompiled model of the teacher's class with its task arguments (``num_classes``,
        ``dropout``, ...), its preprocessor object, its encoder's ``sequence_length`` and dtype policy.

    Example:
    >>> from tfmodels import BertClassifier
    >>> teacher = BertClassifier(BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=4,
    ...                                                 num_attention_heads=2, intermediate_size=64)), 2)
    >>> student = make_student(teacher, 2)
    >>> type(student).__name__, student.encoder.config.num_hidden_layers, student.num_classes
    ('BertClassifier', 2, 2)
    """
    if not isinstance(teacher, BertTask):
        raise TypeError(f"make_student takes a BertTask model, got {type(teacher).__name__}")
    source = teacher.encoder
    config = student_config(source.config, num_layers, hidden_size, num_attention_heads, intermediate_size,
                            layer_indices)
    same_widths = all(getattr(config, field) == getattr(source.config, field)
                      for field in ("hidden_size", "num_attention_heads", "intermediate_size"))
    if init_from_teacher is None:
        init_from_teacher = same_widths
    encoder = BertEncoder(config, sequence_length=source.sequence_length, dtype=source.dtype_policy,
                          name=source.name)
    if init_from_teacher:
        init_student_from_teacher(encoder, source, layer_indices)
    kwargs = teacher.get_config()
    kwargs.pop("quantized_layers", None)  # quantization is redone on the student, if at all
    kwargs.update(encoder=encoder, preprocessor=teacher.preprocessor)
    student = type(teacher)(**kwargs)
    if init_from_teacher:
        for target, source_layer in zip(_head_layers(student), _head_layers(teacher)):
            if not _shape_problems(target, source_layer, target.name):
                target.set_weights(source_layer.get_weights())
    return student


# -- the losses -----------------------------------------------------------------


def soft_target_loss(teacher_logits, student_logits, temperature):
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` over the last axis, per example / position.

    Example:
    >>> import numpy as np
    >>> float(soft_target_loss(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]), 2.0)[0])
    0.0
    """
    teacher_logits = ops.cast(teacher_logits, "float32") / temperature
    student_logits = ops.cast(student_logits, "float32") / temperature
    teacher_log_probs = ops.log_softmax(teacher_logits, axis=-1)
    student_log_probs = ops.log_softmax(student_logits, axis=-1)
    kl = ops.sum(ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return kl * temperature**2


@keras.saving.register_keras_serializable(package="tfmodels")
class SoftTargetLoss(keras.losses.Loss):
    """``soft_target_loss`` as a Keras loss: ``y_true`` the teacher's logits, ``y_pred`` the student's.

    Weighted and reduced like any Keras loss, so with the hard loss's ``reduction`` and the same
    ``sample_weight`` both terms of ``distill`` are averaged alike (per token for a token classifier).

    Args:
        temperature: softmax temperature (> 0).
        reduction, name: as for ``keras.losses.Loss``.

    Example:
    >>> import numpy as np
    >>> loss = SoftTargetLoss(temperature=2.0)
    >>> round(float(loss(np.array([[2.0, 0.0]]), np.array([[0.0, 0.0]]))), 4)
    0.4438
    """

    def __init__(self, temperature=2.0, reduction="sum_over_batch_size", name="soft_target_loss", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        return soft_target_loss(y_true, y_pred, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


# -- training -------------------------------------------------------------------


class _Distillation(keras.Model):
    """Trains ``student`` against the frozen ``teacher``; ``fit`` on it updates the student's weights (and the
    hidden-state projection, which only this wrapper holds)."""

    def __init__(self, teacher, student, temperature, alpha, hidden_weight, hard_loss):
        super().__init__(name="distillation")
        self.teacher = teacher
        self.student = student
        self.alpha = alpha
        self.hidden_weight = hidden_weight
        self.hard_loss = hard_loss
        self.per_token = isinstance(student, BertTokenClassifier)
        reduction = getattr(hard_loss, "reduction", "sum_over_batch_size")
        if getattr(student, "num_classes", None) == 1:  # regression: no distribution to soften
            self.soft_loss = keras.losses.MeanSquaredError(reduction=reduction)
        else:
            self.soft_loss = SoftTargetLoss(temperature, reduction=reduction)
        self.soft_tracker = keras.metrics.Mean(name="soft_loss")
        self.projection = self.hidden_tracker = None
        if hidden_weight:
            for model, role in ((teacher, "teacher"), (student, "student")):
                if _head_input(model) is None:
                    raise ValueError(f"hidden-state matching needs a BertClassifier or BertTokenClassifier "
                                     f"{role}, got {type(model).__name__}")
            self.hidden_loss = keras.losses.MeanSquaredError(reduction="mean_with_sample_weight")
            self.hidden_tracker = keras.metrics.Mean(name="hidden_loss")
            width = teacher.encoder.config.hidden_size
            if student.encoder.config.hidden_size != width:
                self.projection = keras.layers.Dense(width, use_bias=False, name="hidden_projection")

    def call(self, inputs, training=False):
        if not self.hidden_weight:
            return self.student(inputs, training=training)
        # One pass through the encoder gives both the logits and the hidden states.
        logits, hidden = _logits_and_sequence(self.student, inputs, training)
        if self.projection is not None:
            hidden = self.projection(hidden)
        return {"logits": logits, "hidden": hidden}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        if self.hidden_weight:
            student_logits, student_hidden = y_pred["logits"], y_pred["hidden"]
            teacher_logits, teacher_hidden = _logits_and_sequence(self.teacher, x, False)
        else:
            student_logits, teacher_logits = y_pred, self.teacher(x, training=False)
        loss = self.distillation_loss(x, y, sample_weight, ops.stop_gradient(teacher_logits), student_logits)
        if self.hidden_weight:
            hidden = self.hidden_loss(ops.stop_gradient(ops.cast(teacher_hidden, "float32")),
                                      ops.cast(student_hidden, "float32"), sample_weight=x["padding_mask"])
            self.hidden_tracker.update_state(hidden)
            loss = loss + self.hidden_weight * hidden
        return loss

    def distillation_loss(self, x, y, sample_weight, teacher_logits, student_logits):
        """The soft (and, with labels, hard) term; the soft term weighted like the hard one."""
        soft_weight = sample_weight
        if soft_weight is None and self.per_token:
            soft_weight = x["padding_mask"]
        soft = self.soft_loss(teacher_logits, student_logits, sample_weight=soft_weight)
        self.soft_tracker.update_state(soft)
        if y is None:
            return soft
        hard = self.hard_loss(y, student_logits, sample_weight=sample_weight)
        return self.alpha * soft + (1.0 - self.alpha) * hard


def distill(teacher, student, data, *, temperature=2.0, alpha=0.5, hidden_weight=0.0, epochs=1,
            steps_per_epoch=None, batch_size=None, optimizer=None, loss=None, callbacks=None, jit_compile=True,
            verbose=0):
    """Trains ``student`` (e.g. from ``make_student``) to reproduce ``teacher`` on ``data``; returns ``student``.

    Args:
        teacher: the fine-tuned task model (any ``keras.Model`` with the student's output shape when
            ``hidden_weight`` is 0); frozen for the run, trainable as before afterwards.
        student: a ``BertTask`` of the same outputs; trained in place.
        data: unlabelled ``x`` (soft targets only) or labelled ``(x, y)`` / ``(x, y, sample_weight)``, as a
            tuple of arrays or a ``tf.data.Dataset`` of batches; ``x`` is token-id dicts, or raw text when
            the student has a preprocessor (``BertTask`` routes it, as its own ``fit`` does); an
            unlabelled batch of sentence pairs is ``((first, second),)``, since a 2-tuple means ``(x, y)``.
        temperature: softmax temperature of the soft targets.
        alpha: weight of the soft term against the hard-label loss (``1 - alpha``) on labelled data.
        hidden_weight: weight of the hidden-state MSE (0: off); a projection is learned when widths differ.
        epochs, steps_per_epoch, batch_size, callbacks, verbose: as for ``fit``.
        optimizer: default AdamW at 1e-4.
        loss: the hard-label loss; default ``student.default_loss()``.
        jit_compile: XLA for the training step.

    Returns:
        ``student``, a plain task model: compile, save and export it like any other.

    Example:
    >>> student = make_student(teacher, num_layers=2)  # doctest: +SKIP
    >>> distill(teacher, student, unlabelled_texts, batch_size=32, epochs=2)  # doctest: +SKIP
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if hidden_weight < 0:
        raise ValueError(f"hidden_weight must be >= 0, got {hidden_weight}")
    if not isinstance(student, BertTask):
        raise TypeError(f"the student must be a BertTask model, got {type(student).__name__}")
    if isinstance(data, tuple):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    else:
        x, y, sample_weight = data, None, None
    x, y, sample_weight = student._adapt(x, y, sample_weight)
    was_trainable, teacher.trainable = teacher.trainable, False
    try:
        trainer = _Distillation(teacher, student, float(temperature), float(alpha), float(hidden_weight),
                                loss or student.default_loss())
        trainer.compile(optimizer=optimizer or keras.optimizers.AdamW(1e-4), jit_compile=jit_compile)
        trainer.fit(x, y, sample_weight=sample_weight, batch_size=batch_size, epochs=epochs,
                    steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose)
    finally:
        teacher.trainable = was_trainable
    return student


# -- helpers --------------------------------------------------------------------


def _layer_indices(teacher_layers, num_layers, layer_indices):
    if layer_indices is None:
        return student_layers(teacher_layers, num_layers)
    indices = [int(i) for i in layer_indices]
    if len(indices) != num_layers:
        raise ValueError(f"layer_indices {indices} name {len(indices)} teacher blocks for a student of "
                         f"{num_layers} layers")
    bad = [i for i in indices if not 0 <= i < teacher_layers]
    if bad:
        raise ValueError(f"layer_indices {bad} are not in [0, {teacher_layers}) (the teacher's blocks)")
    return indices


def _shape_problems(target, source, what):
    """How the weights of ``target`` and ``source`` differ in shape, as messages (none: copyable)."""
    target_shapes = [tuple(w.shape) for w in target.weights]
    source_shapes = [tuple(w.shape) for w in source.weights]
    if len(target_shapes) != len(source_shapes):
        return [f"{what}: {len(target_shapes)} vs {len(source_shapes)} weights"]
    return [f"{what} {w.path.split('/')[-1]}: {t} vs {s}"
            for w, t, s in zip(target.weights, target_shapes, source_shapes) if t != s]


def _head_layers(task):
    """The task's layers after the encoder, in graph order (for ours: dropout, then the logits dense)."""
    return [layer for layer in task.layers
            if layer is not task.encoder and not isinstance(layer, keras.layers.InputLayer)]


def _head_input(task):
    for cls, output in _HEAD_INPUT:
        if isinstance(task, cls):
            return output
    return None


def _logits_and_sequence(task, x, training):
    """``(logits, sequence_output)`` of a classifier or token classifier from one full encoder pass (the
    classifier's own graph computes only the pooled output, ``BertEncoder(pooled_only=True)``)."""
    outputs = task.encoder(x, training=training)
    features = outputs[_head_input(task)]
    for layer in _head_layers(task):
        features = layer(features, training=training)
    return features, outputs["sequence_output"]
