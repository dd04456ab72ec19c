"""Aligning token-classification data to word pieces, windowing long texts, and decoding entities.

Two training forms are aligned (``align_word_tags``, ``align_char_spans``):

- *words with one tag each* (CoNLL; BIO / IOB2 / BIOES, any tag set): each word is tokenized on its own;
  the text is the words joined by single spaces (the offsets refer to that text);
- *raw text with character spans* ``[(start, end, type)]``: the text is tokenized with offsets; a BERT
  word (a whitespace/punctuation-delimited unit) overlapping a span gets the span's tag, ``B-``/``I-``
  (or ``S-``/``B-``/``I-``/``E-`` when the tag set is BIOES).

Either way the label sits on a word's first piece; its other pieces, ``[CLS]``, ``[SEP]`` and padding
carry ``IGNORE`` (no loss, no metric). A word is a BERT word (split at whitespace and punctuation), the
unit decoding reads: a given word such as ``"don't"`` holds three, the later ones continuing its tag. Texts longer than one window are split into overlapping windows
(``tfmodels.text.windows``); every window is a training row, so no entity is lost to truncation.

Inference (``text_pieces``, ``pack_windows``, ``decode_entities``) is core TensorFlow only, so the Python
``BertTokenClassifier.predict_entities`` and the exported ``extract_entities`` signature run the same
code. Each word is scored in the window where it has the most context; a word's tag is its first piece's
most probable tag; entities are chunked with conlleval's rules (``tfmodels.metrics.tag_chunks``), which
is also the one repair rule for invalid sequences: an ``I-X`` (or ``E-X``) that does not continue an
``X`` entity starts a new one. An entity's score is the mean probability of its words' tags.
"""

import numpy as np
import tensorflow as tf

from tfmodels.text.windows import best_window, num_windows

IGNORE = -1
_PREFIXES = {"O": 0, "B": 1, "I": 2, "E": 3, "S": 4}


def _quote(text, limit=60):
    text = text if isinstance(text, str) else repr(text)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def check_tags(tags):
    """Validates a tag set (``"O"`` plus ``B-``/``I-``/``E-``/``S-`` tags); returns ``(prefix, type)``
    code arrays and the sorted type names."""
    tags = list(tags)
    if len(set(tags)) != len(tags) or "O" not in tags:
        raise ValueError(f"tags must be distinct and include 'O', got {tags}")
    bad = [t for t in tags if t != "O" and (t[:2] not in ("B-", "I-", "E-", "S-") or len(t) < 3)]
    if bad:
        raise ValueError(f"tags must be 'O' or B-/I-/E-/S- followed by a type, got {bad}")
    types = sorted({t[2:] for t in tags if t != "O"})
    prefix = np.array([_PREFIXES[t[0]] if t != "O" else 0 for t in tags], np.int64)
    type_id = np.array([types.index(t[2:]) if t != "O" else -1 for t in tags], np.int64)
    return prefix, type_id, types


def text_pieces(tokenizer, texts):
    """Word pieces of each text with *character* offsets: dict of ragged ``[batch, (pieces)]`` --
    ``ids`` (int32), ``start`` / ``end`` (int64 Unicode character offsets, end exclusive) and
    ``initial`` (bool: the piece starts a word)."""
    texts = tf.convert_to_tensor(texts, tf.string)
    ids, byte_start, byte_end = tokenizer.tokenize_with_offsets(texts)
    _, char_bytes = tf.strings.unicode_decode_with_offsets(texts, "UTF-8", errors="replace")
    # Byte offset -> character index: its rank among the characters' first bytes (a sentinel column
    # keeps every row non-empty and past every byte).
    big = tf.int64.max
    sorted_bytes = tf.concat([char_bytes.to_tensor(big), tf.fill([tf.shape(texts)[0], 1], big)], 1)
    lengths = ids.row_lengths()

    def to_chars(byte_offsets):
        dense = tf.cast(byte_offsets, tf.int64).to_tensor(0)
        chars = tf.searchsorted(sorted_bytes, dense, side="left", out_type=tf.int64)
        return tf.RaggedTensor.from_tensor(chars, lengths=lengths)

    continuation = tf.constant(
        [token.startswith("##") for token in tokenizer.get_vocabulary()], tf.bool
    )
    return {
        "ids": ids,
        "start": to_chars(byte_start),
        "end": to_chars(byte_end),
        "initial": tf.logical_not(tf.gather(continuation, ids)),
    }


