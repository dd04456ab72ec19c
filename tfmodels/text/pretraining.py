"""BERT pretraining data: documents -> NSP sentence pairs -> dynamically masked MLM examples.

The pipeline follows google-research/bert ``create_pretraining_data.py``:

1. documents are split into sentences and tokenized once;
2. each document is cut into chunks of consecutive sentences that fill the
   sequence; a chunk is split at a random sentence boundary into segment A and
   B. With probability ``random_next_rate`` B is replaced by text from a
   random other document (NSP label 1, "B is random", as in
   :class:`tfmodels.BertPretrainer`); otherwise B is the real continuation
   (label 0). A one-sentence chunk is split inside the sentence, so the label
   is always an unbiased coin flip;
3. the pair is packed into ``[CLS] A [SEP] B [SEP]`` (round-robin truncation,
   fixed ``sequence_length``);
4. masking is *dynamic*: it runs in the ``tf.data`` graph, so each epoch masks
   different tokens. ``mask_rate`` of the real tokens (never ``[CLS]``,
   ``[SEP]`` or padding; at least one, at most ``max_predictions``) are
   chosen; of those 80% become ``[MASK]``, 10% a random vocabulary token
   (never a special or ``[unusedN]`` token) and 10% stay unchanged. With
   ``whole_word_masking`` a word's ``##`` pieces are chosen together.

Elements are ``(x, y, sample_weight)`` with fixed shapes, ready for
``BertPretrainer.fit`` (also with ``jit_compile=True``)::

    x = {"token_ids", "segment_ids", "padding_mask": int32 [B, T],
         "masked_positions": int32 [B, P]}
    y = {"mlm_logits": int32 [B, P] original ids, "nsp_logits": int32 [B]}
    sample_weight = {"mlm_logits": float32 [B, P] (0 on unused slots),
                     "nsp_logits": float32 [B] ones}

Bad input, handled up front (never in the middle of a run):

* an empty (or whitespace-only) document is skipped and counted by default
  (``on_empty="skip"``); ``on_empty="error"`` raises ``ValueError`` naming it.
  A corpus with no usable text raises ``ValueError``;
* a document given as ``bytes`` that is not UTF-8 raises ``ValueError``
  naming the document (``read_documents`` names the file line);
* a vocabulary without ``[CLS]``/``[SEP]``/``[MASK]``/``[UNK]``/``[PAD]``
  is refused by :class:`BertTokenizer` with a ``ValueError`` listing them.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from tfmodels.text.packing import BertPacker

logger = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def split_sentences(text: str) -> list[str]:
    """Splits text into sentences: after ``.``, ``!`` or ``?`` and space, before a capital
    or digit. HTML line breaks (``<br />``, common in IMDB reviews) count as spaces."""
    text = _HTML_BREAK.sub(" ", text)
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def read_documents(path: str) -> list[str]:
    """Reads a text file with one sentence or paragraph per line and documents
    separated by blank lines (the format of BERT's ``create_pretraining_data``).

    Raises:
      ValueError: a line is not UTF-8 (the message names the line).
    """
    documents, current = [], []
    with tf.io.gfile.GFile(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise ValueError(f"{path!r} line {number} is not valid UTF-8: {err}") from None
            if line:
                current.append(line)
            elif current:
                documents.append(" ".join(current))
                current = []
    if current:
        documents.append(" ".join(current))
    return documents


def tokenize_documents(
    documents: Iterable[str | bytes], tokenizer, on_empty: str = "skip", batch_size: int = 2048
) -> list[list[list[int]]]:
    """Documents -> sentences -> token ids (``[document][sentence][token]``).

    Empty documents (and sentences that tokenize to nothing) are dropped; see
    the module docstring for ``on_empty``.
    """
    if on_empty not in ("skip", "error"):
        raise ValueError(f"on_empty must be 'skip' or 'error', got {on_empty!r}")
    sentences, owner, skipped = [], [], 0
    for index, document in enumerate(documents):
        if isinstance(document, bytes):
            try:
                document = document.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"document {index} is not valid UTF-8: {err}") from None
        if not isinstance(document, str):
            raise TypeError(f"document {index} is {type(document).__name__}, expected str")
        parts = split_sentences(document)
        if not parts:
            if on_empty == "error":
                raise ValueError(f"document {index} is empty (on_empty='error')")
            skipped += 1
            continue
        sentences += parts
        owner += [index] * len(parts)
    if skipped:
        logger.warning("skipped %d empty document(s)", skipped)
    if not sentences:
        raise ValueError("no text to pretrain on: every document is empty")
    ids: list[list[int]] = []
    for start in range(0, len(sentences), batch_size):
        ids += tokenizer(tf.constant(sentences[start : start + batch_size])).to_list()
    by_document: dict[int, list[list[int]]] = {}
    for document, sentence in zip(owner, ids):
        if sentence:
            by_document.setdefault(document, []).append(sentence)
    if not by_document:
        raise ValueError("no text to pretrain on: no document has any token")
    return list(by_document.values())


def sentence_pairs(
    documents: Sequence[Sequence[Sequence[int]]],
    sequence_length: int,
    random_next_rate: float = 0.5,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[list[int], list[int], int]]:
    """Yields ``(a_ids, b_ids, nsp_label)`` for one pass over tokenized documents
    (label 1: B is from a random other document). See the module docstring."""
    rng = rng or np.random.default_rng()
    target = sequence_length - 3
    order = rng.permutation(len(documents))
    for d in order:
        sentences = documents[d]
        i = 0
        while i < len(sentences):
            chunk, length = [], 0
            while i < len(sentences) and (not chunk or length < target):
                chunk.append(sentences[i])
                length += len(sentences[i])
                i += 1
            is_random = len(documents) > 1 and rng.random() < random_next_rate
            if len(chunk) == 1:
                tokens = list(chunk[0])
                if len(tokens) < 2 and not is_random:
                    continue  # a one-token document cannot be split
                cut = int(rng.integers(1, len(tokens))) if len(tokens) > 1 else 1
                a = tokens[:cut]
                b = tokens[cut:]
            else:
                cut = int(rng.integers(1, len(chunk)))
                a = [t for s in chunk[:cut] for t in s]
                b = [t for s in chunk[cut:] for t in s]
            if is_random:
                other = int(rng.integers(len(documents) - 1))
                other += other >= d
                others = documents[other]
                start = int(rng.integers(len(others)))
                b = [t for s in others[start:] for t in s][: max(target - len(a), target // 2)]
            yield a, b, int(is_random)


def special_and_continuation_ids(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """(ids a random replacement may use, bool "is a ## piece" per id)."""
    vocabulary = tokenizer.get_vocabulary()
    continuation = np.array([t.startswith("##") for t in vocabulary])
    bracketed = np.array([t.startswith("[") and t.endswith("]") for t in vocabulary])
    replacement = np.flatnonzero(~bracketed).astype(np.int32)
    if replacement.size == 0:
        raise ValueError("the vocabulary has no ordinary token to use as a random replacement")
    return replacement, continuation


def mask_tokens(
    inputs: dict,
    *,
    mask_id: int,
    special_ids: Sequence[int],
    replacement_ids,
    is_continuation=None,
    max_predictions: int = 20,
    mask_rate: float = 0.15,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
    whole_word_masking: bool = False,
    seed: int | None = None,
):
    """Dynamic MLM masking of a packed batch (graph ops; runs in ``tf.data``).

    Args:
      inputs: dict with int32 ``token_ids`` and ``padding_mask`` ``[B, T]``.
      special_ids: ids never masked (``[CLS]``, ``[SEP]``, ``[PAD]``...).
      replacement_ids: ids a "random token" replacement draws from.
      is_continuation: bool per vocabulary id (``##`` pieces); needed for
        ``whole_word_masking``.

    Returns:
      ``(masked_inputs, masked_positions [B,P], masked_ids [B,P], weights [B,P])``.
    """
    if whole_word_masking and is_continuation is None:
        raise ValueError("whole_word_masking needs is_continuation")
    token_ids = tf.convert_to_tensor(inputs["token_ids"], tf.int32)
    padding = tf.cast(inputs["padding_mask"], tf.bool)
    shape = tf.shape(token_ids)
    batch, length = shape[0], shape[1]
    candidate = padding
    for special in special_ids:
        candidate &= token_ids != special
    seeds = [None if seed is None else seed + k for k in range(4)]
    score = tf.random.uniform(shape, seed=seeds[0])
    positions = tf.broadcast_to(tf.range(length)[None, :], shape)
    if whole_word_masking:
        continuation = tf.gather(tf.constant(is_continuation, tf.bool), token_ids)
        word_start = candidate & ~continuation
        # A ## piece after [CLS]/[SEP] has no word start; it starts its own word.
        previous_candidate = tf.pad(candidate[:, :-1], [[0, 0], [1, 0]])
        word_start |= candidate & ~previous_candidate
        start_position = tf.where(word_start, positions, -1)
        start_position = tf.scan(tf.maximum, tf.transpose(start_position))  # running max over time
        start_position = tf.maximum(tf.transpose(start_position), 0)
        score = tf.gather(score, start_position, batch_dims=1)
    n_candidates = tf.reduce_sum(tf.cast(candidate, tf.int32), axis=1)
    budget = tf.cast(tf.round(tf.cast(n_candidates, tf.float32) * mask_rate), tf.int32)
    budget = tf.minimum(tf.maximum(budget, tf.minimum(n_candidates, 1)), max_predictions)
    # Candidates ordered by score (a word's pieces share a score and stay together).
    key = tf.where(candidate, score, 2.0)
    order = tf.argsort(key, axis=1, stable=True)
    rank = tf.argsort(order, axis=1, stable=True)
    chosen = candidate & (rank < budget[:, None])
    if whole_word_masking:
        # Drop a word cut by the budget: all of a word's pieces, or none.
        word = tf.cumsum(tf.cast(word_start, tf.int32), axis=1)
        row_offset = tf.range(batch)[:, None] * (length + 1)
        flat_word = tf.reshape(word + row_offset, [-1])
        segments = batch * (length + 1)
        word_len = tf.math.unsorted_segment_sum(tf.reshape(tf.cast(candidate, tf.int32), [-1]), flat_word, segments)
        word_chosen = tf.math.unsorted_segment_sum(tf.reshape(tf.cast(chosen, tf.int32), [-1]), flat_word, segments)
        complete = tf.reshape(tf.gather(tf.equal(word_len, word_chosen), flat_word), shape)
        chosen &= complete
    action = tf.random.uniform(shape, seed=seeds[1])
    replacement_ids = tf.constant(replacement_ids, tf.int32)
    random_index = tf.random.uniform(shape, maxval=tf.size(replacement_ids), dtype=tf.int32, seed=seeds[2])
    random_token = tf.gather(replacement_ids, random_index)
    new_ids = tf.where(action < mask_token_rate, mask_id, token_ids)
    new_ids = tf.where(
        (action >= mask_token_rate) & (action < mask_token_rate + random_token_rate), random_token, new_ids
    )
    new_ids = tf.where(chosen, new_ids, token_ids)
    masked_positions = tf.ragged.boolean_mask(positions, chosen)
    masked_ids = tf.ragged.boolean_mask(token_ids, chosen)
    out_shape = [None, max_predictions]
    masked = dict(inputs)
    masked["token_ids"] = new_ids
    return (
        masked,
        masked_positions.to_tensor(0, shape=out_shape),
        masked_ids.to_tensor(0, shape=out_shape),
        tf.ones_like(masked_ids, tf.float32).to_tensor(0.0, shape=out_shape),
    )


def pretraining_dataset(
    documents: Iterable[str | bytes],
    tokenizer,
    sequence_length: int = 128,
    max_predictions: int = 20,
    batch_size: int = 32,
    mask_rate: float = 0.15,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
    random_next_rate: float = 0.5,
    whole_word_masking: bool = False,
    repeat: bool = False,
    drop_remainder: bool = True,
    on_empty: str = "skip",
    seed: int | None = None,
) -> tf.data.Dataset:
    """``tf.data`` of BERT pretraining batches ``(x, y, sample_weight)`` from raw documents.

    Tokenization happens once here; sentence pairing (NSP) is redrawn on every
    pass over the data and masking on every batch (dynamic masking). See the
    module docstring for the format and the handling of bad input.
    """
    if not 0.0 < mask_rate < 1.0:
        raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate}")
    if mask_token_rate + random_token_rate > 1.0 or min(mask_token_rate, random_token_rate) < 0:
        raise ValueError("mask_token_rate + random_token_rate must be within [0, 1]")
    if sequence_length < 5:
        raise ValueError(f"sequence_length must be at least 5, got {sequence_length}")
    tokenized = tokenize_documents(documents, tokenizer, on_empty=on_empty)
    replacement, continuation = special_and_continuation_ids(tokenizer)
    epoch = [0]

    def generate():
        rng = np.random.default_rng(None if seed is None else seed + epoch[0])
        epoch[0] += 1
        for a, b, label in sentence_pairs(tokenized, sequence_length, random_next_rate, rng):
            yield np.asarray(a, np.int32), np.asarray(b, np.int32), np.int32(label)

    signature = (
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([], tf.int32),
    )
    packer = BertPacker(
        sequence_length, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    )
    specials = sorted({tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id})

    def to_example(a, b, label):
        packed = packer((a, b))
        masked, positions, ids, weights = mask_tokens(
            packed,
            mask_id=tokenizer.mask_token_id,
            special_ids=specials,
            replacement_ids=replacement,
            is_continuation=continuation,
            max_predictions=max_predictions,
            mask_rate=mask_rate,
            mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate,
            whole_word_masking=whole_word_masking,
            seed=seed,
        )
        x = dict(masked, masked_positions=positions)
        y = {"mlm_logits": ids, "nsp_logits": label}
        sample_weight = {"mlm_logits": weights, "nsp_logits": tf.ones_like(label, tf.float32)}
        return x, y, sample_weight

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.shuffle(4 * batch_size, seed=seed)
    dataset = dataset.ragged_batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
