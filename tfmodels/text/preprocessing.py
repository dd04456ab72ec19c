"""Raw strings -> packed BERT inputs in one layer (tokenize, then pack)."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.text.packing import BertPacker
from tfmodels.text.wordpiece import BertTokenizer  # noqa: F401 (registered before deserializing)
from tfmodels.utils.from_preset import FromPreset


class TokenizingLayer(FromPreset, keras.layers.Layer):
    """Base of the layers that turn strings into model inputs with a tokenizer (BERT packing, NER and
    span-QA windows): holds the tokenizer and ``sequence_length`` and takes strings as they come.

    Args:
        tokenizer: a ``BertTokenizer`` (or its serialized config, as ``from_config`` passes it).
        sequence_length: length of every packed row.
    """

    def __init__(self, tokenizer, sequence_length, **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        # Keras would otherwise convert string inputs to float tensors and refuse Python lists of strings.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True
        if isinstance(tokenizer, dict):
            tokenizer = keras.saving.deserialize_keras_object(tokenizer)
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)

    def get_config(self):
        config = super().get_config()
        config.update(tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
                      sequence_length=self.sequence_length)
        return config


@keras.saving.register_keras_serializable(package="tfmodels")
class BertPreprocessor(TokenizingLayer):
    """Tokenizes one text (or a pair) per example and packs it for a BERT encoder.

    Core TensorFlow ops only: use it in ``tf.data.Dataset.map``, in a
    ``tf.function`` exported in a SavedModel, or as the first layer of a
    functional model with a string ``keras.Input(shape=(), dtype="string")``.

    Args:
      tokenizer: a :class:`~tfmodels.text.BertTokenizer`.
      sequence_length: packed length, special tokens included.
      truncate: ``"round_robin"``, ``"longest_first"`` or ``"waterfall"``.

    The tokenizer's vocabulary is saved as an asset of ``.keras`` files, not
    in ``get_config()`` (see :class:`~tfmodels.text.BertTokenizer`).

    Call args:
      inputs: 1-D string tensor, or a tuple of two (sentence pairs). A scalar
        string gives un-batched ``[sequence_length]`` outputs.

    Returns:
      dict of int32 ``token_ids``, ``segment_ids``, ``padding_mask`` (1 = real token),
      each ``[batch, sequence_length]``.

    Example:

    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "film"]
    >>> preprocessor = BertPreprocessor(BertTokenizer(vocab), sequence_length=6)
    >>> preprocessor(tf.constant(["Good film!"]))["token_ids"].numpy().tolist()
    [[2, 5, 6, 1, 3, 0]]
    """

    def __init__(self, tokenizer, sequence_length=128, truncate="round_robin", **kwargs):
        super().__init__(tokenizer, sequence_length, **kwargs)
        self.truncate = truncate
        # The packer needs the special-token ids, which a tokenizer loaded from a .keras file
        # only has once its vocabulary asset is read (after this constructor runs).
        self._packer = None
        if self.tokenizer._vocabulary is not None:
            self.packer  # noqa: B018 (build it now, as before assets existed)

    @property
    def packer(self):
        if self._packer is None:
            tokenizer = self.tokenizer
            tokenizer._require_vocabulary()
            self._packer = BertPacker(
                self.sequence_length,
                cls_id=tokenizer.cls_token_id,
                sep_id=tokenizer.sep_token_id,
                pad_id=tokenizer.pad_token_id,
                truncate=self.truncate,
            )
        return self._packer

    def call(self, inputs):
        texts = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
        texts = [tf.convert_to_tensor(t, tf.string) for t in texts]
        is_scalar = texts[0].shape.rank == 0
        if is_scalar:
            texts = [t[tf.newaxis] for t in texts]
        packed = self.packer(tuple(self.tokenizer.tokenize(t) for t in texts))
        if is_scalar:
            packed = {name: value[0] for name, value in packed.items()}
        return packed

    def compute_output_spec(self, inputs):
        # Shapes only, without running the tokenizer: a functional model is rebuilt on load
        # before the tokenizer's vocabulary asset is read.
        first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        shape = tuple(first.shape) + (self.sequence_length,)
        return {
            name: keras.KerasTensor(shape, dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }

    def get_config(self):
        config = super().get_config()
        config.update(truncate=self.truncate)
        return config
