"""One test harness for layers and models, after keras-hub's ``TestCase.run_layer_test`` /
``run_task_test`` / ``run_model_saving_test``.

A layer or model test states what the thing is (class, arguments, an input, the expected output
shape, the number of trainable weights) and the harness checks what every Keras object here must do:

1. **config round trip**: ``from_config(get_config())`` gives the same config, and the serialized
   object is JSON (what a ``.keras`` file stores);
2. **symbolic vs eager**: the output shapes of a call on ``keras.Input`` and on real data agree,
   and equal ``expected_output_shape``;
3. **trainable-weight count** equals ``expected_num_trainable_weights``;
4. **``.keras`` round trip**: save, load, identical outputs on the same input;
5. **one training step** (``GradientTape`` + Adam on a random regression target) changes every
   trainable weight -- a weight that never moves is a bug (unused, or cut off from the loss);
6. **mixed precision**: built with ``dtype="mixed_bfloat16"`` (and any other policies asked for),
   every sublayer carries the policy, every weight stays float32, float outputs come out in the
   compute dtype (or ``output_dtype``: logits heads return float32) and are finite.

Usage (layer)::

    from testlib import run_layer_test

    def test_feed_forward():
        run_layer_test(
            FeedForward,
            init_kwargs={"intermediate_size": 16},
            input_data=np.ones((2, 5, 8), "float32"),
            expected_output_shape=(2, 5, 8),
            expected_num_trainable_weights=4,
        )

``input_data`` is one array (passed positionally) or a dict (passed as keyword arguments, so
``{"x": ..., "padding_mask": ...}``); ``call_kwargs`` holds non-tensor call arguments
(``output_length=1``). Outputs may be any structure of tensors (dicts, tuples).

Usage (model or task)::

    run_model_test(
        BertClassifier,
        init_kwargs=lambda: {"encoder": BertEncoder(config), "num_classes": 3},
        input_data=inputs, expected_output_shape=(2, 3),
    )

For models ``init_kwargs`` may be a callable returning the arguments, so each check (the mixed
precision ones run under the global policy) gets fresh sublayers such as a new encoder. A model's
symbolic check calls it on ``keras.Input`` like any layer; its ``.keras`` check saves the model
itself. Turn a check off with ``run_training_check=False`` etc. when it does not apply, and say why
in the test.
"""

import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

DEFAULT_POLICIES = ("mixed_bfloat16",)


def _shapes(outputs):
    """The output shapes, in ``keras.tree.flatten`` order (dict keys sorted)."""
    return [tuple(t.shape) for t in keras.tree.flatten(outputs)]


def _expected_shapes(expected):
    """``(2, 3)``, ``((2, 3), (2, 3))`` or ``{"name": (2, 3)}`` as a list like ``_shapes``."""
    if isinstance(expected, dict):
        return [tuple(expected[name]) for name in sorted(expected)]
    if expected and isinstance(expected[0], (tuple, list)):
        return [tuple(shape) for shape in expected]
    return [tuple(expected)]


def _flat(outputs):
    return keras.tree.flatten(outputs)


def _as_inputs(input_data):
    """Symbolic ``keras.Input``(s) matching ``input_data`` with a free batch axis."""

    def one(array, name=None):
        array = np.asarray(array)
        return keras.Input(shape=array.shape[1:], dtype=str(array.dtype), name=name)

    if isinstance(input_data, dict):
        return {name: one(value, name) for name, value in input_data.items()}
    return one(input_data)


def _call(layer, inputs, call_kwargs):
    """A layer gets a dict of inputs as keyword arguments; a model takes the dict itself."""
    kwargs = dict(call_kwargs or {})
    if isinstance(inputs, dict) and not isinstance(layer, keras.Model):
        return layer(**inputs, **kwargs)
    return layer(inputs, **kwargs)


def _assert_same(actual, expected, atol, what):
    actual_flat, expected_flat = _flat(actual), _flat(expected)
    assert len(actual_flat) == len(expected_flat), what
    for a, b in zip(actual_flat, expected_flat):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=atol, err_msg=what
        )


def _check_config(obj):
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config, (clone.get_config(), config)
    json.dumps(keras.saving.serialize_keras_object(obj))  # what model.save writes
    return clone


def _check_shapes(layer, input_data, call_kwargs, expected_output_shape):
    symbolic = _call(layer, _as_inputs(input_data), call_kwargs)
    eager = _call(layer, input_data, call_kwargs)
    symbolic_shapes, eager_shapes = _shapes(symbolic), _shapes(eager)
    assert len(symbolic_shapes) == len(eager_shapes), (symbolic_shapes, eager_shapes)
    for s, e in zip(symbolic_shapes, eager_shapes):
        assert len(s) == len(e) and all(a is None or a == b for a, b in zip(s, e)), (
            f"symbolic output shape {s} does not match eager {e}"
        )
    if expected_output_shape is not None:
        expected = _expected_shapes(expected_output_shape)
        assert eager_shapes == expected, f"output shapes {eager_shapes}, expected {expected}"
    return eager


