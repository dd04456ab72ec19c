"""Assigning named checkpoint arrays to a BertEncoder's variables, loudly.

Both importers (Hugging Face and Google TF1) describe, per encoder variable, which checkpoint
array feeds it and how to reshape it; ``assign_weights`` checks every name and shape and fails
with the variable, the source name and both shapes, so nothing is ever left randomly initialised.
"""

import dataclasses
from typing import Callable

import numpy as np


class CheckpointMismatchError(ValueError):
    """A checkpoint lacks a weight the model needs, or has it with another shape."""


@dataclasses.dataclass
class WeightSource:
    """Where one model variable comes from: a checkpoint name and a transform to the variable's layout."""

    name: str
    transform: Callable[[np.ndarray], np.ndarray] = lambda array: array


def transpose():
    """PyTorch ``Linear`` stores ``[out, in]``; Keras kernels are ``[in, out]``."""
    return lambda array: array.T


def to_heads(num_heads, transposed):
    """``[in, out]`` (optionally stored transposed) to ``[in, heads, head_dim]``; a bias ``[out]``
    to ``[heads, head_dim]``."""

    def transform(array):
        if array.ndim == 1:
            return array.reshape(num_heads, -1)
        if transposed:
            array = array.T
        return array.reshape(array.shape[0], num_heads, -1)

    return transform


def from_heads(num_heads, transposed):
    """The attention output projection ``[in, out]`` to ``[heads, head_dim, out]``."""

    def transform(array):
        if transposed:
            array = array.T
        return array.reshape(num_heads, -1, array.shape[-1])

    return transform


def encoder_variable_map(encoder, name_fn, linear_transposed):
    """Lists ``(variable, WeightSource)`` for every variable of a ``BertEncoder``.

    Args:
        encoder: the ``BertEncoder`` to fill.
        name_fn: ``name_fn(kind, layer_index, part)`` → checkpoint name; see the importers.
        linear_transposed: True when dense kernels are stored ``[out, in]`` (PyTorch).
    """
    dense = transpose() if linear_transposed else (lambda array: array)
    emb = encoder.embeddings
    mapping = [
        (emb.token_embedding.embeddings, WeightSource(name_fn("word_embeddings", None, None))),
        (emb.position_layer.embeddings, WeightSource(name_fn("position_embeddings", None, None))),
        (
            emb.segment_embedding.embeddings,
            WeightSource(name_fn("token_type_embeddings", None, None)),
        ),
        (emb.layer_norm.gamma, WeightSource(name_fn("embeddings_norm", None, "gamma"))),
        (emb.layer_norm.beta, WeightSource(name_fn("embeddings_norm", None, "beta"))),
    ]
    for i, block in enumerate(encoder.encoder_blocks):
        att = block.attention
        heads = att.num_heads  # per block: a head-pruned encoder (config.pruned_heads) has fewer in some
        for part, kernel, bias in (
            ("query", att.query_kernel, att.query_bias),
            ("key", att.key_kernel, att.key_bias),
            ("value", att.value_kernel, att.value_bias),
        ):
            mapping.append(
                (
                    kernel,
                    WeightSource(name_fn(part, i, "kernel"), to_heads(heads, linear_transposed)),
                )
            )
            mapping.append(
                (bias, WeightSource(name_fn(part, i, "bias"), to_heads(heads, linear_transposed)))
            )
        mapping += [
            (
                att.output_kernel,
                WeightSource(
                    name_fn("attention_output", i, "kernel"), from_heads(heads, linear_transposed)
                ),
            ),
            (att.output_bias, WeightSource(name_fn("attention_output", i, "bias"))),
            (block.attention_norm.gamma, WeightSource(name_fn("attention_norm", i, "gamma"))),
            (block.attention_norm.beta, WeightSource(name_fn("attention_norm", i, "beta"))),
            (
                block.feed_forward.intermediate_dense.kernel,
                WeightSource(name_fn("intermediate", i, "kernel"), dense),
            ),
            (
                block.feed_forward.intermediate_dense.bias,
                WeightSource(name_fn("intermediate", i, "bias")),
            ),
            (
                block.feed_forward.output_dense.kernel,
                WeightSource(name_fn("output", i, "kernel"), dense),
            ),
            (block.feed_forward.output_dense.bias, WeightSource(name_fn("output", i, "bias"))),
            (block.output_norm.gamma, WeightSource(name_fn("output_norm", i, "gamma"))),
            (block.output_norm.beta, WeightSource(name_fn("output_norm", i, "beta"))),
        ]
    mapping += [
        (encoder.pooler.dense.kernel, WeightSource(name_fn("pooler", None, "kernel"), dense)),
        (encoder.pooler.dense.bias, WeightSource(name_fn("pooler", None, "bias"))),
    ]
    return mapping


def assign_weights(mapping, get_array, source_description):
    """Checks every source before assigning anything, then assigns.

    Args:
        mapping: ``[(variable, WeightSource)]``.
        get_array: ``name -> np.ndarray`` or ``None`` when the checkpoint lacks ``name``.
        source_description: used in error messages (e.g. the file path).

    Raises:
        CheckpointMismatchError: naming every missing weight and every shape mismatch.
    """
    problems, values = [], []
    for variable, source in mapping:
        array = get_array(source.name)
        if array is None:
            problems.append(f"missing weight {source.name!r} for variable {variable.path!r}")
            continue
        try:
            value = source.transform(np.asarray(array))
        except ValueError as e:
            problems.append(
                f"cannot reshape {source.name!r} {tuple(np.shape(array))} for variable "
                f"{variable.path!r} {tuple(variable.shape)}: {e}"
            )
            continue
        if tuple(value.shape) != tuple(variable.shape):
            problems.append(
                f"shape mismatch for variable {variable.path!r}: model expects "
                f"{tuple(variable.shape)}, checkpoint {source.name!r} has {tuple(np.shape(array))}"
            )
            continue
        values.append((variable, value))
    if problems:
        raise CheckpointMismatchError(
            f"{source_description} does not fit the model ({len(problems)} problems):\n  "
            + "\n  ".join(problems)
        )
    for variable, value in values:
        variable.assign(value.astype(variable.dtype))
