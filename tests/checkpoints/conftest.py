"""Fixtures of the Llama import tests: one tiny byte-level BPE and random weights that fit it."""

import pytest
from checkpoints.llama_files import TINY, tiny_tokenizer
from models.llama_reference import random_llama_weights


@pytest.fixture(scope="package")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="package")
def weights(tokenizer):
    return random_llama_weights(vocab_size=tokenizer.get_vocab_size(), seed=3, **TINY)
