"""Process-wide test settings shared by every test folder."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_reset_policy():
    """Each test starts from the same seeds and the float32 policy, whatever the last one set."""
    keras.utils.set_random_seed(1234)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


def _random_bert_inputs(batch, length, vocab_size, seed=0, pad_from=None):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, vocab_size, size=(batch, length)).astype("int32")
    padding_mask = np.ones((batch, length), "int32")
    if pad_from is not None:
        for i, start in enumerate(pad_from):
            padding_mask[i, start:] = 0
            token_ids[i, start:] = 0
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros((batch, length), "int32"),
        "padding_mask": padding_mask,
    }


@pytest.fixture
def random_bert_inputs():
    """``make(batch, length, vocab_size, seed=0, pad_from=None)``: random encoder inputs with
    optional right padding (``pad_from[i]`` = first padded position of row i)."""
    return _random_bert_inputs
