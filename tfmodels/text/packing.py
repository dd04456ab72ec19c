"""Packing token segments into fixed-length BERT inputs: ``[CLS] a [SEP] b [SEP]``."""

from __future__ import annotations

import keras
import tensorflow as tf

TRUNCATION_STRATEGIES = ("round_robin", "longest_first", "waterfall")


def truncation_lengths(lengths: tf.Tensor, budget, strategy: str = "round_robin") -> tf.Tensor:
    """How many tokens of each segment to keep so that they fit in ``budget``.

    Args:
      lengths: int ``[batch, num_segments]`` segment lengths.
      budget: scalar, tokens available for all segments together.
      strategy:
        * ``"round_robin"``: take one token from each segment in turn, first
          segment first, until the budget is spent.
        * ``"longest_first"``: BERT's ``_truncate_seq_pair``: drop the last
          token of the longest segment (on a tie, the later segment) until the
          rest fits. This ends at exactly the same lengths as round robin
          (both even out the segments, the earlier one keeping the odd
          token); both names are accepted so either description works.
        * ``"waterfall"``: keep earlier segments whole, truncate later ones first.

    Returns:
      int ``[batch, num_segments]``, same dtype as ``lengths``.
    """
    if strategy not in TRUNCATION_STRATEGIES:
        raise ValueError(f"truncate must be one of {TRUNCATION_STRATEGIES}, got {strategy!r}")
    budget = tf.cast(budget, lengths.dtype)
    if strategy == "waterfall":
        taken_before = tf.cumsum(lengths, axis=1, exclusive=True)
        return tf.clip_by_value(budget - taken_before, 0, lengths)
    # Round robin fills every segment up to a common level t (the most full
    # rounds that fit), then the leftover tokens go to the earliest segments
    # still longer than t.
    levels = tf.range(budget + 1, dtype=lengths.dtype)  # [L]
    used = tf.reduce_sum(tf.minimum(lengths[:, None, :], levels[None, :, None]), axis=2)
    level = tf.reduce_sum(tf.cast(used <= budget, lengths.dtype), axis=1) - 1  # [B]
    base = tf.minimum(lengths, level[:, None])
    left = budget - tf.reduce_sum(base, axis=1, keepdims=True)
    longer = tf.cast(lengths > level[:, None], lengths.dtype)
    extra = longer * tf.cast(tf.cumsum(longer, axis=1) <= left, lengths.dtype)
    return base + extra


@keras.saving.register_keras_serializable(package="tfmodels")
class BertPacker(keras.layers.Layer):
    """Packs one or more token segments into fixed-length BERT inputs.

    ``[CLS] a [SEP]`` for one segment, ``[CLS] a [SEP] b [SEP]`` for a pair
    (and so on), truncated to ``sequence_length`` and padded with ``pad_id``.

    Args:
      sequence_length: output length, special tokens included.
      cls_id, sep_id, pad_id: special token ids.
      truncate: ``"round_robin"`` (default), ``"longest_first"`` or
        ``"waterfall"``; see :func:`truncation_lengths`.

    Call args:
      inputs: a ragged ``[batch, (tokens)]`` int tensor (or a list of lists),
        or a tuple/list of them, one per segment.

    Returns:
      dict of int32 ``[batch, sequence_length]``: ``token_ids``, ``segment_ids``
      (0 for ``[CLS]``, segment 1 and its ``[SEP]``; i for segment i+1) and
      ``padding_mask`` (1 on real tokens, 0 on padding).

    Example:

    >>> packer = BertPacker(sequence_length=8, cls_id=101, sep_id=102)
    >>> out = packer((tf.ragged.constant([[5, 6, 7, 8]]), tf.ragged.constant([[9, 10, 11]])))
    >>> out["token_ids"].numpy().tolist()
    [[101, 5, 6, 7, 102, 9, 10, 102]]
    >>> out["segment_ids"].numpy().tolist()
    [[0, 0, 0, 0, 0, 1, 1, 1]]
    """

    def __init__(self, sequence_length, cls_id, sep_id, pad_id=0, truncate="round_robin", **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True
        if truncate not in TRUNCATION_STRATEGIES:
            raise ValueError(f"truncate must be one of {TRUNCATION_STRATEGIES}, got {truncate!r}")
        self.sequence_length = int(sequence_length)
        self.cls_id, self.sep_id, self.pad_id = int(cls_id), int(sep_id), int(pad_id)
        self.truncate = truncate

    def call(self, inputs):
        segments = list(inputs) if _is_multi_segment(inputs) else [inputs]
        segments = [_as_ragged_batch(s) for s in segments]
        budget = self.sequence_length - 1 - len(segments)
        if budget < 0:
            raise ValueError(
                f"sequence_length={self.sequence_length} leaves no room for "
                f"{len(segments)} segment(s) and their special tokens"
            )
        lengths = tf.stack([s.row_lengths() for s in segments], axis=1)
        keep = truncation_lengths(lengths, budget, self.truncate)
        batch = tf.shape(lengths, out_type=tf.int64)[0]
        cls = tf.RaggedTensor.from_tensor(tf.fill([batch, 1], self.cls_id))
        sep = tf.RaggedTensor.from_tensor(tf.fill([batch, 1], self.sep_id))
        tokens, segment_ids = [cls], [tf.zeros_like(cls)]
        for i, segment in enumerate(segments):
            position = tf.ragged.range(segment.row_lengths())
            kept = tf.ragged.boolean_mask(segment, position < keep[:, i : i + 1])
            tokens += [kept, sep]
            segment_ids += [tf.ones_like(kept) * i, tf.ones_like(sep) * i]
        tokens = tf.concat(tokens, axis=1)
        shape = [None, self.sequence_length]
        return {
            "token_ids": tokens.to_tensor(self.pad_id, shape=shape),
            "segment_ids": tf.concat(segment_ids, axis=1).to_tensor(0, shape=shape),
            "padding_mask": tf.ones_like(tokens).to_tensor(0, shape=shape),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            sequence_length=self.sequence_length,
            cls_id=self.cls_id,
            sep_id=self.sep_id,
            pad_id=self.pad_id,
            truncate=self.truncate,
        )
        return config


def _is_multi_segment(inputs) -> bool:
    """A tuple, or a list of tensors, holds several segments; a list of lists is one."""
    if isinstance(inputs, tuple):
        return True
    return isinstance(inputs, list) and bool(inputs) and isinstance(
        inputs[0], (tf.Tensor, tf.RaggedTensor)
    )


def _as_ragged_batch(segment) -> tf.RaggedTensor:
    if not isinstance(segment, (tf.Tensor, tf.RaggedTensor)):
        segment = tf.ragged.constant(segment, dtype=tf.int32)
    if isinstance(segment, tf.Tensor):
        if segment.shape.rank != 2:
            raise ValueError(f"a segment must be a [batch, (tokens)] batch, got shape {segment.shape}")
        segment = tf.RaggedTensor.from_tensor(segment)
    return tf.cast(segment.with_row_splits_dtype(tf.int64), tf.int32)
