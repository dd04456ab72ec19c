"""Attention-mask builders shared by encoders and decoders."""

from keras import ops


def make_attention_mask(query_padding_mask=None, key_padding_mask=None, query_length=None):
    """Builds a ``[batch, query_length, key_length]`` boolean mask from padding masks.

    Args:
        query_padding_mask: ``[batch, query_length]``, 1 for real tokens. Padded query rows are
            still allowed to attend (their outputs are ignored downstream), so they never produce
            an all-masked softmax row.
        key_padding_mask: ``[batch, key_length]``, 1 for real tokens.
        query_length: needed when only ``key_padding_mask`` is given and the query is longer than 1.

    Example:
    >>> make_attention_mask(key_padding_mask=[[1, 1, 0]], query_length=2).shape
    TensorShape([1, 2, 3])
    """
    if key_padding_mask is None:
        raise ValueError("make_attention_mask needs key_padding_mask.")
    key_mask = ops.cast(key_padding_mask, "bool")[:, None, :]
    if query_length is None:
        query_length = ops.shape(query_padding_mask)[1] if query_padding_mask is not None else 1
    batch = ops.shape(key_mask)[0]
    return ops.broadcast_to(key_mask, (batch, query_length, ops.shape(key_mask)[2]))


def make_causal_mask(query_length, key_length=None, start_index=0):
    """A ``[1, query_length, key_length]`` mask where query ``i`` sees keys ``<= start_index + i``."""
    key_length = query_length if key_length is None else key_length
    rows = ops.arange(query_length)[:, None] + start_index
    cols = ops.arange(key_length)[None, :]
    return (cols <= rows)[None, :, :]


def merge_masks(*masks):
    """Logical AND of broadcastable boolean masks, skipping ``None``."""
    result = None
    for mask in masks:
        if mask is None:
            continue
        mask = ops.cast(mask, "bool")
        result = mask if result is None else ops.logical_and(result, mask)
    return result
