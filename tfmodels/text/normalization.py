"""BERT text normalization and word splitting with core TensorFlow ops.

BERT's ``BasicTokenizer`` (google-research/bert ``tokenization.py``, and the
``BertNormalizer`` + ``BertPreTokenizer`` of HF ``tokenizers``) is a pure
function of each code point once the text is decoded:

* control characters (categories Cc, Cf, Co; NUL; U+FFFD) are dropped,
* whitespace becomes a separator,
* CJK ideographs become words of their own,
* when uncased: NFD decomposition, non-spacing marks (Mn) removed, lower-cased,
* punctuation (ASCII symbols and every ``P*`` category) becomes a word of its own.

So instead of a custom op we precompute, in Python with ``unicodedata``, what
every code point turns into (including the spaces that isolate CJK and
punctuation), store it as small integer tables, and apply it in the graph with
``tf.gather``. Lower-casing per code point is what HF ``tokenizers`` does (so a
final capital sigma becomes ``σ``, not Python ``str.lower``'s ``ς``).

The tables follow Python's ``unicodedata`` (Unicode 13.0 on Python 3.10). HF
``tokenizers`` uses older category tables and a CJK range with a typo
(U+2B920 instead of U+2B820); we keep the original BERT ranges. Both only
affect rarely used scripts; see ``tests/text/test_reference_ids.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import tempfile
import unicodedata
import zipfile

import numpy as np
import tensorflow as tf

from tfmodels.utils.cache import cache_dir

MAX_CODEPOINT = 0x110000
_PAGE_BITS = 8
_PAGE_SIZE = 1 << _PAGE_BITS
SPACE = 0x20

# Ranges of the "CJK Unified Ideographs" blocks that BERT splits one per token
# (google-research/bert tokenization.py, `_is_chinese_char`).
CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)

# Unicode White_Space code points that are not control characters. BERT treats
# the Zs category plus \t \n \r as whitespace, and str.split() (used right after)
# also splits on U+2028/U+2029; HF uses Rust's char::is_whitespace. Same set.
_WHITESPACE = frozenset(
    [0x09, 0x0A, 0x0D, 0x20, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
    + list(range(0x2000, 0x200B))
)
# Control characters that BERT keeps as whitespace rather than dropping.
_CONTROL_WHITESPACE = frozenset([0x09, 0x0A, 0x0D])
# Dropped categories: Cc and Cf as in BERT; HF also drops private use (Co).
# Surrogates (Cs) cannot come out of a UTF-8 decode; listed for completeness.
_DROPPED_CATEGORIES = frozenset(["Cc", "Cf", "Co", "Cs"])


def is_cjk(cp: int) -> bool:
    """Whether code point ``cp`` is a CJK ideograph in BERT's sense."""
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def is_punctuation(cp: int) -> bool:
    """BERT punctuation: all non-alphanumeric ASCII symbols, and category P*."""
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(chr(cp)).startswith("P")


def _is_dropped(cp: int) -> bool:
    if cp in _CONTROL_WHITESPACE:
        return False
    return cp == 0 or cp == 0xFFFD or unicodedata.category(chr(cp)) in _DROPPED_CATEGORIES


def _fold(char: str, lowercase: bool) -> str:
    """Accent stripping and lower-casing of one character (uncased BERT)."""
    if not lowercase:
        return char
    decomposed = unicodedata.normalize("NFD", char)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()


def normalize_char(cp: int, lowercase: bool) -> str:
    """What BERT's basic tokenization turns code point ``cp`` into.

    Words are separated by one or more spaces in the result: punctuation and
    CJK ideographs come out surrounded by spaces so they form words of their own.
    """
    if _is_dropped(cp):
        return ""
    if cp in _WHITESPACE:
        return " "
    folded = _fold(chr(cp), lowercase)
    if is_cjk(cp):
        return " " + folded + " "
    out = []
    for c in folded:
        if ord(c) in _WHITESPACE:
            out.append(" ")
        elif is_punctuation(ord(c)):
            out.append(" " + c + " ")
        else:
            out.append(c)
    return "".join(out)


