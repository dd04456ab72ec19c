"""Structured pruning of BERT encoders: attention heads and whole layers, ranked by importance.

Pruning removes structure instead of zeroing weights, so a pruned model is smaller and faster with
plain dense kernels:

- **Heads.** ``BertConfig.pruned_heads`` (Hugging Face's convention) is ``{layer: [heads removed]}``;
  block ``i`` of a ``BertEncoder`` is built with ``num_attention_heads - len(pruned_heads[i])`` heads
  of the unpruned head size. ``prune_heads`` slices the query/key/value kernels and biases and the
  output kernel on their heads axis; the output bias stays. A head reaches the block only through
  ``ctx_h @ output_kernel[h]``, so the pruned model computes exactly what the original does with
  those heads' ``output_kernel[h]`` set to zero ("gated to zero"). Head indices always count the
  *unpruned* heads, so pruning a pruned model again takes the same numbering.
- **Layers.** ``prune_layers`` builds a config with fewer ``num_hidden_layers`` whose blocks are copies
  of the kept ones, in order (their ``pruned_heads`` entries move with them).

Both return a *new* model of the input's class (a ``BertEncoder`` or a ``BertTask`` such as
``BertClassifier`` / ``BertTokenClassifier``, with the same preprocessor and copied head weights);
the pruning travels in the encoder's config, so ``.keras`` files save and reload as usual.

**Importance.** ``head_importance`` is Michel, Levy & Neubig (2019), "Are Sixteen Heads Really
Better than One?": with a gate ``xi_h`` on head ``h``'s output, ``I_h = E_x |dL(x)/dxi_h|``. The
gate needs no change to the attention layer: since the head enters as ``ctx_h @ W_o[h]``, for one
example ``dL/dxi_h = <W_o[h], dL/dW_o[h]>`` (summed over the head's ``[value_dim, out]`` slice). The
per-example gradients come from ``tf.vectorized_map`` over the batch, so ``|.|`` is taken per
example, as in the paper, not on batch gradients. As the paper recommends, each layer's scores are
normalised by their L2 norm before heads are ranked across layers. ``layer_importance`` is the
increase of the mean loss when one whole block (attention and feed-forward) is removed.

``prune_by_importance`` drops the least important layers and heads (never every head of a layer).
Pruned models are not compiled; recover the accuracy with a short fine-tune:

>>> pruned, plan = prune_by_importance(model, dev_data, num_heads=4)  # doctest: +SKIP
>>> pruned.compile()  # doctest: +SKIP
>>> pruned.fit(train_data, epochs=1)  # doctest: +SKIP
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfmodels.layers.quantization import quantized_layers
from tfmodels.models.bert.encoder import BertEncoder
from tfmodels.models.bert.task import BertTask

# The heads axis of each per-head attention weight; output_bias has none and is kept whole.
_HEADS_AXIS = {
    "query_kernel": 1,
    "query_bias": 0,
    "key_kernel": 1,
    "key_bias": 0,
    "value_kernel": 1,
    "value_bias": 0,
    "output_kernel": 0,
}


@dataclasses.dataclass
class PruningPlan:
    """What ``prune_by_importance`` removed, in the input model's numbering.

    Attributes:
        heads: ``{layer: [heads]}`` passed to ``prune_heads``.
        layers: layer indices passed to ``prune_layers`` (after the heads).
        head_scores: ``[num_layers, num_attention_heads]`` normalised ``head_importance``, or None
            when no heads were asked for.
        layer_scores: ``[num_layers]`` ``layer_importance``, or None when no layers were asked for.
    """

    heads: dict
    layers: list
    head_scores: np.ndarray = None
    layer_scores: np.ndarray = None

    def apply(self, model):
        """Prunes ``model`` (built like the one the plan was made for) as the plan says."""
        return prune_layers(prune_heads(model, self.heads), self.layers)


# -- pruning ------------------------------------------------------------------


def prune_heads(model, heads_to_prune):
    """A copy of ``model`` without the given attention heads.

    Args:
        model: a ``BertEncoder`` or a ``BertTask`` (``BertClassifier``, ``BertTokenClassifier``, ...).
        heads_to_prune: ``{layer: [heads]}``; head indices count the unpruned heads
            (``0 .. num_attention_heads - 1``), as in ``BertConfig.pruned_heads``. Heads already
            pruned are ignored.

    Returns:
        A new model of ``model``'s class whose encoder config has the union of the pruned heads; its
        outputs are the original's with those heads' ``output_kernel`` slices set to zero.

    Raises:
        ValueError: for a layer or head out of range, or when a layer would lose all its heads
            (``prune_layers`` removes layers).

    Example:
    >>> from tfmodels import BertConfig, BertEncoder
    >>> encoder = BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                                  num_attention_heads=4, intermediate_size=64))
    >>> pruned = prune_heads(encoder, {1: [0, 2]})
    >>> pruned.config.pruned_heads, tuple(pruned.encoder_blocks[1].attention.output_kernel.shape)
    ({1: [0, 2]}, (2, 8, 32))
    """
    _, encoder = _task_and_encoder(model)
    config = encoder.config
    for layer, heads in heads_to_prune.items():
        _check_index("layer", layer, config.num_hidden_layers)
        for head in heads:
            _check_index(f"head of layer {layer}", head, config.num_attention_heads)
    pruned = {layer: set(heads) for layer, heads in config.pruned_heads.items()}
    for layer, heads in heads_to_prune.items():
        pruned.setdefault(int(layer), set()).update(int(head) for head in heads)
    new_config = dataclasses.replace(config, pruned_heads=pruned)  # validates: no layer emptied
    keep = [
        _positions(_kept_heads(config, layer), _kept_heads(new_config, layer))
        for layer in range(config.num_hidden_layers)
    ]
    return _rebuild(model, new_config, list(range(config.num_hidden_layers)), keep)


def prune_layers(model, layers_to_drop):
    """A copy of ``model`` without the given encoder blocks.

    Args:
        model: a ``BertEncoder`` or a ``BertTask``.
        layers_to_drop: block indices to remove; at least one block must stay.

    Returns:
        A new model of ``model``'s class with ``num_hidden_layers - len(set(layers_to_drop))`` blocks,
        copies of the kept ones in order (with their pruned heads); embeddings, pooler and task head
        are copied unchanged.

    Example:
    >>> from tfmodels import BertConfig, BertEncoder
    >>> encoder = BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=3,
    ...                                  num_attention_heads=2, intermediate_size=64))
    >>> prune_layers(encoder, [1]).config.num_hidden_layers
    2
    """
    _, encoder = _task_and_encoder(model)
    config = encoder.config
    drop = set()
    for layer in layers_to_drop:
        _check_index("layer", layer, config.num_hidden_layers)
        drop.add(int(layer))
    kept = [layer for layer in range(config.num_hidden_layers) if layer not in drop]
    if not kept:
        raise ValueError(f"cannot drop all {config.num_hidden_layers} layers")
    new_config = dataclasses.replace(
        config,
        num_hidden_layers=len(kept),
        pruned_heads={new: config.pruned_heads[old] for new, old in enumerate(kept)
                      if old in config.pruned_heads},
    )
    return _rebuild(model, new_config, kept, [None] * len(kept))


def prune_by_importance(model, data, num_heads=0, num_layers=0, loss=None, steps=None):
    """Removes the ``num_layers`` least important layers, then the ``num_heads`` least important
    heads of the other layers (ranked globally on the per-layer normalised ``head_importance``),
    never the last head of a layer. Both scores are measured on ``model`` itself.

    Args:
        model: a ``BertTask`` (or a ``BertEncoder`` with ``loss``).
        data, loss, steps: as for ``head_importance``.
        num_heads: how many heads to remove.
        num_layers: how many layers to remove.

    Returns:
        ``(pruned_model, PruningPlan)``; the model is not compiled (fine-tune it to recover).

    Example:
    >>> pruned, plan = prune_by_importance(model, dev_data, num_heads=12)  # doctest: +SKIP
    >>> plan.heads  # doctest: +SKIP
    {0: [3, 7], 4: [1], ...}
    """
    config = _task_and_encoder(model)[1].config
    if not 0 <= num_layers < config.num_hidden_layers:
        raise ValueError(f"num_layers must be in [0, {config.num_hidden_layers}), got {num_layers}")
    layer_scores = head_scores = None
    layers = []
    if num_layers:
        layer_scores = layer_importance(model, data, loss=loss, steps=steps)
        layers = sorted(int(i) for i in np.argsort(layer_scores, kind="stable")[:num_layers])
    heads = {}
    if num_heads:
        head_scores = head_importance(model, data, loss=loss, steps=steps)
        heads = _lowest_heads(config, head_scores, num_heads, exclude_layers=layers)
    plan = PruningPlan(heads, layers, head_scores, layer_scores)
    return plan.apply(model), plan


def _lowest_heads(config, scores, count, exclude_layers):
    """The ``count`` lowest-scored present heads outside ``exclude_layers``, keeping a head per layer."""
    left = {layer: config.layer_num_heads(layer) for layer in range(config.num_hidden_layers)
            if layer not in exclude_layers}
    chosen, found = {}, 0
    order = np.argsort(np.where(np.isnan(scores), np.inf, scores), axis=None, kind="stable")
    for layer, head in zip(*np.unravel_index(order, scores.shape)):
        layer, head = int(layer), int(head)
        if found == count:
            break
        if layer in left and left[layer] > 1 and not np.isnan(scores[layer, head]):
            chosen.setdefault(layer, []).append(head)
            left[layer] -= 1
            found += 1
    if found < count:
        raise ValueError(f"cannot remove {count} heads while keeping one per layer: only {found} "
                         "can go")
    return {layer: sorted(heads) for layer, heads in sorted(chosen.items())}


# -- importance ---------------------------------------------------------------


def head_importance(model, data, loss=None, steps=None, normalize=True):
    """Michel et al. (2019) head importance ``E_x |dL(x)/dxi_h|``, ``xi_h`` a gate on head ``h``.

    ``dL/dxi_h = <W_o[h], dL/dW_o[h]>`` per example (``W_o`` the attention output kernel), computed
    for every example of a batch at once with ``tf.vectorized_map`` (memory grows with the batch:
    one output-kernel gradient per example and layer), in inference mode (no dropout).

    Args:
        model: a ``BertTask`` (``BertClassifier``, ``BertTokenClassifier``, ...), or a ``BertEncoder``
            with ``loss``.
        data: a ``tf.data.Dataset`` or any iterable of ``(x, y)`` / ``(x, y, sample_weight)`` batches,
            ``x`` the token-id dict (preprocess raw text first, e.g. ``model.preprocess_dataset``).
        loss: ``loss(y_true, y_pred, sample_weight)`` (a ``keras.losses.Loss``, a loss name, or a dict
            of them for dict outputs); default the compiled loss, else ``model.default_loss()``. It
            is evaluated on one example at a time.
        steps: number of batches to use; default all (required for an infinite dataset).
        normalize: divide each layer's scores by their L2 norm, as Michel et al. do before
            ranking heads across layers.

    Returns:
        float numpy ``[num_hidden_layers, num_attention_heads]``; ``NaN`` for heads already pruned.

    Example:
    >>> scores = head_importance(classifier, dev_dataset, steps=100)  # doctest: +SKIP
    >>> scores.shape  # doctest: +SKIP
    (12, 12)
    """
    _, encoder = _task_and_encoder(model)
    loss = _resolve_loss(model, loss)
    # The backend's tf.Variables: a tape can watch them even when the model is frozen.
    kernels = [block.attention.output_kernel.value for block in encoder.encoder_blocks]

    def example_gates(elements):
        # One example, as a batch of one: (x, y) or (x, y, sample_weight).
        x, y, sample_weight = _add_batch_axis(*elements, *[None] * (3 - len(elements)))
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(kernels)
            value = _loss_value(loss, y, model(x, training=False), sample_weight)
        grads = tape.gradient(value, kernels)
        return [tf.reduce_sum(tf.cast(kernel, grad.dtype) * grad, axis=(1, 2))
                for kernel, grad in zip(kernels, grads)]

    @tf.function(reduce_retracing=True)
    def batch_gates(elements):
        gates = tf.vectorized_map(example_gates, elements)
        return [tf.reduce_sum(tf.abs(g), axis=0) for g in gates]

    totals = [np.zeros(int(kernel.shape[0])) for kernel in kernels]
    count = 0
    for x, y, sample_weight in _batches(data, steps):
        elements = (x, y) if sample_weight is None else (x, y, sample_weight)
        for total, part in zip(totals, batch_gates(elements)):
            total += part.numpy()
        count += _batch_size(x)
    config = encoder.config
    scores = np.full((config.num_hidden_layers, config.num_attention_heads), np.nan)
    for layer, total in enumerate(totals):
        row = total / count
        if normalize and np.linalg.norm(row) > 0:
            row = row / np.linalg.norm(row)
        scores[layer, _kept_heads(config, layer)] = row
    return scores


def layer_importance(model, data, loss=None, steps=None):
    """How much the mean loss over ``data`` grows when each encoder block is removed.

    Measured directly, with ``prune_layers(model, [i])`` for each block (one forward pass over
    ``data`` per block, plus one for ``model``), so it accounts for the feed-forward as well as
    the attention. A negative score means the model does better without the block.

    Args:
        model, data, loss, steps: as for ``head_importance``.

    Returns:
        float numpy ``[num_hidden_layers]``: ``loss(without block i) - loss(model)``; ``inf`` for
        the only block of a one-layer model (it cannot be removed).
    """
    _, encoder = _task_and_encoder(model)
    loss = _resolve_loss(model, loss)
    num_layers = encoder.config.num_hidden_layers
    if num_layers == 1:
        return np.array([np.inf])
    base = _mean_loss(model, data, loss, steps)
    return np.array([_mean_loss(prune_layers(model, [i]), data, loss, steps) - base
                     for i in range(num_layers)])


def _mean_loss(model, data, loss, steps):
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    total, count = 0.0, 0
    for x, y, sample_weight in _batches(data, steps):
        batch = _batch_size(x)
        # Keras' losses average over the batch: weight by its size for the mean over examples.
        total += float(_loss_value(loss, y, forward(x), sample_weight)) * batch
        count += batch
    return total / count


def _resolve_loss(model, loss):
    if loss is None:
        loss = getattr(model, "loss", None)
        if loss is None and hasattr(model, "default_loss"):
            loss = model.default_loss()
        if loss is None:
            raise ValueError(f"{type(model).__name__} has no loss: compile it or pass loss=")
    if isinstance(loss, dict):
        return {name: _resolve_loss(model, value) for name, value in loss.items()}
    if isinstance(loss, (list, tuple)):
        raise ValueError("list losses are not supported; pass a dict keyed by output name or a "
                         "callable loss(y_true, y_pred, sample_weight)")
    return keras.losses.get(loss) if isinstance(loss, str) else loss


def _loss_value(loss, y, y_pred, sample_weight):
    """The scalar loss; a dict loss sums its outputs' losses (a dict weight goes per output)."""
    if isinstance(loss, dict):
        return sum(
            _loss_value(fn, y[name], y_pred[name],
                        sample_weight[name] if isinstance(sample_weight, dict) else sample_weight)
            for name, fn in loss.items()
        )
    if isinstance(loss, keras.losses.Loss):
        return loss(y, y_pred, sample_weight=sample_weight)
    values = loss(y, y_pred)  # a plain loss function: per example (or per token)
    if sample_weight is not None:
        values = values * tf.cast(sample_weight, values.dtype)
    return tf.reduce_mean(values)