def pack_windows(values, sequence_length, stride, cls_value, sep_value, pad_value):
    """Overlapping windows of ``sequence_length - 2`` pieces, each as ``[CLS] pieces [SEP] pad...``.

    Args:
        values: ragged ``[batch, (pieces)]`` (piece ids, or labels).
        stride: step between window starts, in pieces.
        cls_value, sep_value, pad_value: what goes in the special and padding positions.

    Returns:
        ``(rows, window_text, padding_mask)``: int ``[num_windows, sequence_length]``, the text each
        window comes from ``[num_windows]`` (int64), int32 mask of real positions (specials included).
    """
    size = sequence_length - 2
    lengths = values.row_lengths()
    count = num_windows(lengths, size, stride)
    window_text = tf.repeat(tf.range(tf.size(lengths, out_type=tf.int64)), count)
    start = tf.ragged.range(count).flat_values * stride
    position = start[:, None] + tf.range(size, dtype=tf.int64)[None, :]
    inside = position < tf.gather(lengths, window_text)[:, None]
    flat = tf.gather(values.row_splits, window_text)[:, None] + position
    flat = tf.where(inside, flat, 0)
    pieces = tf.where(inside, tf.gather(tf.concat([values.flat_values, [pad_value]], 0), flat),
                      tf.cast(pad_value, values.dtype))
    used = tf.reduce_sum(tf.cast(inside, tf.int64), axis=1)
    column = tf.range(sequence_length, dtype=tf.int64)[None, :]
    rows = tf.concat([tf.fill([tf.size(used), 1], tf.cast(cls_value, values.dtype)), pieces,
                      tf.fill([tf.size(used), 1], tf.cast(pad_value, values.dtype))], 1)
    rows = tf.where(column == used[:, None] + 1, tf.cast(sep_value, values.dtype), rows)
    return rows, window_text, tf.cast(column < used[:, None] + 2, tf.int32)


def decode_entities(texts, pieces, logits, window_text, sequence_length, stride, tags):
    """Entities of each text from the windows' logits.

    Args:
        texts: the 1-D string batch ``pieces`` came from.
        pieces: ``text_pieces(tokenizer, texts)``.
        logits: float ``[num_windows, sequence_length, len(tags)]`` for ``pack_windows``' rows.
        window_text: from ``pack_windows``.
        tags: the tag names, index = class id.

    Returns:
        dict of ragged ``[batch, (entities)]``: ``text``, ``type`` (strings), ``start``, ``end``
        (int64 character offsets, ``text[start:end]`` is the entity), ``score`` (float32).
    """
    prefix_of, type_of, types = check_tags(tags)
    prefix_of, type_of = tf.constant(prefix_of), tf.constant(type_of)
    texts = tf.convert_to_tensor(texts, tf.string)
    size = sequence_length - 2
    ids = pieces["ids"]
    lengths = ids.row_lengths()
    text_of_piece = ids.value_rowids()
    position = tf.ragged.range(lengths).flat_values
    window = best_window(position, tf.gather(lengths, text_of_piece), size, stride)
    first_window = tf.concat([[0], tf.cumsum(num_windows(lengths, size, stride))], 0)
    row = tf.gather(first_window, text_of_piece) + window
    column = position - window * stride + 1
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
    piece_probs = tf.gather_nd(probabilities, tf.stack([row, column], axis=1))  # [pieces, tags]
    # Words: a word's tag comes from its first piece; it ends where its last piece ends.
    initial = pieces["initial"].flat_values
    word_of_piece = tf.cumsum(tf.cast(initial, tf.int64)) - 1
    num_words = tf.reduce_sum(tf.cast(initial, tf.int64))
    word_text = tf.boolean_mask(text_of_piece, initial)
    word_start = tf.boolean_mask(pieces["start"].flat_values, initial)
    word_end = tf.math.unsorted_segment_max(pieces["end"].flat_values, word_of_piece, num_words)
    word_probs = tf.boolean_mask(piece_probs, initial)
    tag = tf.argmax(word_probs, axis=-1)
    score = tf.reduce_max(word_probs, axis=-1)
    prefix, type_ = tf.gather(prefix_of, tag), tf.gather(type_of, tag)
    # conlleval: a word continues the previous word's entity only after B/I, as I/E of the same type.
    same_text = tf.concat([[False], word_text[1:] == word_text[:-1]], 0)
    prev_prefix = tf.concat([[0], prefix[:-1]], 0)
    prev_type = tf.concat([[-1], type_[:-1]], 0)
    continues = (same_text & ((prev_prefix == 1) | (prev_prefix == 2))
                 & ((prefix == 2) | (prefix == 3)) & (prev_type == type_))
    in_entity = prefix != 0
    begins = in_entity & tf.logical_not(continues)
    entity_of_word = tf.cumsum(tf.cast(begins, tf.int64)) - 1
    members = tf.where(in_entity)[:, 0]
    member_entity = tf.gather(entity_of_word, members)
    num_entities = tf.reduce_sum(tf.cast(begins, tf.int64))
    first = tf.where(begins)[:, 0]
    last = tf.math.unsorted_segment_max(members, member_entity, num_entities)
    entity_text_index = tf.gather(word_text, first)
    start = tf.gather(word_start, first)
    end = tf.gather(word_end, last)
    entity_score = tf.math.unsorted_segment_mean(tf.gather(score, members), member_entity,
                                                 num_entities)
    # Each entity's characters, gathered from the texts' code points: work in proportion to the entities'
    # lengths (a substr of the gathered text copied the whole text per entity and scanned it from its start:
    # quadratic in the text's length).
    chars = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
    first_char = tf.gather(chars.row_splits, entity_text_index) + start
    surface = tf.strings.unicode_encode(
        tf.gather(chars.flat_values, tf.ragged.range(first_char, first_char + end - start)), "UTF-8")
    names = tf.constant(types + [""], tf.string)
    entity_type = tf.gather(names, tf.gather(type_, first))
    per_text = tf.math.bincount(tf.cast(entity_text_index, tf.int32), minlength=tf.size(texts),
                                maxlength=tf.size(texts), dtype=tf.int64)
    splits = tf.concat([[0], tf.cumsum(per_text)], 0)
    ragged = lambda t: tf.RaggedTensor.from_row_splits(t, splits, validate=False)  # noqa: E731
    return {"text": ragged(surface), "type": ragged(entity_type), "start": ragged(start),
            "end": ragged(end), "score": ragged(entity_score)}


