"""Transform's `preprocessing_fn`: BERT tokenization and packing with tfmodels.text, label as int64 (classify);
the other tasks' are their modules' (`tfx_pipeline.token_classification`, `.span_qa`, `.translation`).

`custom_config`: a `tfx_pipeline.hparams.ModelHParams` (text_features, label_feature, vocab_file, max_seq_length
are read here). The same graph is applied in the exported serving signatures (via the transform layer).
"""

import tensorflow as tf

from tfmodels.text import BertPreprocessor, BertTokenizer
from tfx_pipeline import span_qa, token_classification, translation
from tfx_pipeline.hparams import MODEL_INPUTS, ModelHParams


def _dense_1d(tensor: tf.Tensor, default) -> tf.Tensor:
    """A [batch] tensor from a [batch, 1] dense or sparse feature (missing values -> `default`)."""
    if isinstance(tensor, tf.SparseTensor):
        tensor = tf.sparse.to_dense(tf.sparse.reset_shape(tensor, [tensor.dense_shape[0], 1]),
                                    default_value=default)
    return tf.reshape(tensor, [-1])


def preprocessing_fn(inputs, custom_config):
    """Raw `{text..., label}` -> `{token_ids, segment_ids, padding_mask}` (int64 [batch, T]) and `label`."""
    hparams = ModelHParams.from_custom_config(custom_config)
    for task in (token_classification, span_qa, translation):
        if hparams.task == task.TASK:
            return task.preprocessing_fn(inputs, hparams, _dense_1d)
    tokenizer = BertTokenizer.from_vocab_file(hparams.vocab_file, lowercase=True)
    preprocessor = BertPreprocessor(tokenizer, sequence_length=hparams.max_seq_length)
    texts = tuple(_dense_1d(inputs[name], b"") for name in hparams.text_features)
    packed = preprocessor(texts[0] if len(texts) == 1 else texts)
    outputs = {name: tf.cast(packed[name], tf.int64) for name in MODEL_INPUTS}
    label = hparams.label_feature
    if label in inputs:
        outputs[label] = tf.cast(_dense_1d(inputs[label], -1), tf.int64)
    return outputs