def _check_keras_file(model, input_data, atol):
    expected = model(input_data, training=False)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    _assert_same(loaded(input_data, training=False), expected, atol, ".keras round trip")
    return loaded


def _check_training_step(model, input_data, unused_weights=()):
    """One Adam step on a random regression target moves every trainable weight, but those whose
    path contains one of ``unused_weights`` (e.g. the pooler of a token classifier)."""
    outputs = model(input_data, training=True)
    rng = np.random.default_rng(0)
    targets = [rng.normal(size=tuple(t.shape)).astype("float32") for t in _flat(outputs)]
    with tf.GradientTape() as tape:
        outputs = _flat(model(input_data, training=True))
        loss = tf.add_n(
            [tf.reduce_mean(tf.square(tf.cast(o, "float32") - t)) for o, t in zip(outputs, targets)]
        )
    variables = model.trainable_variables
    assert variables, "nothing to train"
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.apply(tape.gradient(loss, variables), variables)
    frozen = [
        v.path for v, old in zip(variables, before)
        if np.array_equal(keras.ops.convert_to_numpy(v), old)
        and not any(part in v.path for part in unused_weights)
    ]
    assert not frozen, f"one training step left these weights unchanged: {frozen}"


def _check_precision(make, input_data, call_kwargs, policy, output_dtype, float32_layers=()):
    layer = make(policy)
    outputs = _call(layer, input_data, call_kwargs)
    compute = output_dtype or keras.mixed_precision.DTypePolicy(policy).compute_dtype
    for sublayer in layer._flatten_layers(include_self=True):
        if set(float32_layers) & set((sublayer.path or sublayer.name).split("/")):  # or inside it
            assert sublayer.dtype_policy.name == "float32", sublayer.path
            continue
        assert sublayer.dtype_policy.name == policy, (
            f"{sublayer.path or sublayer.name}: dtype policy {sublayer.dtype_policy.name}, expected {policy}"
        )
    for weight in layer.weights:
        assert weight.dtype == "float32", f"{weight.path} is {weight.dtype} under {policy}"
    for output in _flat(outputs):
        if keras.backend.is_float_dtype(output.dtype):
            assert keras.backend.standardize_dtype(output.dtype) == compute, (
                f"output dtype {output.dtype} under {policy}"
            )
            assert np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(output, "float32"))).all()


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    call_kwargs=None,
    run_saving_check=True,
    run_training_check=True,
    run_precision_checks=True,
    policies=DEFAULT_POLICIES,
    output_dtype=None,
    atol=1e-6,
):
    """Runs the checks of the module docstring on ``layer_cls(**init_kwargs)``.

    Returns:
        The layer (built and called on ``input_data``), for further assertions.
    """
    layer = layer_cls(**init_kwargs)
    _check_config(layer)
    _check_shapes(layer, input_data, call_kwargs, expected_output_shape)
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, [
            w.path for w in layer.trainable_weights
        ]
    _check_config(layer)  # and once built

    if run_saving_check or run_training_check:
        inputs = _as_inputs(input_data)
        model = keras.Model(inputs, _call(layer, inputs, call_kwargs))
        if run_saving_check:
            _check_keras_file(model, input_data, atol)
        if run_training_check:
            _check_training_step(model, input_data)
    if run_precision_checks:
        for policy in policies:
            _check_precision(
                lambda p: layer_cls(**{**init_kwargs, "dtype": p}),
                input_data, call_kwargs, policy, output_dtype,
            )
    return layer


def run_model_test(
    model_cls,
    init_kwargs,
    input_data,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    run_saving_check=True,
    run_training_check=True,
    run_precision_checks=True,
    policies=DEFAULT_POLICIES,
    output_dtype=None,
    float32_layers=(),
    unused_weights=(),
    atol=1e-5,
):
    """The same checks for a ``keras.Model`` (a backbone or a task) called on ``input_data``.

    ``init_kwargs`` is a dict or a callable returning one (fresh sublayers per check). The mixed
    precision checks build the model under the global dtype policy, as users do.
    ``float32_layers``: names of sublayers that are float32 on purpose (a logits layer);
    ``unused_weights``: weight path parts that no output depends on (the training check skips
    them), e.g. ``("pooler",)`` for a token classifier.

    Returns:
        The model, built and called on ``input_data``.
    """
    make_kwargs = init_kwargs if callable(init_kwargs) else (lambda: dict(init_kwargs))
    model = model_cls(**make_kwargs())
    _check_shapes(model, input_data, None, expected_output_shape)
    if expected_num_trainable_weights is not None:
        assert len(model.trainable_weights) == expected_num_trainable_weights, [
            w.path for w in model.trainable_weights
        ]
    _check_config(model)
    if run_saving_check:
        _check_keras_file(model, input_data, atol)
    if run_training_check:
        _check_training_step(model, input_data, unused_weights)
    if run_precision_checks:
        for policy in policies:

            def make(policy):
                keras.config.set_dtype_policy(policy)
                try:
                    return model_cls(**make_kwargs())
                finally:
                    keras.config.set_dtype_policy("float32")

            _check_precision(make, input_data, None, policy, output_dtype, float32_layers)
    return model