def word_tags_from_entities(words, entity_start, entity_end, entity_type):
    """Entities found on ``" ".join(words)`` -> one BIO tag per given word, in core TF ops.

    A word overlapping an entity takes its type: ``B-`` on the entity's first word, ``I-`` after; a word
    overlapping several takes the first. This is how entities are scored against word-level gold tags.

    Args:
        words: string ``RaggedTensor`` ``[batch, (words)]``.
        entity_start, entity_end: int ``RaggedTensor`` ``[batch, (entities)]``, character offsets into
            the joined words (``decode_entities``' ``start`` / ``end``).
        entity_type: string ``RaggedTensor`` ``[batch, (entities)]``.

    Returns:
        string ``RaggedTensor`` ``[batch, (words)]`` of tags.
    """
    lengths = tf.strings.length(words, unit="UTF8_CHAR").to_tensor(-1)  # -1: no word
    real = lengths >= 0
    ends = tf.cumsum(tf.where(real, lengths + 1, 0), axis=1) - 1  # a space after each word
    starts = ends - tf.maximum(lengths, 0)
    # One extra column that overlaps nothing keeps the entity axis non-empty for argmax.
    pad = lambda t, value: tf.concat([t.to_tensor(value), tf.fill([tf.shape(lengths)[0], 1], value)], 1)  # noqa: E731
    e_start = tf.cast(pad(entity_start, tf.cast(-1, entity_start.dtype)), tf.int32)[:, None, :]
    e_end = tf.cast(pad(entity_end, tf.cast(-1, entity_end.dtype)), tf.int32)[:, None, :]
    overlaps = (starts[:, :, None] < e_end) & (ends[:, :, None] > e_start) & real[:, :, None]
    has_entity = tf.reduce_any(overlaps, axis=2)
    entity = tf.argmax(tf.cast(overlaps, tf.int32), axis=2, output_type=tf.int32)  # the first one
    # An entity's first word: the smallest word index overlapping it.
    word_index = tf.range(tf.shape(overlaps)[1])[None, :, None]
    first_word = tf.reduce_min(tf.where(overlaps, word_index, tf.int32.max), axis=1)  # [batch, entities]
    is_first = tf.equal(tf.gather(first_word, entity, batch_dims=1), tf.range(tf.shape(overlaps)[1])[None])
    types = tf.gather(pad(entity_type, ""), entity, batch_dims=1)
    tags = tf.where(has_entity, tf.strings.join([tf.where(is_first, "B-", "I-"), types]), "O")
    return tf.RaggedTensor.from_tensor(tags, lengths=words.row_lengths())


