"""WordPiece vocabularies: reading ``vocab.txt`` files and learning new ones."""

from __future__ import annotations

import collections
from typing import Iterable, Sequence

import tensorflow as tf

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)


def load_vocabulary(path: str) -> list[str]:
    """Reads a BERT ``vocab.txt``: one token per line, the id is the line number.

    As in BERT's ``load_vocab`` (and HF ``tokenizers``), each line is stripped
    of surrounding whitespace and the final newline does not add a token.

    Raises:
      ValueError: the file is not UTF-8 (names the line) or is empty.
    """
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    tokens = []
    for number, line in enumerate(lines, start=1):
        try:
            tokens.append(line.decode("utf-8").strip())
        except UnicodeDecodeError as err:
            raise ValueError(
                f"Vocabulary file {path!r} is not valid UTF-8 at line {number}: {err}"
            ) from None
    if not tokens:
        raise ValueError(f"Vocabulary file {path!r} is empty.")
    return tokens


def check_special_tokens(vocabulary: Sequence[str], required: Iterable[str]) -> None:
    """Raises ValueError naming every required special token the vocabulary lacks."""
    present = set(vocabulary)
    missing = [t for t in required if t not in present]
    if missing:
        raise ValueError(
            f"The vocabulary ({len(vocabulary)} tokens) lacks the special token(s) "
            f"{', '.join(missing)}; BERT tokenization and packing need them."
        )


def token_index(vocabulary: Sequence[str]) -> dict[str, int]:
    """Token -> id. A token listed twice maps to its last line, as in BERT/HF."""
    return {token: i for i, token in enumerate(vocabulary)}


def learn_vocabulary(
    texts: Iterable[str] | tf.data.Dataset,
    vocabulary_size: int,
    lowercase: bool = True,
    reserved_tokens: Sequence[str] = SPECIAL_TOKENS,
    batch_size: int = 256,
    min_count: int = 10,
) -> list[str]:
    """Learns a WordPiece vocabulary from a corpus (offline).

    Words are counted with exactly the normalization and splitting of
    :class:`~tfmodels.text.BertTokenizer`, then tensorflow-text's WordPiece
    learner (the one behind ``bert_vocab_from_dataset``) picks the pieces. Only
    this function needs ``tensorflow_text``; tokenizers built from the result
    do not.

    Args:
      texts: strings, or a ``tf.data.Dataset`` of scalar strings.
      vocabulary_size: approximate size of the learned vocabulary.
      lowercase: must match the tokenizer that will use the vocabulary.
      reserved_tokens: put first, in this order (``[PAD]`` gets id 0).
      batch_size: texts normalized per step.
      min_count: lowest piece frequency the learner's threshold search tries.

    Returns:
      The tokens; write them one per line to get a ``vocab.txt``.
    """
    from tensorflow_text.tools.wordpiece_vocab import (  # offline only
        wordpiece_tokenizer_learner_lib as learner,
    )

    from tfmodels.text.normalization import Normalizer, split_words

    if isinstance(texts, tf.data.Dataset):
        dataset = texts
    else:
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string))
    normalizer = Normalizer(lowercase=lowercase)
    counts: collections.Counter = collections.Counter()
    split = tf.function(lambda batch: split_words(batch, normalizer).strings)
    for batch in dataset.batch(batch_size):
        counts.update(w.decode("utf-8") for w in split(batch).numpy())
    return learner.learn(
        dict(counts),
        vocab_size=vocabulary_size,
        reserved_tokens=list(reserved_tokens),
        lower_thresh=min_count,
        joiner="##",
    )
