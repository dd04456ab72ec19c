"""Trainer's `run_fn`: a tfmodels BertClassifier on the transformed features, exported with tfmodels.export.

Hyper-parameters come from `custom_config`: `encoder` ("tiny", "minilm" or a Hugging Face BERT directory),
`text_features`, `label_feature`, `num_classes`, `batch_size`, `learning_rate`, `max_seq_length`, and optionally
`precision` ("float32" or "mixed_bfloat16") and `class_names`.
"""

import os
from typing import Dict

import keras
import tensorflow as tf
import tensorflow_transform as tft

import tfmodels
from tfmodels import export
from tfx_pipeline.transform_module import MODEL_INPUTS

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


def _dataset(files, feature_spec, label: str, batch_size: int, shuffle: bool) -> tf.data.Dataset:
    """(model inputs int32, label) batches from Transform's gzipped tf.Example output; repeats forever."""
    ds = tf.data.TFRecordDataset(tf.io.gfile.glob(files) if isinstance(files, str) else
                                 [f for pattern in files for f in tf.io.gfile.glob(pattern)],
                                 compression_type="GZIP")
    if shuffle:
        ds = ds.shuffle(1024, seed=0)
    ds = ds.repeat().batch(batch_size, drop_remainder=True)

    def split(serialized):
        features = tf.io.parse_example(serialized, feature_spec)
        inputs = {name: tf.cast(features[name], tf.int32) for name in MODEL_INPUTS}
        return inputs, features[label]

    return ds.map(split, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


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
    """Train on `fn_args.train_files`, evaluate on `eval_files`, export to `fn_args.serving_model_dir`."""
    config = fn_args.custom_config
    keras.utils.set_random_seed(int(config.get("seed", 0)))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    feature_spec = tf_transform_output.transformed_feature_spec()
    label = config["label_feature"]
    batch_size = int(config["batch_size"])
    vocab_size = sum(1 for _ in open(config["vocab_file"], encoding="utf-8"))

    # "mixed_bfloat16": bfloat16 matmuls with float32 weights (about 2x faster on CPUs with AMX/AVX512-BF16);
    # the classifier's logits layer stays float32 either way.
    precision = config.get("precision", "float32")
    encoder = build_encoder(config["encoder"], vocab_size, int(config["max_seq_length"]),
                            dtype=None if precision == "float32" else precision)
    model = tfmodels.BertClassifier(encoder, num_classes=int(config["num_classes"]))
    # Linear decay to 0 over the run, as for BERT fine-tuning: a short run still ends on small steps.
    schedule = keras.optimizers.schedules.PolynomialDecay(
        float(config["learning_rate"]), decay_steps=max(int(fn_args.train_steps), 1), end_learning_rate=0.0)
    model.compile(optimizer=keras.optimizers.AdamW(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"], jit_compile=True)
    model.fit(
        _dataset(fn_args.train_files, feature_spec, label, batch_size, shuffle=True),
        steps_per_epoch=fn_args.train_steps, epochs=1,
        validation_data=_dataset(fn_args.eval_files, feature_spec, label, batch_size, shuffle=False),
        validation_steps=fn_args.eval_steps,
        callbacks=[keras.callbacks.TensorBoard(log_dir=os.path.join(fn_args.model_run_dir, "logs"))],
        verbose=2)

    tft_layer = tf_transform_output.transform_features_layer()
    text_features = list(config["text_features"])
    export.export_text_classifier(
        fn_args.serving_model_dir, model, TransformedTextPreprocess(tft_layer, text_features),
        text_features=text_features, class_names=config.get("class_names"), track=[tft_layer],
        warmup_texts={name: ["a warmup request"] for name in text_features},
        model_name=config.get("model_name", ""))