def word_tags_from_char_spans(texts, span_start, span_end, span_type):
    """Texts with character spans -> their whitespace-separated words and one BIO tag per word, in core TF ops.

    The spans' offsets (Unicode characters of each text, end exclusive) are moved onto ``" ".join(words)``
    (whitespace runs become one space), then tagged as ``word_tags_from_entities`` does: a word overlapping a
    span takes its type, ``B-`` on the span's first word.

    Args:
        texts: string ``[batch]``.
        span_start, span_end: int ``RaggedTensor`` ``[batch, (spans)]``.
        span_type: string ``RaggedTensor`` ``[batch, (spans)]``.

    Returns:
        ``(words, tags)``: string ``RaggedTensor``s ``[batch, (words)]``.

    Example:
    >>> words, tags = word_tags_from_char_spans(
    ...     tf.constant(["  Anna  lives in New York."]), tf.ragged.constant([[2, 17]]),
    ...     tf.ragged.constant([[6, 26]]), tf.ragged.constant([["person", "loc"]]))
    >>> [t.decode() for t in tags[0].numpy()]
    ['B-person', 'O', 'O', 'B-loc', 'I-loc']
    """
    chars = tf.strings.unicode_split(texts, "UTF-8")
    space = tf.strings.regex_full_match(chars.flat_values, r"\s")
    # A character survives the join unless it is whitespace after whitespace or before the first word;
    # counting the survivors before an offset moves it onto the joined text.
    previous_space = tf.concat([[True], space[:-1]], 0)
    first_of_row = tf.scatter_nd(chars.row_starts()[:, None], tf.ones_like(chars.row_starts(), tf.bool),
                                 tf.shape(space, out_type=tf.int64))
    seen_word = tf.RaggedTensor.from_row_splits(tf.cast(~space, tf.int32), chars.row_splits)
    seen_word = tf.cumsum(seen_word.to_tensor(), axis=1)
    seen_word = tf.RaggedTensor.from_tensor(seen_word, lengths=chars.row_lengths()).flat_values > 0
    kept = ~space | (~(previous_space | first_of_row) & seen_word)
    kept = tf.cast(kept, tf.int64)
    before = tf.concat([[0], tf.cumsum(kept)], 0)  # survivors before each flat position

    def moved(offsets):
        offsets = tf.cast(offsets, tf.int64)
        rows = offsets.value_rowids()
        row_start = tf.gather(chars.row_splits, rows)
        flat = row_start + tf.clip_by_value(offsets.flat_values, 0, tf.gather(chars.row_lengths(), rows))
        return offsets.with_flat_values(tf.gather(before, flat) - tf.gather(before, row_start))

    words = tf.strings.split(texts)
    return words, word_tags_from_entities(words, moved(span_start), moved(span_end), span_type)


# -- training-data alignment (Python; labels are not needed in a graph) ---------------------------


def _tag_index(tags):
    check_tags(tags)
    return {t: i for i, t in enumerate(tags)}


def _sub_word_tags(tag, count, index):
    """Tag ids for the ``count`` BERT words of one whitespace word tagged ``tag`` ("don't" is "don",
    "'", "t"): they form one entity (``B-X I-X ...``, BIOES ``S-X`` -> ``B-X ... E-X``) or stay ``O``,
    as decoding reads them. If the tag set lacks a tag that needs, only the first is labelled."""
    if count == 1:
        return [index[tag]]
    prefix, _, kind = tag.partition("-")
    parts = {"O": ["O"] * count,
             "B": [f"B-{kind}"] + [f"I-{kind}"] * (count - 1),
             "I": [f"I-{kind}"] * count,
             "S": [f"B-{kind}"] + [f"I-{kind}"] * (count - 2) + [f"E-{kind}"],
             "E": [f"I-{kind}"] * (count - 1) + [f"E-{kind}"]}[prefix]
    if all(part in index for part in parts):
        return [index[part] for part in parts]
    return [index[tag]] + [IGNORE] * (count - 1)


