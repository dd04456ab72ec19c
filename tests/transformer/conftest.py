"""Fixtures for the translation Transformer tests: tiny models, a toy copy task, the Bible corpus."""

import keras
import numpy as np
import pytest

from tfmodels.datasets import bible
from tfmodels.models.transformer import (
    InverseSqrtWarmup,
    LabelSmoothedCrossEntropy,
    Seq2SeqTransformer,
    masked_accuracy,
)

PAD, START, END = 0, 1, 2
VOCAB = 24
COPY_LENGTH = 8


@pytest.fixture
def make_model():
    """``make(**overrides)``: a small, dropout-free Seq2SeqTransformer."""

    def make(**overrides):
        config = dict(
            source_vocab_size=VOCAB,
            hidden_size=32,
            num_heads=4,
            intermediate_size=64,
            num_encoder_layers=2,
            num_decoder_layers=2,
            dropout=0.0,
            max_source_length=16,
            max_target_length=16,
            pad_id=PAD,
            start_id=START,
            end_id=END,
        )
        config.update(overrides)
        model = Seq2SeqTransformer(**config)
        model.build()
        return model

    return make


def _random_ids(batch, length, seed=0, pad_from=None):
    ids = np.random.default_rng(seed).integers(3, VOCAB, size=(batch, length)).astype("int32")
    for i, start in enumerate(pad_from or []):
        ids[i, start:] = PAD
    return ids


@pytest.fixture
def random_ids():
    """``make(batch, length, seed=0, pad_from=None)``: ids in ``[3, VOCAB)`` (no special
    tokens), row ``i`` right-padded from ``pad_from[i]``."""
    return _random_ids


def _copy_task(n, seed):
    """Sources of 3..8 random tokens; the target is the source itself, then END."""
    rng = np.random.default_rng(seed)
    source = np.zeros((n, COPY_LENGTH), "int32")
    target_in = np.zeros((n, COPY_LENGTH + 1), "int32")
    labels = np.zeros((n, COPY_LENGTH + 1), "int32")
    for i, length in enumerate(rng.integers(3, COPY_LENGTH + 1, n)):
        tokens = rng.integers(3, VOCAB, length)
        source[i, :length] = tokens
        target_in[i, 0], target_in[i, 1 : length + 1] = START, tokens
        labels[i, :length], labels[i, length] = tokens, END
    return source, target_in, labels


@pytest.fixture(scope="session")
def copy_model():
    """A 1+1-layer model trained (jit-compiled fit) on the copy task until it copies; ~30 s."""
    keras.utils.set_random_seed(7)
    model = Seq2SeqTransformer(
        VOCAB, hidden_size=32, num_heads=2, intermediate_size=64, num_encoder_layers=1,
        num_decoder_layers=1, dropout=0.0, max_source_length=COPY_LENGTH,
        max_target_length=COPY_LENGTH + 1, pad_id=PAD, start_id=START, end_id=END,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(InverseSqrtWarmup(32, 200, scale=0.5), beta_2=0.98),
        loss=LabelSmoothedCrossEntropy(0.1, pad_id=PAD),
        metrics=[masked_accuracy],
        jit_compile=True,
    )
    source, target_in, labels = _copy_task(3072, seed=0)
    history = model.fit(
        {"source_ids": source, "target_ids": target_in}, labels, batch_size=32, epochs=4, verbose=0
    )
    model.history_ = history.history
    return model


@pytest.fixture(scope="session")
def copy_examples():
    """Held-out copy-task examples: ``(source, target_in, labels)``."""
    return _copy_task(64, seed=1)


@pytest.fixture(scope="session")
def bible_pairs():
    reason = bible.missing_reason()
    if reason:
        pytest.skip(f"English-Spanish Bible corpus unavailable: {reason}")
    return bible.load_verse_pairs()