SAME = -1  # in a replacement template: the input code point itself


@dataclasses.dataclass(frozen=True)
class NormalizationTable:
    """Code point -> replacement string, as integer arrays for ``tf.gather``.

    A two-level (paged) table keeps it small: ``page_of[cp >> 8]`` picks one of
    the distinct 256-entry pages, whose entry is a replacement id; id 0 means
    "keep the code point unchanged", any other id indexes the ragged
    ``replacement_starts``/``replacement_values`` (possibly empty: dropped).
    A replacement is a template: ``SAME`` in it stands for the input code point,
    so the ~90,000 CJK ideographs and the punctuation, each spaced as
    ``" c "``, share one replacement, and their pages are alike (the tables are
    graph constants: 2 MB of every export without this, ~100 KB with it).
    """

    page_of: np.ndarray  # [0x1100] int32
    pages: np.ndarray  # [num_pages * 256] int32
    replacement_starts: np.ndarray  # [num_replacements + 1] int32
    replacement_values: np.ndarray  # [total] int32


@functools.lru_cache(maxsize=None)
def build_table(lowercase: bool) -> NormalizationTable:
    """The normalization table, once per process: read from the tfmodels cache folder
    (``tfmodels.utils.cache``) when an earlier process stored it for the same Unicode database and the
    same code of this module, else computed (1-2 s of Python, which every process that builds a
    tokenizer used to pay) and stored there. A missing, damaged or unwritable cache only costs the time."""
    path = _table_cache_path(lowercase)
    table = _read_table(path)
    if table is None:
        table = compute_table(lowercase)
        _write_table(path, table)
    return table


@functools.lru_cache(maxsize=None)
def _module_digest() -> str:
    with open(__file__, "rb") as f:  # any change to this module makes new tables
        return hashlib.sha256(f.read()).hexdigest()[:16]


def _table_cache_path(lowercase: bool) -> str:
    casing = "uncased" if lowercase else "cased"
    return os.path.join(
        cache_dir(),
        f"bert-normalization-{casing}-unicode{unicodedata.unidata_version}-{_module_digest()}.npz",
    )


def _read_table(path: str) -> NormalizationTable | None:
    try:
        with np.load(path) as data:  # arrays only: no pickles are read
            return NormalizationTable(
                **{field.name: data[field.name] for field in dataclasses.fields(NormalizationTable)}
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _write_table(path: str, table: NormalizationTable) -> None:
    partial = None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=os.path.dirname(path), suffix=".partial", delete=False
        ) as f:
            partial = f.name
            np.savez(f, **dataclasses.asdict(table))
        os.replace(partial, path)  # whole or not at all, also with processes starting at once
    except OSError:
        if partial and os.path.exists(partial):
            os.remove(partial)


def compute_table(lowercase: bool) -> NormalizationTable:
    """Computes the normalization table from ``unicodedata`` (what :func:`build_table` caches)."""
    replacements: dict[tuple, int] = {(): 1}  # id 0 is reserved for "unchanged"
    flat = np.zeros(MAX_CODEPOINT, np.int32)
    for cp in range(MAX_CODEPOINT):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        # Unassigned code points (Cn) pass through unchanged, as in BERT and HF.
        if unicodedata.category(chr(cp)) == "Cn" and cp not in _WHITESPACE:
            continue
        out = normalize_char(cp, lowercase)
        if out != chr(cp):
            template = tuple(SAME if c == chr(cp) else ord(c) for c in out)
            flat[cp] = replacements.setdefault(template, len(replacements) + 1)
    page_rows = flat.reshape(-1, _PAGE_SIZE)
    unique_pages, page_of = np.unique(page_rows, axis=0, return_inverse=True)
    ordered = [()] * (len(replacements) + 1)  # index 0: unused placeholder
    for template, idx in replacements.items():
        ordered[idx] = template
    lengths = [len(t) for t in ordered]
    return NormalizationTable(
        page_of=page_of.astype(np.int32).reshape(-1),
        pages=unique_pages.astype(np.int32).reshape(-1),
        replacement_starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
        replacement_values=np.array([c for t in ordered for c in t], np.int32),
    )