def align_word_tags(tokenizer, sentences, tag_sequences, tags):
    """Words with one tag each -> ``(texts, piece_ids, piece_labels)``.

    Args:
        sentences: list of word lists. tag_sequences: one tag per word. tags: the tag set.

    Returns:
        ``texts`` (the words joined by spaces) and two ragged ``[batch, (pieces)]`` int32 tensors: the
        piece ids and their labels (the tag id on each word's first piece, ``IGNORE`` elsewhere).
        A word that yields no piece (e.g. only control characters) becomes one ``[UNK]``. A word that
        holds several BERT words (``"don't"``, ``"@anna"``: punctuation splits them) labels the first
        piece of each, continuing its tag (``B-X`` -> ``B-X I-X``; ``O`` -> ``O O``), because decoding
        reads a tag at every BERT word's first piece.
    """
    index = _tag_index(tags)
    if len(sentences) != len(tag_sequences):
        raise ValueError(f"{len(sentences)} sentences but {len(tag_sequences)} tag sequences")
    flat_words = []
    for i, (words, word_tags) in enumerate(zip(sentences, tag_sequences)):
        if isinstance(words, str):
            raise TypeError(f"sentence {i} is one string; give a list of words (or use char spans)")
        if len(words) != len(word_tags):
            raise ValueError(f"sentence {i} ({_quote(' '.join(map(str, words)))}): "
                             f"{len(words)} words but {len(word_tags)} tags")
        for word, tag in zip(words, word_tags):
            if not isinstance(word, str):
                raise TypeError(f"sentence {i}: word {word!r} is not a string")
            if tag not in index:
                raise ValueError(f"sentence {i} ({_quote(' '.join(words))}): tag {tag!r} is not "
                                 f"in the tag set {list(tags)}")
        flat_words += words
    pieces = tokenizer.tokenize(tf.constant(flat_words, tf.string)).to_list() if flat_words else []
    continuation = {i for i, token in enumerate(tokenizer.get_vocabulary()) if token.startswith("##")}
    ids, labels, cursor = [], [], 0
    for words, word_tags in zip(sentences, tag_sequences):
        row_ids, row_labels = [], []
        for word_pieces, tag in zip(pieces[cursor: cursor + len(words)], word_tags):
            word_pieces = word_pieces or [tokenizer.unk_token_id]
            starts = [k for k, piece in enumerate(word_pieces) if k == 0 or piece not in continuation]
            word_labels = [IGNORE] * len(word_pieces)
            for k, label in zip(starts, _sub_word_tags(tag, len(starts), index)):
                word_labels[k] = label
            row_ids += word_pieces
            row_labels += word_labels
        cursor += len(words)
        ids.append(row_ids)
        labels.append(row_labels)
    texts = [" ".join(words) for words in sentences]
    return texts, _ragged(ids), _ragged(labels)


def sub_word_tag_tables(tags):
    """``(first, middle, last)`` int32 arrays over tag ids: the tag of a given word's first, middle and last
    BERT word when it holds several (``_sub_word_tags``' rule; ``IGNORE`` past the first where the tag set
    lacks the tag the rule needs)."""
    index = _tag_index(tags)
    first, middle, last = [], [], []
    for tag in tags:
        parts = _sub_word_tags(tag, 3, index)
        first.append(parts[0])
        middle.append(parts[1])
        last.append(parts[2])
    return (np.array(first, np.int32), np.array(middle, np.int32), np.array(last, np.int32))


def align_word_tag_ids(tokenizer, words, tag_ids, tags):
    """``align_word_tags`` in core TF ops, for ``tf.data`` and tf.Transform: ragged words and tag ids in,
    ragged piece ids and labels out, the same values as the Python version.

    Args:
        words: string ``RaggedTensor`` ``[batch, (words)]``.
        tag_ids: int ``RaggedTensor`` ``[batch, (words)]`` with the same row lengths (ids into ``tags``).
        tags: the tag set.

    Returns:
        ``(piece_ids, piece_labels)``: int32 ``RaggedTensor`` ``[batch, (pieces)]``.
    """
    first_table, middle_table, last_table = (tf.constant(t) for t in sub_word_tag_tables(tags))
    pieces = tokenizer.tokenize(words.flat_values)  # [words, (pieces)]
    pieces = tf.cast(pieces, tf.int32)
    # A word without pieces becomes one [UNK]: append [UNK] to every word, keep max(length, 1) pieces.
    lengths = pieces.row_lengths()
    unk = tf.fill([tf.size(lengths), 1], tf.constant(tokenizer.unk_token_id, tf.int32))
    pieces = tf.concat([pieces, tf.RaggedTensor.from_tensor(unk)], axis=1)
    kept = tf.maximum(lengths, 1)
    pieces = tf.ragged.boolean_mask(pieces, tf.ragged.range(lengths + 1) < kept[:, None])
    continuation = tf.constant([t.startswith("##") for t in tokenizer.get_vocabulary()], tf.bool)
    flat, word_of_piece = pieces.flat_values, pieces.value_rowids()
    position = tf.ragged.range(kept).flat_values  # piece index inside its word
    starts = tf.cast((position == 0) | tf.logical_not(tf.gather(continuation, flat)), tf.int32)
    # Which BERT word of its given word each piece starts (0, 1, ...), and how many the word holds.
    running = tf.cumsum(starts)
    before_word = tf.gather(tf.concat([[0], running], 0), pieces.row_splits[:-1])
    order = running - tf.gather(before_word, word_of_piece) - 1
    count = tf.gather(tf.math.segment_sum(starts, word_of_piece), word_of_piece)
    word_tag = tf.gather(tf.cast(tag_ids.flat_values, tf.int32), word_of_piece)
    label = tf.where(order == 0, tf.where(count == 1, word_tag, tf.gather(first_table, word_tag)),
                     tf.where(order == count - 1, tf.gather(last_table, word_tag),
                              tf.gather(middle_table, word_tag)))
    label = tf.where(starts == 1, label, IGNORE)
    per_sentence = tf.reduce_sum(tf.RaggedTensor.from_row_splits(kept, words.row_splits), axis=1)
    return (tf.RaggedTensor.from_row_lengths(flat, per_sentence),
            tf.RaggedTensor.from_row_lengths(label, per_sentence))


