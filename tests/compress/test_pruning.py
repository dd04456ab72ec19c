import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels import BertClassifier, BertConfig, BertEncoder, BertTokenClassifier
from tfmodels.compress.pruning import (
    head_importance,
    layer_importance,
    prune_by_importance,
    prune_heads,
    prune_layers,
)

TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=32,
            initializer_range=0.2)  # outputs of order 1, so each head visibly matters
PER_HEAD = ("query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
            "output_kernel")
HEADS_AXIS = {name: 0 if name.endswith("bias") or name == "output_kernel" else 1 for name in PER_HEAD}


def encoder(**overrides):
    return BertEncoder(BertConfig(**{**TINY, **overrides}))


def attention_weights(block):
    return {v.name: v.numpy() for v in block.attention.weights}


def zero_heads(model_encoder, heads):
    """Gates ``{layer: [heads]}`` to zero in place: their output-kernel slices become 0."""
    for layer, indices in heads.items():
        kernel = model_encoder.encoder_blocks[layer].attention.output_kernel
        value = kernel.numpy()
        value[indices] = 0.0
        kernel.assign(value)


def labelled(task, x, seed=0):
    rng = np.random.default_rng(seed)
    batch, length = x["token_ids"].shape
    if task is BertTokenClassifier:
        return x, rng.integers(0, 3, (batch, length)), x["padding_mask"].astype("float32")
    return x, rng.integers(0, 3, batch)