def _batches(data, steps):
    """``(x, y, sample_weight)`` tensors of each batch, ``steps`` of them at most."""
    seen = 0
    for batch in data:
        if steps is not None and seen >= steps:
            break
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
            batch if isinstance(batch, tuple) else (batch,))
        if y is None:
            raise ValueError("importance needs labels: data must yield (x, y) or (x, y, sample_weight)")
        yield tuple(None if part is None else tf.nest.map_structure(tf.convert_to_tensor, part)
                    for part in (x, y, sample_weight))
        seen += 1
    if not seen:
        raise ValueError("data yielded no batches")


def _add_batch_axis(*structures):
    return tuple(None if s is None else tf.nest.map_structure(lambda t: t[None], s)
                 for s in structures)


def _batch_size(x):
    return int(tf.shape(tf.nest.flatten(x)[0])[0])


# -- building the pruned copy -------------------------------------------------


def _task_and_encoder(model):
    """``(task or None, encoder)``; refuses models with int8 layers (prune before quantizing)."""
    if isinstance(model, BertEncoder):
        task, encoder = None, model
    elif isinstance(model, BertTask):
        task, encoder = model, model.encoder
    else:
        raise TypeError(f"expected a BertEncoder or a BertTask, got {type(model).__name__}")
    if quantized_layers(model):
        raise ValueError("cannot prune a quantized model: prune the float model, then quantize")
    return task, encoder


