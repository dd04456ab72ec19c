"""BertTokenClassifier: a label per token (NER, POS tagging), and its raw-text preprocessor."""

import keras
import numpy as np
import tensorflow as tf

from tfmodels.models.bert.encoder import bert_inputs
from tfmodels.models.bert.task import BertTask, _as_strings, logits_head
from tfmodels.text import alignment
from tfmodels.text.preprocessing import TokenizingLayer
from tfmodels.text.wordpiece import BertTokenizer  # noqa: F401 (registered before deserializing)


@keras.saving.register_keras_serializable(package="tfmodels")
class TokenClassifierPreprocessor(TokenizingLayer):
    """Raw text -> windows of word pieces for a ``BertTokenClassifier``, labels aligned to the pieces.

    Long texts become several overlapping windows of ``sequence_length - 2`` pieces whose starts are
    ``stride`` pieces apart (``tfmodels.text.windows``), so rows are *windows*, not texts. Labels go on
    each word's first piece; other pieces, specials and padding get weight 0. See
    ``tfmodels.text.alignment`` for both training forms and the decoding rules.

    Args:
        tokenizer: a ``tfmodels.text.BertTokenizer``.
        tags: the tag set, index = class id (``"O"`` and ``B-``/``I-``, optionally ``E-``/``S-``).
        sequence_length: window length, ``[CLS]``/``[SEP]`` included.
        stride: step between window starts in pieces; default half a window.

    Call: a 1-D batch of strings -> the windows' encoder inputs (dict of int32
    ``[num_windows, sequence_length]``).

    Example:
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "anna", "lives", "in", "paris"]
    >>> pre = TokenClassifierPreprocessor(BertTokenizer(vocab), ["O", "B-PER", "B-LOC"], 8)
    >>> x, y, w = pre.align([["Anna", "lives", "in", "Paris"]], [["B-PER", "O", "O", "B-LOC"]])
    >>> x["token_ids"].tolist(), y.tolist(), w.tolist()
    ([[2, 5, 6, 7, 8, 3, 0, 0]], [[0, 1, 0, 0, 2, 0, 0, 0]], [[0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    """

    def __init__(self, tokenizer, tags, sequence_length=128, stride=None, **kwargs):
        alignment.check_tags(tags)
        if int(sequence_length) < 3:
            raise ValueError(f"sequence_length must be >= 3 ([CLS] piece [SEP]), got {sequence_length}")
        super().__init__(tokenizer, sequence_length, **kwargs)
        self.tags = list(tags)
        self.stride = int(stride) if stride is not None else max(1, (self.sequence_length - 2) // 2)
        alignment.num_windows(0, self.sequence_length - 2, self.stride)  # validates the stride

    def windows(self, texts):
        """``(x, window_text, pieces)`` for a 1-D string batch (see ``tfmodels.text.alignment``)."""
        pieces = alignment.text_pieces(self.tokenizer, texts)
        return (*self._pack(pieces["ids"]), pieces)

    def _pack(self, ids):
        token_ids, window_text, mask = alignment.pack_windows(
            ids, self.sequence_length, self.stride, self.tokenizer.cls_token_id,
            self.tokenizer.sep_token_id, self.tokenizer.pad_token_id)
        x = {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids),
             "padding_mask": mask}
        return x, window_text

    def call(self, texts):
        return self.windows(texts)[0]

    def align(self, x, y, sample_weight=None):
        """Training data -> numpy ``(x, labels, weights)`` over windows.

        ``x`` is a list of word lists with ``y`` one tag per word, or a list of raw strings with ``y``
        a list of ``[(start, end, type)]`` character spans per text.
        """
        if sample_weight is not None:
            raise ValueError("token labels carry their own weights (first pieces); give no sample_weight")
        x = list(x)
        if x and all(isinstance(t, str) for t in x):
            _, ids, labels = alignment.align_char_spans(self.tokenizer, x, list(y), self.tags)
        else:
            _, ids, labels = alignment.align_word_tags(self.tokenizer, x, list(y), self.tags)
        inputs, _ = self._pack(ids)
        rows, _, _ = alignment.pack_windows(labels, self.sequence_length, self.stride,
                                            alignment.IGNORE, alignment.IGNORE, alignment.IGNORE)
        rows = rows.numpy()
        weights = (rows != alignment.IGNORE).astype("float32")
        return ({k: v.numpy() for k, v in inputs.items()}, np.maximum(rows, 0).astype("int32"),
                weights)

    def align_tensors(self, words, tags, first_window_only=False):
        """``align`` for words with tags in core TF ops (``tf.data``, tf.Transform): string
        ``RaggedTensor``s ``[batch, (words)]`` -> ``(x, labels, weights)`` tensors over windows. A tag
        outside the tag set fails with ``InvalidArgumentError`` naming it. ``first_window_only``: one row
        per sentence, pieces past the first window cut (tf.Transform keeps the batch size)."""
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(self.tags), tf.range(len(self.tags))), -1)
        tag_ids = tf.ragged.map_flat_values(table.lookup, tags)
        unknown = tf.boolean_mask(tags.flat_values, tag_ids.flat_values < 0)
        tf.debugging.assert_equal(tf.size(unknown), 0, message=tf.strings.format(
            "tags outside the tag set {}: {}", (tf.constant(self.tags), unknown)))
        tf.debugging.assert_equal(words.row_lengths(), tags.row_lengths(),
                                  message="each sentence needs one tag per word")
        ids, labels = alignment.align_word_tag_ids(self.tokenizer, words, tag_ids, self.tags)
        if first_window_only:
            ids, labels = ids[:, : self.sequence_length - 2], labels[:, : self.sequence_length - 2]
        x, _ = self._pack(ids)
        rows, _, _ = alignment.pack_windows(labels, self.sequence_length, self.stride,
                                            alignment.IGNORE, alignment.IGNORE, alignment.IGNORE)
        return x, tf.maximum(rows, 0), tf.cast(rows != alignment.IGNORE, tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(tags=self.tags, stride=self.stride)
        return config


@keras.saving.register_keras_serializable(package="tfmodels")
class BertTokenClassifier(BertTask):
    """Classifies every token: dropout and a dense layer on the sequence output.

    Without a preprocessor, train with ``sample_weight`` 0 on padding and sub-word continuations. With a
    ``TokenClassifierPreprocessor``, ``fit(words, tags)`` / ``fit(texts, char_spans)`` align the labels
    themselves, ``predict(texts)`` gives one row of logits per *window*, and ``predict_entities(texts)``
    returns the entities of each text.

    Args:
        encoder: a ``BertEncoder``.
        num_classes: number of token labels.
        dropout: dropout rate before the output layer.
        preprocessor: optional ``TokenClassifierPreprocessor`` (its tag count must be ``num_classes``);
            saved with the model (see ``BertTask``).

    Inputs: the encoder's dict. Outputs: float32 logits ``[batch, length, num_classes]``.

    Example:
    >>> import numpy as np
    >>> from tfmodels import BertConfig, BertEncoder
    >>> encoder = BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                                  num_attention_heads=2, intermediate_size=64))
    >>> model = BertTokenClassifier(encoder, num_classes=5)
    >>> x = {"token_ids": np.ones((2, 8), "int32"), "segment_ids": np.zeros((2, 8), "int32"),
    ...      "padding_mask": np.ones((2, 8), "int32")}
    >>> model.predict(x, verbose=0).shape
    (2, 8, 5)
    """

    def __init__(self, encoder, num_classes, dropout=0.1, preprocessor=None, **kwargs):
        inputs = bert_inputs(encoder.sequence_length)
        sequence = encoder(inputs)["sequence_output"]
        logits = logits_head(
            sequence, num_classes, dropout, encoder.config.initializer_range, "token"
        )
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        if preprocessor is not None and len(preprocessor.tags) != num_classes:
            raise ValueError(f"the preprocessor has {len(preprocessor.tags)} tags but "
                             f"num_classes={num_classes}")
        self._init_task(encoder, inputs, logits, preprocessor=preprocessor, **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout

    @classmethod
    def _from_preset_parts(cls, encoder, tokenizer, tags=None, sequence_length=128, stride=None,
                           **kwargs):
        if tags is None:
            raise ValueError(f"{cls.__name__}.from_preset needs tags=[...] (the tag set)")
        preprocessor = TokenClassifierPreprocessor(tokenizer, tags, sequence_length, stride)
        return cls(encoder, len(preprocessor.tags), preprocessor=preprocessor, **kwargs)

    def default_loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_weighted_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def _task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout}

    # -- raw inputs ---------------------------------------------------------

    def preprocess_arrays(self, x, y=None, sample_weight=None):
        if y is None:
            return super().preprocess_arrays(x, None, sample_weight)
        return self.preprocessor.align(x, y, sample_weight)

    def preprocess_dataset(self, dataset):
        """Batches of texts alone, and of ``(words, tags)`` as string ``RaggedTensor``s, are windowed
        in the graph, lazily; batches of ``(texts, spans)`` are aligned eagerly (spans need Python)."""
        spec = dataset.element_spec
        if not isinstance(spec, tuple) or len(spec) == 1:
            return super().preprocess_dataset(dataset)
        if len(spec) == 2 and all(isinstance(s, tf.RaggedTensorSpec) and s.dtype == tf.string
                                  and s.shape.rank == 2 for s in spec):
            return dataset.map(self.preprocessor.align_tensors, num_parallel_calls=tf.data.AUTOTUNE)
        rows = [self.preprocessor.align(*_to_python(element)) for element in dataset]
        if not rows:
            raise ValueError("the dataset is empty")
        x = {k: np.concatenate([r[0][k] for r in rows]) for k in rows[0][0]}
        y, w = np.concatenate([r[1] for r in rows]), np.concatenate([r[2] for r in rows])
        batch = len(rows[0][1])
        return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(batch)

    def entity_tensors(self, texts):
        """Texts (1-D string tensor) -> ragged entity tensors (``alignment.decode_entities``); core TF
        ops, the graph that ``export_token_classifier`` serves."""
        pre = self.preprocessor
        x, window_text, pieces = pre.windows(texts)
        logits = self(x, training=False)
        return alignment.decode_entities(texts, pieces, logits, window_text, pre.sequence_length,
                                         pre.stride, pre.tags)

    def predict_entities(self, texts, batch_size=32):
        """Entities of each raw text: per text a list of dicts ``type``, ``text``, ``start``, ``end``
        (Python ``str`` indices, ``text[start:end] == entity["text"]``) and ``score`` (mean tag
        probability of its words). An empty (or whitespace-only) text gives ``[]``. Needs a
        preprocessor; invalid tag sequences are repaired as ``tfmodels.text.alignment`` documents."""
        if self.preprocessor is None:
            raise ValueError("predict_entities needs a model built with preprocessor=")
        texts = _as_strings(texts)
        results = []
        for begin in range(0, int(texts.shape[0]), batch_size):
            found = self.entity_tensors(texts[begin: begin + batch_size])
            found = {k: v.to_list() for k, v in found.items()}
            for row in range(len(found["text"])):
                results.append([
                    {"type": t.decode(), "text": s.decode(), "start": int(a), "end": int(b),
                     "score": float(p)}
                    for t, s, a, b, p in zip(found["type"][row], found["text"][row],
                                             found["start"][row], found["end"][row],
                                             found["score"][row])
                ])
        return results


def _to_python(element):
    """A dataset batch ``(x, y)`` -> Python lists of str (bytes decoded) and span tuples."""
    def convert(value):
        if isinstance(value, tf.RaggedTensor):
            value = value.to_list()
        elif isinstance(value, tf.Tensor):
            value = value.numpy().tolist()
        return _decode(value)

    x, y = element[0], element[1]
    return convert(x), convert(y)


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