class Normalizer(tf.Module):
    """Applies a :class:`NormalizationTable` to decoded text, in the graph.

    The tables are constants of the graph (a few hundred KB), so a SavedModel
    that contains this needs nothing but core TensorFlow ops.
    """

    def __init__(self, lowercase: bool = True, name: str | None = None):
        super().__init__(name=name)
        self.lowercase = lowercase
        table = build_table(lowercase)
        self._page_of = tf.constant(table.page_of)
        self._pages = tf.constant(table.pages)
        self._starts = tf.constant(table.replacement_starts)
        self._values = tf.constant(table.replacement_values)

    def normalize(self, codepoints: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Maps a flat int32 vector of code points to its normalized form.

        Returns ``(normalized, source)``: the normalized code points, flat, and
        for each of them the index of the input code point it came from (used
        for offsets and to carry the row structure through).
        """
        codepoints = tf.clip_by_value(codepoints, 0, MAX_CODEPOINT - 1)
        page = tf.gather(self._page_of, tf.bitwise.right_shift(codepoints, _PAGE_BITS))
        replacement = tf.gather(
            self._pages, page * _PAGE_SIZE + tf.bitwise.bitwise_and(codepoints, _PAGE_SIZE - 1)
        )
        # 0 = unchanged (one output char); otherwise the replacement's length.
        start = tf.gather(self._starts, replacement)
        length = tf.where(replacement == 0, 1, tf.gather(self._starts, replacement + 1) - start)
        source = tf.repeat(tf.range(tf.size(codepoints)), length)
        output_splits = tf.concat([[0], tf.cumsum(length)], axis=0)
        within = tf.range(tf.size(source)) - tf.gather(output_splits, source)
        from_table = tf.gather(self._values, tf.gather(start, source) + within)
        same = tf.gather(codepoints, source)
        normalized = tf.where(
            (tf.gather(replacement, source) == 0) | (from_table == SAME), same, from_table
        )
        return normalized, source


@dataclasses.dataclass
class Words:
    """Result of splitting a batch of texts into words (BERT's BasicTokenizer).

    Attributes:
      strings: [num_words] UTF-8 words, flat over the batch.
      row_splits: [batch + 1] int64; text i owns words ``row_splits[i]:row_splits[i+1]``.
      codepoints: RaggedTensor [num_words, (chars)] of normalized code points.
      char_byte_start / char_byte_end: RaggedTensor [num_words, (chars)]: byte
        span, in the original text, of the input character each normalized
        character came from.
    """

    strings: tf.Tensor
    row_splits: tf.Tensor
    codepoints: tf.RaggedTensor
    char_byte_start: tf.RaggedTensor
    char_byte_end: tf.RaggedTensor


def utf8_length(codepoints: tf.Tensor) -> tf.Tensor:
    """Number of UTF-8 bytes of each code point."""
    return (
        1
        + tf.cast(codepoints >= 0x80, tf.int32)
        + tf.cast(codepoints >= 0x800, tf.int32)
        + tf.cast(codepoints >= 0x10000, tf.int32)
    )


def split_words(texts: tf.Tensor, normalizer: Normalizer) -> Words:
    """Normalizes a 1-D batch of UTF-8 strings and splits it into words.

    Invalid UTF-8 bytes decode to U+FFFD, which BERT cleaning drops: malformed
    bytes are removed from the text, never an error in the middle of a run.
    """
    decoded, byte_starts = tf.strings.unicode_decode_with_offsets(
        texts, "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    codepoints = decoded.values
    normalized, source = normalizer.normalize(codepoints)
    text_of_char = tf.gather(decoded.value_rowids(), source)
    # A word starts at a non-space character whose predecessor is a space or
    # belongs to another text.
    is_space = tf.equal(normalized, SPACE)
    is_first_of_text = tf.not_equal(text_of_char, tf.concat([[-1], text_of_char], axis=0)[:-1])
    prev_is_space = tf.concat([[True], is_space], axis=0)[:-1]
    word_start = tf.logical_and(
        tf.logical_not(is_space), tf.logical_or(prev_is_space, is_first_of_text)
    )
    keep = tf.where(tf.logical_not(is_space))[:, 0]
    word_of_char = tf.gather(tf.cumsum(tf.cast(word_start, tf.int64)) - 1, keep)
    num_words = tf.reduce_sum(tf.cast(word_start, tf.int64))
    word_codepoints = tf.RaggedTensor.from_value_rowids(
        tf.gather(normalized, keep), word_of_char, nrows=num_words, validate=False
    )
    words_per_text = tf.math.unsorted_segment_sum(
        tf.cast(word_start, tf.int64), text_of_char, tf.shape(texts, out_type=tf.int64)[0]
    )
    row_splits = tf.concat([[0], tf.cumsum(words_per_text)], axis=0)

    source_of_kept = tf.gather(source, keep)
    byte_start = tf.gather(byte_starts.values, source_of_kept)
    byte_end = byte_start + tf.cast(
        utf8_length(tf.gather(codepoints, source_of_kept)), byte_start.dtype
    )
    return Words(
        strings=tf.strings.unicode_encode(word_codepoints, "UTF-8"),
        row_splits=row_splits,
        codepoints=word_codepoints,
        char_byte_start=word_codepoints.with_values(byte_start),
        char_byte_end=word_codepoints.with_values(byte_end),
    )


# On printable ASCII the tables reduce to string ops several times faster than
# decoding to code points: isolate ASCII punctuation, lower-case, split on
# whitespace. Texts with anything else first lose their ASCII control
# characters (\t \n \r are kept as whitespace; the split would take \v and \f
# for spaces), and only their words that are still not ASCII go through the
# code point tables. Both are exact because the tables map each code point on
# its own and spaces only separate words.
_PLAIN_TEXT = r"[\t\n\r\x20-\x7e]*"
_ASCII = r"[\x00-\x7f]*"
_ASCII_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_ASCII_PUNCTUATION = r"[!-/:-@\[-`{-~]"


@dataclasses.dataclass
class AsciiSplit:
    """Texts split at ASCII whitespace and punctuation, ASCII lower-cased.

    Attributes:
      words: ragged ``[batch, (words)]``; final, except the ones in ``replaced``.
      replaced: [num_replaced] int64, ascending indices into ``words.values`` of
        the words that still hold non-ASCII characters.
      parts, part_splits: what those become (normalized and split by the code
        point tables): replaced word j is ``parts[part_splits[j]:part_splits[j+1]]``,
        possibly nothing.
    """

    words: tf.RaggedTensor
    replaced: tf.Tensor
    parts: tf.Tensor
    part_splits: tf.Tensor


def normalize_ascii(texts: tf.Tensor, lowercase: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """The ASCII half of the normalization, by string ops on whole texts.

    Returns the texts with ASCII control characters dropped, ASCII punctuation
    between spaces and (when ``lowercase``) ASCII letters lower-cased, and
    whether each text was plain (printable ASCII and \\t \\n \\r only).
    """
    plain = tf.strings.regex_full_match(texts, _PLAIN_TEXT)
    plain_rows = tf.cast(tf.where(plain)[:, 0], tf.int32)
    other_rows = tf.cast(tf.where(tf.logical_not(plain))[:, 0], tf.int32)
    cleaned = tf.strings.regex_replace(tf.gather(texts, other_rows), _ASCII_CONTROL, "")
    texts = tf.dynamic_stitch([plain_rows, other_rows], [tf.gather(texts, plain_rows), cleaned])
    texts = tf.strings.regex_replace(texts, _ASCII_PUNCTUATION, r" \0 ")
    if lowercase:
        texts = tf.strings.lower(texts)  # ASCII letters only: the tables do the rest
    return texts, plain


def split_normalized_ascii(
    texts: tf.Tensor, plain: tf.Tensor, normalizer: Normalizer
) -> AsciiSplit:
    """Splits :func:`normalize_ascii`'s texts at whitespace; the words of non-plain
    texts that are not ASCII go through the code point tables."""
    words = tf.strings.split(texts).with_row_splits_dtype(tf.int64)
    other_rows = tf.where(tf.logical_not(plain))[:, 0]
    maybe = tf.ragged.range(
        tf.gather(words.row_splits, other_rows), tf.gather(words.row_splits, other_rows + 1)
    ).values
    is_ascii = tf.strings.regex_full_match(tf.gather(words.values, maybe), _ASCII)
    replaced = tf.boolean_mask(maybe, tf.logical_not(is_ascii))
    parts = split_words(tf.gather(words.values, replaced), normalizer)
    return AsciiSplit(words, replaced, parts.strings, parts.row_splits)


def split_ascii_first(texts: tf.Tensor, normalizer: Normalizer) -> AsciiSplit:
    """BERT's basic tokenization, by string ops for the ASCII and the tables for the rest."""
    normalized, plain = normalize_ascii(texts, normalizer.lowercase)
    return split_normalized_ascii(normalized, plain, normalizer)


def split_word_strings(texts: tf.Tensor, normalizer: Normalizer) -> tf.RaggedTensor:
    """Same words as :func:`split_words` (ragged ``[batch, (words)]``), without offsets."""
    split = split_ascii_first(texts, normalizer)
    num_words = tf.size(split.words.values, tf.int64)
    first = tf.range(num_words)
    first, last = replace_ranges(
        first,
        first + 1,
        split.replaced,
        num_words + split.part_splits[:-1],
        num_words + split.part_splits[1:],
    )
    take = tf.ragged.range(first, last)
    values = tf.gather(tf.concat([split.words.values, split.parts], 0), take.values)
    return tf.RaggedTensor.from_row_splits(
        values, tf.gather(take.row_splits, split.words.row_splits), validate=False
    )


def replace_ranges(
    first: tf.Tensor, last: tf.Tensor, replaced: tf.Tensor, starts: tf.Tensor, limits: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Item i covers ``[first[i], last[i])`` of a table, except items ``replaced[j]``,
    which cover ``[starts[j], limits[j])`` (possibly empty).

    ``tf.ragged.range(first, last)`` then lists, in order, the table rows of
    every item: with a table laid out as "the fast path's values, then the
    slow path's" (non-ASCII words, WordPiece misses) one gather merges them.
    """
    replaced = tf.cast(replaced, tf.int64)[:, None]
    return (
        tf.tensor_scatter_nd_update(first, replaced, tf.cast(starts, first.dtype)),
        tf.tensor_scatter_nd_update(last, replaced, tf.cast(limits, last.dtype)),
    )


def row_ids(row_splits: tf.Tensor) -> tf.Tensor:
    """The row of every value, like ``RaggedTensor.value_rowids()``.

    A scatter and a cumsum over the values, where ``value_rowids()`` masks
    rows x longest row (``tf.repeat``): cheaper in the WordPiece loop.
    """
    total = row_splits[-1]
    marks = tf.scatter_nd(row_splits[1:-1, None], tf.ones_like(row_splits[1:-1]), total[None] + 1)
    return tf.cumsum(marks)[:total]