def _check_index(what, index, size):
    if isinstance(index, bool) or not 0 <= int(index) < size:
        raise ValueError(f"{what} {index!r} is not in [0, {size})")


def _kept_heads(config, layer):
    """The original indices of the heads block ``layer`` still has, in weight order."""
    pruned = set(config.pruned_heads.get(layer, ()))
    return [head for head in range(config.num_attention_heads) if head not in pruned]


def _positions(current, kept):
    """Where each head of ``kept`` sits on the heads axis of a block that has ``current``."""
    return [current.index(head) for head in kept]


def _rebuild(model, config, source_blocks, head_positions):
    """A new model like ``model`` over a ``BertEncoder(config)``; block ``j`` copies block
    ``source_blocks[j]``, restricted to the heads at ``head_positions[j]`` (None: all of them)."""
    task, encoder = _task_and_encoder(model)
    new_encoder = BertEncoder(config, sequence_length=encoder.sequence_length,
                              dtype=encoder.dtype_policy, name=encoder.name,
                              trainable=encoder.trainable)
    pairs = _layer_pairs(encoder.embeddings, new_encoder.embeddings)
    pairs += _layer_pairs(encoder.pooler, new_encoder.pooler)
    if encoder.final_norm is not None:
        pairs += _layer_pairs(encoder.final_norm, new_encoder.final_norm)
    for new_block, source, heads in zip(new_encoder.encoder_blocks, source_blocks, head_positions):
        pairs += _layer_pairs(encoder.encoder_blocks[source], new_block, _head_slicer(
            encoder.encoder_blocks[source].attention, heads))
    _assign(pairs, new_encoder)
    if task is None:
        return new_encoder

    kwargs = task.get_config()
    kwargs.update(encoder=new_encoder, preprocessor=task.preprocessor)
    new_task = type(task)(**kwargs)
    if [type(layer) for layer in task.layers] != [type(layer) for layer in new_task.layers]:
        raise RuntimeError(f"the rebuilt {type(task).__name__} has other layers than the original")
    for old, new in zip(task.layers, new_task.layers):
        if old is not task.encoder:
            pairs += _layer_pairs(old, new)
    _assign(pairs, new_task)
    return new_task


