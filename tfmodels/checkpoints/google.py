"""Import original Google BERT TF1 checkpoints (``bert_model.ckpt`` + ``bert_config.json``)."""

import tensorflow as tf

from tfmodels.checkpoints.weight_mapping import assign_weights, encoder_variable_map
from tfmodels.models.bert.config import BertConfig
from tfmodels.models.bert.encoder import BertEncoder

_GOOGLE_PARTS = {
    "word_embeddings": "bert/embeddings/word_embeddings",
    "position_embeddings": "bert/embeddings/position_embeddings",
    "token_type_embeddings": "bert/embeddings/token_type_embeddings",
    "embeddings_norm": "bert/embeddings/LayerNorm",
    "query": "bert/encoder/layer_{i}/attention/self/query",
    "key": "bert/encoder/layer_{i}/attention/self/key",
    "value": "bert/encoder/layer_{i}/attention/self/value",
    "attention_output": "bert/encoder/layer_{i}/attention/output/dense",
    "attention_norm": "bert/encoder/layer_{i}/attention/output/LayerNorm",
    "intermediate": "bert/encoder/layer_{i}/intermediate/dense",
    "output": "bert/encoder/layer_{i}/output/dense",
    "output_norm": "bert/encoder/layer_{i}/output/LayerNorm",
    "pooler": "bert/pooler/dense",
}


def _google_name(kind, layer_index, part):
    base = _GOOGLE_PARTS[kind].format(i=layer_index)
    return base if part is None else f"{base}/{part}"


def load_google_bert(checkpoint_prefix, config_file, sequence_length=None, dtype=None):
    """Builds a ``BertEncoder`` from an original Google BERT checkpoint.

    Args:
        checkpoint_prefix: e.g. ``.../uncased_L-12_H-768_A-12/bert_model.ckpt``.
        config_file: the matching ``bert_config.json``.
        sequence_length: optional fixed input length for the encoder.
        dtype: optional dtype policy.

    Raises:
        CheckpointMismatchError: a weight is missing or has the wrong shape (names both).

    Example:
    >>> encoder = load_google_bert("bert_model.ckpt", "bert_config.json")  # doctest: +SKIP
    """
    config = BertConfig.from_json_file(config_file)
    try:
        reader = tf.train.load_checkpoint(checkpoint_prefix)
    except (tf.errors.NotFoundError, ValueError) as e:
        raise FileNotFoundError(f"cannot read checkpoint {checkpoint_prefix!r}: {e}") from e
    available = reader.get_variable_to_shape_map()

    def get_array(name):
        return reader.get_tensor(name) if name in available else None

    encoder = BertEncoder(config, sequence_length=sequence_length, dtype=dtype)
    mapping = encoder_variable_map(encoder, _google_name, linear_transposed=False)
    assign_weights(mapping, get_array, checkpoint_prefix)
    return encoder
