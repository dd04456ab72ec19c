"""The harness itself: each check fails on a layer that breaks its rule."""

import keras
import numpy as np
import pytest
from testlib import run_layer_test

from tfmodels.layers import Dense

X = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")


@keras.saving.register_keras_serializable(package="tfmodels_harness_test")
class _DropsActivation(Dense):
    def get_config(self):
        config = super().get_config()
        del config["activation"]  # the reloaded layer is linear
        return config


@keras.saving.register_keras_serializable(package="tfmodels_harness_test")
class _UnusedWeight(Dense):
    def build(self, shape):
        super().build(shape)
        self.extra = self.add_weight(name="extra", shape=(3,))


@keras.saving.register_keras_serializable(package="tfmodels_harness_test")
class _Float32Sublayer(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = Dense(2, dtype="float32")  # ignores the outer policy

    def call(self, x):
        return self.inner(x)


@keras.saving.register_keras_serializable(package="tfmodels_harness_test")
class _WrongSymbolicShape(Dense):
    def compute_output_spec(self, x):
        return keras.KerasTensor(tuple(x.shape[:-1]) + (self.units + 1,), dtype=self.compute_dtype)


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (_DropsActivation, {"units": 2, "activation": "relu"}, ".keras round trip"),
        (_UnusedWeight, {"units": 2}, "unchanged.*extra"),
        (_Float32Sublayer, {}, "dtype policy float32, expected mixed_bfloat16"),
        (_WrongSymbolicShape, {"units": 2}, "symbolic output shape"),
    ],
)
def test_each_check_catches_its_defect(cls, kwargs, message):
    with pytest.raises(AssertionError, match=message):
        run_layer_test(cls, kwargs, X)


def test_expected_shape_and_weight_count_are_checked():
    run_layer_test(Dense, {"units": 2}, X, expected_output_shape=(2, 3, 2),
                   expected_num_trainable_weights=2)
    with pytest.raises(AssertionError, match="expected"):
        run_layer_test(Dense, {"units": 2}, X, expected_output_shape=(2, 3, 5))
    with pytest.raises(AssertionError):
        run_layer_test(Dense, {"units": 2}, X, expected_num_trainable_weights=3)