def _head_slicer(attention, heads):
    """Array transform for a block's weights: the attention's per-head weights keep ``heads``."""
    owned = {id(variable) for variable in attention.weights}

    def transform(variable, value):
        axis = _HEADS_AXIS.get(variable.name)
        if heads is None or axis is None or id(variable) not in owned:
            return value
        return np.take(value, heads, axis=axis)

    return transform


def _layer_pairs(source, target, transform=lambda variable, value: value):
    """``[(target variable, value)]`` for two layers built alike (their weights in the same order)."""
    if len(source.weights) != len(target.weights):
        raise RuntimeError(f"{source.path} and {target.path} have different weights")
    return [(t, transform(s, keras.ops.convert_to_numpy(s)))
            for s, t in zip(source.weights, target.weights)]


def _assign(pairs, model):
    """Assigns every pair, after checking they cover all of ``model``'s weights with their shapes."""
    assigned = {id(variable) for variable, _ in pairs}
    missing = [v.path for v in model.weights if id(v) not in assigned]
    wrong = [f"{v.path}: {tuple(v.shape)} vs {value.shape}" for v, value in pairs
             if tuple(v.shape) != value.shape]
    if missing or wrong:
        raise RuntimeError(f"pruned copy of {model.name}: weights not copied {missing}, "
                           f"shape mismatches {wrong}")
    for variable, value in pairs:
        variable.assign(value)
