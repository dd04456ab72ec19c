"""Shared plumbing of BERT task models: encoder (de)serialization, default compile settings and the
optional ``preprocessor`` that lets ``fit`` / ``evaluate`` / ``predict`` take raw strings."""

import keras
import numpy as np
import tensorflow as tf

from tfmodels.layers.dense import Dense
from tfmodels.layers.dropout import Dropout
from tfmodels.layers.quantization import pop_quantized_layers, requantize, with_quantized_layers
from tfmodels.utils.from_preset import FromPreset
from tfmodels.utils.tracing import build_before_first_trace


def logits_head(features, num_classes, dropout, initializer_range, name):
    """Dropout then a float32 dense layer to ``num_classes`` logits (BERT's fine-tuning heads)."""
    features = Dropout(dropout, name=f"{name}_dropout")(features)
    initializer = keras.initializers.TruncatedNormal(stddev=initializer_range)
    return Dense(num_classes, kernel_initializer=initializer, dtype="float32", name="logits")(
        features
    )


def unpack_raw_element(element):
    """A raw dataset element (the ``*args`` of ``Dataset.map``) as ``(x, y, sample_weight)``: an
    element of one component is ``x`` alone (a string batch, or a pair as a 1-tuple)."""
    if len(element) == 1:
        return element[0], None, None
    return keras.utils.unpack_x_y_sample_weight(element)


def is_token_ids(x):
    """Whether ``x`` is already the encoder's input dict (``token_ids`` ...), not raw text."""
    return isinstance(x, dict) and "token_ids" in x


class RawInputTask(FromPreset):
    """Mixin (before ``keras.Model``) of the task models that take raw inputs through an optional
    ``self.preprocessor``: ``BertTask`` and, subclassed rather than functional, ``CausalLM``. A
    mixin, not a ``keras.Model`` subclass, because Keras rewrites the bases of a class built
    functionally (``Model`` becomes ``Functional``), which would break subclassed siblings.

    Subclasses define ``default_loss()`` and ``default_metrics()``; ``compile()`` fills in
    ``"auto"`` arguments from them.

    **The preprocessor mechanism.** Every task takes an optional ``preprocessor=`` (as keras-hub's
    tasks do). With one, ``fit`` / ``evaluate`` / ``predict`` accept raw inputs as well as token-id
    dicts; a token-id dict (``{"token_ids": ...}``) always goes to the network unchanged. The
    preprocessor is part of the model's config, so a ``.keras`` file keeps it (vocabulary included)
    and a reloaded model gives identical outputs on raw strings.

    - In-memory raw inputs (a list / numpy array of strings, or a ``(first, second)`` tuple of two
      such for sentence pairs) are preprocessed once, eagerly, by ``preprocess_arrays``; the
      resulting arrays go to Keras, so ``batch_size``, ``shuffle`` and ``validation_split`` keep
      their meaning.
    - A ``tf.data.Dataset`` (of raw elements ``x``, ``(x, y)`` or ``(x, y, sample_weight)``, batched
      as Keras expects; a pair is ``((first, second), y)``, or ``((first, second),)`` without labels) is mapped by ``preprocess_dataset``.

    The default ``preprocess_arrays`` / ``preprocess_dataset`` call ``preprocessor(x)`` and leave
    ``y`` and ``sample_weight`` alone -- right for a ``tfmodels.text.BertPreprocessor`` on a
    classifier. A task whose labels depend on the tokenization (token tags, answer spans) overrides
    ``preprocess_arrays(x, y, sample_weight)`` -> ``(x_dict, y, sample_weight)`` (numpy) and
    ``preprocess_dataset(dataset)`` -> dataset of ``(x_dict, y, sample_weight)`` (its rows may be
    windows rather than whole texts); ``fit``, ``evaluate`` and ``predict`` then just work.
    """

    # -- raw inputs ---------------------------------------------------------

    def preprocess_arrays(self, x, y=None, sample_weight=None):
        """In-memory raw ``x`` -> ``(token-id dict of numpy arrays, y, sample_weight)``."""
        if isinstance(x, tuple):
            x = tuple(_as_strings(part) for part in x)
        else:
            x = _as_strings(x)
        x = self.preprocessor(x)
        return {name: np.asarray(value) for name, value in x.items()}, y, sample_weight

    def preprocess_dataset(self, dataset):
        """A ``tf.data.Dataset`` of raw batches -> dataset of ``(token-id dict, y, sample_weight)``."""

        def preprocess(*element):
            x, y, sample_weight = unpack_raw_element(element)
            return keras.utils.pack_x_y_sample_weight(self.preprocessor(x), y, sample_weight)

        return dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)

    def _adapt(self, x, y=None, sample_weight=None):
        """Routes raw inputs through the preprocessor; token-id dicts and no-preprocessor pass."""
        if x is None or is_token_ids(x):
            return x, y, sample_weight
        if self.preprocessor is None:
            if _looks_like_text(x):
                raise ValueError(f"{type(self).__name__} got raw text but has no preprocessor: build "
                                 "it with preprocessor=... or pass token-id dicts")
            return x, y, sample_weight
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if is_token_ids(spec[0] if isinstance(spec, tuple) else spec):
                return x, y, sample_weight  # already token ids: the network takes it as it is
            if y is not None or sample_weight is not None:
                raise ValueError("with a tf.data.Dataset, y and sample_weight come from the dataset")
            return self.preprocess_dataset(x), None, None
        return self.preprocess_arrays(x, y, sample_weight)

    def _adapt_validation(self, validation_data):
        if validation_data is None or self.preprocessor is None:
            return validation_data
        if isinstance(validation_data, tf.data.Dataset):
            return self._adapt(validation_data)[0]
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(tuple(validation_data))
        return keras.utils.pack_x_y_sample_weight(*self._adapt(x, y, sample_weight))

    def fit(self, x=None, y=None, sample_weight=None, validation_data=None, **kwargs):
        """``keras.Model.fit``; with a preprocessor, ``x`` (and ``validation_data``) may be raw."""
        x, y, sample_weight = self._adapt(x, y, sample_weight)
        build_before_first_trace(self, x, y, sample_weight)
        return super().fit(
            x, y, sample_weight=sample_weight,
            validation_data=self._adapt_validation(validation_data), **kwargs,
        )

    def evaluate(self, x=None, y=None, sample_weight=None, **kwargs):
        """``keras.Model.evaluate``; with a preprocessor, ``x`` may be raw."""
        x, y, sample_weight = self._adapt(x, y, sample_weight)
        build_before_first_trace(self, x, y, sample_weight)
        return super().evaluate(x, y, sample_weight=sample_weight, **kwargs)

    def predict(self, x, **kwargs):
        """``keras.Model.predict``; with a preprocessor, ``x`` may be raw."""
        return super().predict(self._adapt(x)[0], **kwargs)

    def default_loss(self):
        raise NotImplementedError

    def default_metrics(self):
        return None

    def default_weighted_metrics(self):
        return None

    def compile(
        self, optimizer="auto", loss="auto", metrics="auto", weighted_metrics="auto", **kwargs
    ):
        """Like ``keras.Model.compile``; ``"auto"`` picks AdamW(2e-5) and the task's loss and metrics."""
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(learning_rate=2e-5, weight_decay=0.01)
        if loss == "auto":
            loss = self.default_loss()
        if metrics == "auto":
            metrics = self.default_metrics()
        if weighted_metrics == "auto":
            weighted_metrics = self.default_weighted_metrics()
        super().compile(
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            weighted_metrics=weighted_metrics,
            **kwargs,
        )

    def compile_from_config(self, config):
        # Keras refuses to restore compile settings for models that override compile(); ours only
        # adds "auto" defaults, so restoring through it is safe.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)