def _ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1) if rows else \
        tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))


def align_char_spans(tokenizer, texts, span_lists, tags):
    """Raw texts with ``[(start, end, type)]`` character spans -> ``(texts, piece_ids, piece_labels)``.

    Spans are Python ``str`` offsets (``text[start:end]`` is the entity), must lie on the text, cover at
    least one word and not overlap. The tags are ``B-``/``I-`` of the span's type, or ``S-``/``B-``/
    ``I-``/``E-`` when the tag set has ``S-`` or ``E-`` tags; each must be in ``tags``.
    """
    index = _tag_index(tags)
    bioes = any(t[:2] in ("S-", "E-") for t in tags)
    if len(texts) != len(span_lists):
        raise ValueError(f"{len(texts)} texts but {len(span_lists)} span lists")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, not a string")
    pieces = text_pieces(tokenizer, tf.constant(list(texts), tf.string)) if texts else None
    ids, labels = [], []
    for i, (text, spans) in enumerate(zip(texts, span_lists)):
        row_ids = pieces["ids"][i].numpy().tolist()
        start, end = pieces["start"][i].numpy(), pieces["end"][i].numpy()
        initial = pieces["initial"][i].numpy()
        word_of_piece = np.cumsum(initial) - 1
        words = int(initial.sum())
        word_start = start[initial]
        word_end = np.zeros(words, np.int64)
        np.maximum.at(word_end, word_of_piece, end)
        word_tag = ["O"] * words
        taken = {}
        for span in sorted(spans, key=lambda s: s[0]):
            where = f"text {i} ({_quote(text)})"
            if len(span) != 3:
                raise ValueError(f"{where}: a span is (start, end, type), got {span!r}")
            s, e, type_ = span
            if not (isinstance(s, (int, np.integer)) and isinstance(e, (int, np.integer))
                    and 0 <= s < e <= len(text)):
                raise ValueError(f"{where}: span {tuple(span)!r} does not fall on the text "
                                 f"(need 0 <= start < end <= {len(text)})")
            covered = [w for w in range(words) if word_start[w] < e and word_end[w] > s]
            if not covered:
                raise ValueError(f"{where}: span {tuple(span)!r} ({text[s:e]!r}) covers no word")
            for w in covered:
                if w in taken:
                    raise ValueError(f"{where}: span {tuple(span)!r} overlaps span {taken[w]!r}")
                taken[w] = tuple(span)
            names = [f"I-{type_}"] * len(covered)
            names[0] = f"B-{type_}"
            if bioes:
                names[-1] = f"E-{type_}" if len(covered) > 1 else f"S-{type_}"
            for w, name in zip(covered, names):
                if name not in index:
                    raise ValueError(f"{where}: span {tuple(span)!r} needs tag {name!r}, which is "
                                     f"not in the tag set {list(tags)}")
                word_tag[w] = name
        ids.append(row_ids)
        labels.append([index[word_tag[w]] if first else IGNORE
                       for w, first in zip(word_of_piece, initial)])
    return list(texts), _ragged(ids), _ragged(labels)
