"""BertPretrainer: masked language modelling + next sentence prediction (Devlin et al., 2018)."""

import keras

from tfmodels.layers.pretraining_heads import MaskedLMHead, NextSentenceHead
from tfmodels.models.bert.encoder import bert_inputs
from tfmodels.models.bert.task import BertTask


@keras.saving.register_keras_serializable(package="tfmodels")
class BertPretrainer(BertTask):
    """BERT's pretraining model: an MLM head tied to the token embedding and an NSP head.

    Args:
        encoder: a ``BertEncoder``.

    Inputs: the encoder's dict plus ``masked_positions`` int32 ``[batch, num_predictions]``.
    Outputs: dict ``mlm_logits`` ``[batch, num_predictions, vocab_size]`` and ``nsp_logits``
    ``[batch, 2]`` (class 1 = "B is a random sentence", as in the original BERT data).

    Training: ``y = {"mlm_logits": masked_ids, "nsp_logits": nsp_labels}`` and
    ``sample_weight = {"mlm_logits": mlm_weights, "nsp_logits": ones}`` (mlm_weights is 0 for
    unused prediction slots; Keras wants one weight per output).

    Example:
    >>> import numpy as np
    >>> from tfmodels import BertConfig, BertEncoder
    >>> encoder = BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                                  num_attention_heads=2, intermediate_size=64))
    >>> model = BertPretrainer(encoder)
    >>> x = {"token_ids": np.ones((2, 8), "int32"), "segment_ids": np.zeros((2, 8), "int32"),
    ...      "padding_mask": np.ones((2, 8), "int32"),
    ...      "masked_positions": np.array([[1, 2], [3, 4]], "int32")}
    >>> model.predict(x, verbose=0)["mlm_logits"].shape
    (2, 2, 100)
    """

    def __init__(self, encoder, **kwargs):
        inputs = bert_inputs(encoder.sequence_length)
        inputs["masked_positions"] = keras.Input(
            shape=(None,), dtype="int32", name="masked_positions"
        )
        encoded = encoder(
            {name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")}
        )
        config = encoder.config
        initializer = keras.initializers.TruncatedNormal(stddev=config.initializer_range)
        mlm_logits = MaskedLMHead(
            encoder.token_embedding,
            activation=config.hidden_act,
            layer_norm_epsilon=config.layer_norm_eps,
            kernel_initializer=initializer,
            name="mlm_head",
        )(encoded["sequence_output"], inputs["masked_positions"])
        nsp_logits = NextSentenceHead(kernel_initializer=initializer, name="nsp_head")(
            encoded["pooled_output"]
        )
        outputs = {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits}
        self._init_task(encoder, inputs, outputs, **kwargs)

    def default_loss(self):
        return {
            "mlm_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "nsp_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        }

    def default_metrics(self):
        return {"nsp_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def default_weighted_metrics(self):
        return {"mlm_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}