class BertTask(RawInputTask, keras.Model):
    """Base of the BERT task models: a functional model over a ``BertEncoder``; subclasses build
    their head in ``__init__`` (see ``RawInputTask`` for raw inputs and ``compile``)."""

    def _init_task(self, encoder, inputs, outputs, preprocessor=None, **kwargs):
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self.preprocessor = preprocessor

    def _task_config(self):
        """The subclass's own constructor arguments (besides the encoder)."""
        return {}

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
        }
        config.update(self._task_config())
        return with_quantized_layers(config, self)

    @classmethod
    def from_config(cls, config):
        config, quantized = pop_quantized_layers(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return requantize(cls(**config), quantized)


def _looks_like_text(x):
    if isinstance(x, tuple):
        return any(_looks_like_text(part) for part in x)
    if isinstance(x, (tf.Tensor, np.ndarray)):
        return x.dtype == tf.string or x.dtype.kind in "OSU"
    return isinstance(x, list) and bool(x) and isinstance(x[0], (str, bytes))


def _as_strings(x):
    """A list / array of str (or bytes) -> 1-D string tensor, with a clear error otherwise."""
    if isinstance(x, (tf.Tensor, tf.RaggedTensor)):
        if x.dtype != tf.string:
            raise TypeError(f"raw inputs must be strings, got a {x.dtype.name} tensor")
        return x
    if isinstance(x, (str, bytes)):
        raise TypeError("raw inputs must be a batch (list or array) of strings, got one string")
    values = list(x)
    bad = [(i, v) for i, v in enumerate(values) if not isinstance(v, (str, bytes, np.str_, np.bytes_))]
    if bad:
        i, v = bad[0]
        raise TypeError(f"raw inputs must be strings; item {i} is {type(v).__name__}: {v!r:.60}")
    return tf.constant(values, tf.string)
