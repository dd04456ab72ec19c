"""Trainer's `run_fn`: the task's tfmodels model on the transformed features, exported with tfmodels.export.

`classify` (a BertClassifier) is written here; the other tasks' training and export are their modules'
(`tfx_pipeline.token_classification`, `.span_qa`, `.translation`). Hyper-parameters come from `custom_config`,
a `tfx_pipeline.hparams.ModelHParams`. Input batches come from TFX's `data_accessor` with Transform's output
schema, as in TFX's own Keras examples (`tfx_pipeline.training`).
"""

import os
from typing import Dict

import keras
import tensorflow as tf
import tensorflow_transform as tft

import tfmodels
from tfmodels import export
from tfmodels.callbacks import ProgressLogger
from tfx_pipeline import span_qa, token_classification, translation
from tfx_pipeline.hparams import MODEL_INPUTS, ModelHParams
from tfx_pipeline.training import (
    chief_fn_args,
    compressed,
    distribution_strategy,
    fine_tune,
    transformed_dataset,
)

TINY_ENCODER = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def build_encoder(encoder: str, vocab_size: int, max_seq_length: int, dtype=None):
    """A tiny random BertEncoder (`"tiny"`), the pretrained MiniLM (`"minilm"`), or one loaded from a directory.

    `dtype`: a Keras dtype policy for the encoder, e.g. `"mixed_bfloat16"` (None: the global policy).
    """
    if encoder == "tiny":
        config = tfmodels.BertConfig(vocab_size=vocab_size, max_position_embeddings=max(max_seq_length, 16),
                                     **TINY_ENCODER)
        return tfmodels.BertEncoder(config, dtype=dtype)
    directory = tfmodels.datasets.minilm_path() if encoder == "minilm" else encoder
    return tfmodels.checkpoints.load_hf_bert(directory, dtype=dtype)


def _dataset(fn_args, files, tf_transform_output, label: str, batch_size: int, shuffle: bool) -> tf.data.Dataset:
    """(int32 model inputs, label) batches of Transform's output."""
    return transformed_dataset(fn_args, files, tf_transform_output, batch_size, shuffle, label_key=label).map(
        lambda features, labels: ({name: tf.cast(features[name], tf.int32) for name in MODEL_INPUTS}, labels),
        num_parallel_calls=tf.data.AUTOTUNE)


class TransformedTextPreprocess(tf.Module):
    """Raw texts `{feature: DT_STRING [batch]}` -> int32 model inputs, through Transform's own graph."""

    def __init__(self, tft_layer, text_features):
        super().__init__(name="transformed_text_preprocess")
        self.tft_layer = tft_layer
        self.text_features = tuple(text_features)

    def __call__(self, features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        raw = {name: tf.reshape(features[name], [-1, 1]) for name in self.text_features}
        transformed = self.tft_layer(raw)
        return {name: tf.cast(transformed[name], tf.int32) for name in MODEL_INPUTS}


def run_fn(fn_args):
    """Train on `fn_args.train_files`, evaluate on `eval_files`, export to `fn_args.serving_model_dir`; under
    the strategy `hparams.strategy` names (models, optimizers and `fit` in its scope; the chief exports)."""
    hparams = ModelHParams.from_custom_config(fn_args.custom_config)
    keras.utils.set_random_seed(hparams.seed)
    strategy = distribution_strategy(hparams.strategy)
    with strategy.scope():
        return _train_and_export(chief_fn_args(fn_args, strategy), hparams)


def _train_and_export(fn_args, hparams):
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    callbacks = [keras.callbacks.TensorBoard(log_dir=os.path.join(fn_args.model_run_dir, "logs")),
                 ProgressLogger(every_seconds=30, every_steps=max(int(fn_args.train_steps) // 10, 1),
                                prefix="Trainer: ")]
    if hparams.task == translation.TASK:
        return translation.train_and_export(fn_args, hparams, tf_transform_output, callbacks)
    vocab_size = sum(1 for _ in open(hparams.vocab_file, encoding="utf-8"))
    # "mixed_bfloat16": bfloat16 matmuls with float32 weights (about 2x faster on CPUs with AMX/AVX512-BF16);
    # the task heads' logits layers stay float32 either way.
    encoder = build_encoder(hparams.encoder, vocab_size, hparams.max_seq_length,
                            dtype=None if hparams.precision == "float32" else hparams.precision)
    for task in (token_classification, span_qa):
        if hparams.task == task.TASK:
            return task.train_and_export(fn_args, hparams, tf_transform_output, encoder, callbacks)
    model = tfmodels.BertClassifier(encoder, num_classes=hparams.num_classes)
    # Linear decay to 0 over the run, as for BERT fine-tuning: a short run still ends on small steps.
    schedule = keras.optimizers.schedules.PolynomialDecay(
        hparams.learning_rate, decay_steps=max(int(fn_args.train_steps), 1), end_learning_rate=0.0)
    def dataset(files, shuffle):
        return _dataset(fn_args, files, tf_transform_output, hparams.label_feature, hparams.batch_size, shuffle)

    fine_tune(model, fn_args, hparams, dataset, callbacks, optimizer=keras.optimizers.AdamW(schedule),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["sparse_categorical_accuracy"])
    model = compressed(model, fn_args, hparams, dataset)

    tft_layer = tf_transform_output.transform_features_layer()
    text_features = list(hparams.text_features)
    export.export_text_classifier(
        fn_args.serving_model_dir, model, TransformedTextPreprocess(tft_layer, text_features),
        text_features=text_features, class_names=hparams.class_names, track=[tft_layer],
        warmup_texts={name: ["a warmup request"] for name in text_features},
        model_name=hparams.model_name)
