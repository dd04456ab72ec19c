"""Shared plumbing of BERT task models: encoder (de)serialization and default compile settings."""

import keras

from tfmodels.layers.dense import Dense
from tfmodels.layers.dropout import Dropout


def logits_head(features, num_classes, dropout, initializer_range, name):
    """Dropout then a float32 dense layer to ``num_classes`` logits (BERT's fine-tuning heads)."""
    features = Dropout(dropout, name=f"{name}_dropout")(features)
    initializer = keras.initializers.TruncatedNormal(stddev=initializer_range)
    return Dense(num_classes, kernel_initializer=initializer, dtype="float32", name="logits")(
        features
    )


class BertTask(keras.Model):
    """Base of the BERT task models: a functional model over a ``BertEncoder``.

    Subclasses build their head in ``__init__`` and define ``default_loss()`` and
    ``default_metrics()``; ``compile()`` fills in ``"auto"`` arguments from them.
    """

    def _init_task(self, encoder, inputs, outputs, **kwargs):
        self.encoder = encoder
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

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

    def _task_config(self):
        """The subclass's own constructor arguments (besides the encoder)."""
        return {}

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
        }
        config.update(self._task_config())
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
