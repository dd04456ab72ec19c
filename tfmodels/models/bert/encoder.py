"""BertEncoder: the BERT Transformer encoder (Devlin et al., 2018) as a Keras functional model."""

import keras

from tfmodels.layers.embedding import TransformerEmbedding
from tfmodels.layers.layer_norm import LayerNorm
from tfmodels.layers.pooler import Pooler
from tfmodels.layers.quantization import pop_quantized_layers, requantize, with_quantized_layers
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock
from tfmodels.models.bert.config import BertConfig
from tfmodels.utils.from_preset import FromPreset

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


def bert_inputs(sequence_length=None):
    """The encoder's input dict: int32 ``[batch, sequence_length]`` tensors named as in ``INPUT_NAMES``."""
    return {
        name: keras.Input(shape=(sequence_length,), dtype="int32", name=name)
        for name in INPUT_NAMES
    }


@keras.saving.register_keras_serializable(package="tfmodels")
class BertEncoder(FromPreset, keras.Model):
    """The BERT encoder: embeddings, ``num_hidden_layers`` encoder blocks and the pooler.

    Block ``i`` has ``config.layer_num_heads(i)`` attention heads: all of them unless
    ``config.pruned_heads`` removed some (``tfmodels.compress.prune_heads``).

    Args:
        config: a ``BertConfig`` (or its dict).
        sequence_length: optional fixed input length; ``None`` accepts any length up to
            ``config.max_position_embeddings``. A fixed length avoids XLA recompiles.
        dtype: a dtype or ``keras.DTypePolicy`` (e.g. ``"mixed_bfloat16"``).

    Inputs:
        dict of int32 ``[batch, length]``: ``token_ids``, ``segment_ids``, ``padding_mask``
        (1 for real tokens, 0 for padding).

    Outputs:
        dict: ``sequence_output`` ``[batch, length, hidden_size]`` and ``pooled_output``
        ``[batch, hidden_size]`` (tanh dense on the first token).

    Call args:
        inputs: the dict above.
        training: dropout on or off.
        pooled_only: if True, return only ``{"pooled_output": ...}``, computed without the last
            block's work on the other positions (its queries, attention output and feed-forward
            run on the first token only; every position is still attended to). Same values
            and gradients as the full call's ``pooled_output``, for less work: with 4 layers of
            width 256 at sequence length 128, 21% of the training step's matmul FLOPs.

    Example:
    >>> import numpy as np
    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                     num_attention_heads=2, intermediate_size=64)
    >>> encoder = BertEncoder(config)
    >>> out = encoder({"token_ids": np.ones((2, 8), "int32"),
    ...                "segment_ids": np.zeros((2, 8), "int32"),
    ...                "padding_mask": np.ones((2, 8), "int32")})
    >>> out["pooled_output"].shape
    TensorShape([2, 32])
    """

    def __init__(self, config, sequence_length=None, dtype=None, **kwargs):
        if isinstance(config, dict):
            config = BertConfig.from_dict(config)
        initializer = keras.initializers.TruncatedNormal(stddev=config.initializer_range)

        # === Layers ===
        self.embeddings = TransformerEmbedding(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            max_sequence_length=config.max_position_embeddings,
            type_vocab_size=config.type_vocab_size,
            position_encoding="learned",
            layer_norm_epsilon=config.layer_norm_eps,
            dropout=config.hidden_dropout_prob,
            initializer=initializer,
            dtype=dtype,
            name="embeddings",
        )
        # Head-pruned blocks (config.pruned_heads) have fewer heads of the unpruned head size.
        head_dim = config.hidden_size // config.num_attention_heads
        self.encoder_blocks = [
            TransformerEncoderBlock(
                num_heads=config.layer_num_heads(i),
                head_dim=head_dim,
                intermediate_size=config.intermediate_size,
                activation=config.hidden_act,
                dropout=config.hidden_dropout_prob,
                attention_dropout=config.attention_probs_dropout_prob,
                norm_first=config.norm_first,
                layer_norm_epsilon=config.layer_norm_eps,
                kernel_initializer=initializer,
                dtype=dtype,
                name=f"encoder_block_{i}",
            )
            for i in range(config.num_hidden_layers)
        ]
        self.final_norm = None
        if config.norm_first:
            self.final_norm = LayerNorm(epsilon=config.layer_norm_eps, dtype=dtype, name="final_norm")
        self.pooler = Pooler(kernel_initializer=initializer, dtype=dtype, name="pooler")

        # === Functional model ===
        inputs = bert_inputs(sequence_length)
        x = self._encode(inputs)
        outputs = {"sequence_output": x, "pooled_output": self.pooler(x)}
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.config = config
        self.sequence_length = sequence_length

    def call(self, inputs, training=None, mask=None, pooled_only=False):
        if not pooled_only:
            return super().call(inputs, training=training, mask=mask)
        return {"pooled_output": self.pooler(self._encode(inputs, training, last_output_length=1))}

    def _encode(self, inputs, training=None, last_output_length=None):
        """Embeddings, blocks and final norm: the sequence output, of which the last block computes
        only the first ``last_output_length`` positions when that is given."""
        x = self.embeddings(inputs["token_ids"], inputs["segment_ids"], training=training)
        *lower_blocks, last_block = self.encoder_blocks
        for block in lower_blocks:
            x = block(x, padding_mask=inputs["padding_mask"], training=training)
        x = last_block(
            x, padding_mask=inputs["padding_mask"], training=training, output_length=last_output_length
        )
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x

    def compute_output_spec(self, inputs, training=None, mask=None, pooled_only=False):
        spec = super().compute_output_spec(inputs, training=training, mask=mask)
        return {"pooled_output": spec["pooled_output"]} if pooled_only else spec

    @property
    def token_embedding(self):
        """The token embedding layer (tied to the masked-LM output projection)."""
        return self.embeddings.token_embedding

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "config": self.config.to_dict(),
            "sequence_length": self.sequence_length,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
        }
        return with_quantized_layers(config, self)

    @classmethod
    def from_config(cls, config):
        config, quantized = pop_quantized_layers(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return requantize(cls(**config), quantized)