def test_config_pruned_heads_normalise_and_round_trip():
    config = BertConfig(**TINY, pruned_heads={"2": [3, 1, 1], 0: []})
    assert config.pruned_heads == {2: [1, 3]} and config.layer_num_heads(2) == 2
    # JSON turns the keys into strings; from_dict turns them back.
    assert BertConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    # Unpruned configs serialise exactly as before the field existed.
    assert "pruned_heads" not in BertConfig(**TINY).to_dict()
    assert BertConfig.from_dict(BertConfig(**TINY).to_dict()).pruned_heads == {}
    with pytest.raises(ValueError, match="remove the layer instead"):
        BertConfig(**TINY, pruned_heads={1: [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="layer 3"):
        BertConfig(**TINY, pruned_heads={3: [0]})
    with pytest.raises(ValueError, match="num_attention_heads=4"):
        BertConfig(**TINY, pruned_heads={0: [4]})


@pytest.mark.parametrize("task, norm_first", [(BertClassifier, False), (BertTokenClassifier, True)],
                         ids=["classifier-postLN", "token-classifier-preLN"])
def test_prune_heads_equals_the_zero_gated_original(task, norm_first, random_bert_inputs):
    model = task(encoder(norm_first=norm_first), num_classes=3)
    plan = {0: [1], 2: [3, 0]}
    pruned = prune_heads(model, plan)

    assert type(pruned) is task and pruned.encoder.config.pruned_heads == {0: [1], 2: [0, 3]}
    blocks, old_blocks = pruned.encoder.encoder_blocks, model.encoder.encoder_blocks
    assert [b.attention.num_heads for b in blocks] == [3, 4, 2]
    kept = {0: [0, 2, 3], 1: [0, 1, 2, 3], 2: [1, 2]}
    for layer, heads in kept.items():
        old, new = attention_weights(old_blocks[layer]), attention_weights(blocks[layer])
        assert new["query_kernel"].shape == (32, len(heads), 8)
        assert new["output_kernel"].shape == (len(heads), 8, 32)
        for name in PER_HEAD:
            np.testing.assert_array_equal(new[name], np.take(old[name], heads, HEADS_AXIS[name]))
        np.testing.assert_array_equal(new["output_bias"], old["output_bias"])
    for old, new in zip(old_blocks[0].feed_forward.weights, blocks[0].feed_forward.weights):
        np.testing.assert_array_equal(new.numpy(), old.numpy())
    np.testing.assert_array_equal(pruned.get_layer("logits").kernel.numpy(),
                                  model.get_layer("logits").kernel.numpy())

    x = random_bert_inputs(3, 10, 100, pad_from=[10, 7, 4])
    before = model.predict(x, verbose=0)
    zero_heads(model.encoder, plan)
    gated = model.predict(x, verbose=0)
    assert np.abs(gated - before).max() > 1e-2  # the pruned heads did matter
    np.testing.assert_allclose(pruned.predict(x, verbose=0), gated, atol=1e-5)


def test_prune_heads_again_counts_the_original_heads():
    base = encoder(num_hidden_layers=2)
    twice = prune_heads(prune_heads(base, {1: [0]}), {1: [2, 0]})  # head 0 is already gone
    once = prune_heads(base, {1: [0, 2]})
    assert twice.config.pruned_heads == once.config.pruned_heads == {1: [0, 2]}
    for a, b in zip(twice.weights, once.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="remove the layer instead"):
        prune_heads(twice, {1: [1, 3]})
    with pytest.raises(ValueError, match="head of layer 0 7"):
        prune_heads(base, {0: [7]})


def test_prune_layers_runs_the_kept_blocks(random_bert_inputs):
    base = prune_heads(encoder(), {2: [1]})
    pruned = prune_layers(base, [1])
    assert pruned.config.num_hidden_layers == 2 and pruned.config.pruned_heads == {1: [1]}
    for new, old in zip(pruned.encoder_blocks, [base.encoder_blocks[0], base.encoder_blocks[2]]):
        for a, b in zip(new.weights, old.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())

    x = random_bert_inputs(2, 9, 100, pad_from=[9, 5])
    h = base.embeddings(x["token_ids"], x["segment_ids"])
    for i in (0, 2):
        h = base.encoder_blocks[i](h, padding_mask=x["padding_mask"])
    out = pruned(x)
    np.testing.assert_allclose(out["sequence_output"], h, atol=1e-5)
    np.testing.assert_allclose(out["pooled_output"], base.pooler(h), atol=1e-5)
    with pytest.raises(ValueError, match="cannot drop all"):
        prune_layers(base, [0, 1, 2])


def test_pruned_classifier_saves_reloads_and_trains(random_bert_inputs, tmp_path):
    model = BertClassifier(encoder(), num_classes=3)
    pruned = prune_layers(prune_heads(model, {0: [0, 1], 1: [3]}), [2])
    config = pruned.encoder.get_config()
    assert config["config"]["pruned_heads"] == {0: [0, 1], 1: [3]}
    reread = json.loads(json.dumps(config))  # string keys, as in a .keras file
    assert BertEncoder.from_config(reread).get_config() == config

    x, y = labelled(BertClassifier, random_bert_inputs(8, 10, 100))
    path = str(tmp_path / "pruned.keras")
    pruned.save(path)
    loaded = keras.saving.load_model(path)
    assert [b.attention.num_heads for b in loaded.encoder.encoder_blocks] == [2, 3]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), pruned.predict(x, verbose=0))

    # The recovery fine-tune is an ordinary compile() and fit().
    before = loaded.encoder.encoder_blocks[0].attention.output_kernel.numpy()
    loaded.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = loaded.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(loaded.encoder.encoder_blocks[0].attention.output_kernel.numpy(), before)


def test_head_importance_is_the_per_example_gate_gradient(random_bert_inputs):
    model = BertClassifier(encoder(num_hidden_layers=2), num_classes=3)
    x, y = labelled(BertClassifier, random_bert_inputs(3, 8, 100, pad_from=[8, 6, 5]))
    scores = head_importance(model, [(x, y)], normalize=False)

    # Finite differences of an explicit gate: output_kernel[h] scaled by (1 +- eps), per example.
    per_example = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    eps, expected, batch_level = 1e-2, np.zeros((2, 4)), np.zeros((2, 4))
    for layer, block in enumerate(model.encoder.encoder_blocks):
        kernel = block.attention.output_kernel
        original = kernel.numpy()
        for head in range(4):
            losses = []
            for sign in (1, -1):
                gated = original.copy()
                gated[head] *= 1 + sign * eps
                kernel.assign(gated)
                losses.append(per_example(y, model(x, training=False)).numpy().astype("float64"))
            kernel.assign(original)
            gate_gradients = (losses[0] - losses[1]) / (2 * eps)
            expected[layer, head] = np.mean(np.abs(gate_gradients))
            batch_level[layer, head] = np.abs(np.mean(gate_gradients))
    np.testing.assert_allclose(scores, expected, rtol=2e-2, atol=1e-5)
    # |.| per example, not of the batch gradient (which the examples' signs partly cancel).
    assert np.abs(scores - batch_level).max() > 0.1 * scores.max()
    # The default scales each layer's row to unit L2 norm.
    normalized = head_importance(model, [(x, y)])
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(normalized, scores / np.linalg.norm(scores, axis=1, keepdims=True),
                               rtol=1e-6)


def test_head_importance_of_a_silenced_head_is_zero(random_bert_inputs):
    model = BertTokenClassifier(prune_heads(encoder(), {2: [2]}), num_classes=3)
    zero_heads(model.encoder, {0: [1]})
    data = tf.data.Dataset.from_tensor_slices(
        labelled(BertTokenClassifier, random_bert_inputs(6, 8, 100, pad_from=[8, 7, 6, 5, 8, 3]))
    ).batch(4)
    model.compile()  # the compiled loss is used (weighted per token)
    scores = head_importance(model, data)
    assert scores.shape == (3, 4)
    assert scores[0, 1] == 0.0 and np.isnan(scores[2, 2])
    present = ~np.isnan(scores)
    present[0, 1] = False
    assert (scores[present] > 0).all()
    one_batch = head_importance(model, data, steps=1)
    assert not np.allclose(one_batch[~np.isnan(one_batch)], scores[~np.isnan(scores)])


def test_layer_importance_of_an_identity_block_is_zero(random_bert_inputs):
    # A pre-LN block whose two residual branches output zero is the identity.
    model = BertClassifier(encoder(norm_first=True), num_classes=3)
    block = model.encoder.encoder_blocks[1]
    for variable in (block.attention.output_kernel, block.attention.output_bias,
                     *block.feed_forward.output_dense.weights):
        variable.assign(np.zeros(variable.shape, "float32"))
    data = [labelled(BertClassifier, random_bert_inputs(4, 8, 100, seed=s)) for s in range(2)]
    scores = layer_importance(model, data)
    assert scores.shape == (3,)
    assert abs(scores[1]) < 1e-6 and abs(scores[0]) > 1e-4 and abs(scores[2]) > 1e-4


def test_prune_by_importance_removes_the_lowest_heads_but_never_a_whole_layer(random_bert_inputs):
    model = BertClassifier(encoder(num_hidden_layers=2), num_classes=3)
    zero_heads(model.encoder, {0: [0, 1, 2, 3]})  # layer 0's heads all score 0
    data = [labelled(BertClassifier, random_bert_inputs(4, 8, 100))]
    scores = head_importance(model, data)

    pruned, plan = prune_by_importance(model, data, num_heads=4)
    lowest_of_layer_1 = int(np.argmin(scores[1]))
    assert plan.heads == {0: [0, 1, 2], 1: [lowest_of_layer_1]} and plan.layers == []
    np.testing.assert_allclose(plan.head_scores, scores)
    assert [b.attention.num_heads for b in pruned.encoder.encoder_blocks] == [1, 3]

    pruned, plan = prune_by_importance(model, data, num_heads=2, num_layers=1)
    dropped = int(np.argmin(plan.layer_scores))
    kept = 1 - dropped
    assert plan.layers == [dropped]
    assert plan.heads == {kept: sorted(np.argsort(scores[kept], kind="stable")[:2].tolist())}
    assert pruned.encoder.config.num_hidden_layers == 1
    assert pruned.encoder.encoder_blocks[0].attention.num_heads == 2
    with pytest.raises(ValueError, match="keeping one per layer"):
        prune_by_importance(model, data, num_heads=7)
