"""Byte-level BPE tokenizer (GPT-2, SmolLM, Llama-style GGUF vocabularies) in core TensorFlow ops."""

from __future__ import annotations

import json
import os
from typing import Iterable, Sequence

import keras
import tensorflow as tf

from tfmodels.text.decoding import DecodesText
from tfmodels.utils.from_preset import FromPreset

VOCABULARY_FILE = "vocabulary.json"
MERGES_FILE = "merges.json"

# Pre-tokenizers by name. Aliases are the names llama.cpp writes to `tokenizer.ggml.pre`.
PRE_TOKENIZERS = ("gpt2", "smollm")
_PRE_TOKENIZER_ALIASES = {"gpt-2": "gpt2"}

# Pieces are cut by inserting this byte around regex matches and splitting on it. It never
# occurs in valid UTF-8, and the input is made valid UTF-8 first.
_SEPARATOR = b"\xff"
_AROUND_MATCH = _SEPARATOR + b"\\0" + _SEPARATOR

# Unicode White_Space: what `\s` means in Hugging Face's (Oniguruma) and llama.cpp's regexes.
# RE2's own `\s` is ASCII only.
_SPACE = r"\t\n\x0B\f\r\x{85}\p{Z}"
# GPT-2's pattern, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
# without the lookahead RE2 lacks: `\s+(?!\S)|\s+` becomes `\s+` once _LAST_SPACE_BEFORE_WORD
# has cut every whitespace run that a non-space follows before its last character (the
# lookahead leaves that character to start the next piece).
_GPT2_PATTERN = (
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?\p{{L}}+| ?\p{{N}}+| ?[^{_SPACE}\p{{L}}\p{{N}}]+|[{_SPACE}]+"
)
_LAST_SPACE_BEFORE_WORD = rf"([{_SPACE}])([{_SPACE}][^{_SPACE}])"
_DIGIT = r"\p{N}"
# Stands for a special token while the text around it is split: a single letter stays one
# piece and one token through every pre-tokenizer.
_PLACEHOLDER = "a"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for every byte value."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _escape_re2(text: str) -> str:
    """A regex matching ``text`` literally (RE2 takes a backslash before any ASCII punctuation)."""
    return "".join("\\" + c if c.isascii() and not c.isalnum() else c for c in text)


def _merge_pairs(merges: Iterable) -> list[tuple[str, str]]:
    """Merges as ``(left, right)`` pairs, from ``"left right"`` strings or 2-item lists."""
    pairs = []
    for rank, merge in enumerate(merges):
        parts = merge.split(" ") if isinstance(merge, str) else list(merge)
        if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise ValueError(
                f"merge {rank} is {merge!r}: expected 'left right' or a [left, right] pair"
            )
        pairs.append((parts[0], parts[1]))
    return pairs


@keras.saving.register_keras_serializable(package="tfmodels")
class BytePairTokenizer(DecodesText, FromPreset, keras.layers.Layer):
    """Byte-level BPE tokenizer (GPT-2 family) that needs no custom op.

    Tokenizes like Hugging Face ``tokenizers`` with a byte-level ``BPE`` model
    (and like llama.cpp with a ``gpt2``-model GGUF vocabulary):

    1. special tokens (e.g. ``<|im_start|>``) are cut out of the text whole,
       longest first, and map to their ids;
    2. the rest is split into pieces by the pre-tokenizer: ``"gpt2"`` is
       GPT-2's regex (letters, numbers, other symbols, each with at most one
       leading space; contractions; whitespace runs), ``"smollm"`` first cuts
       every digit into its own piece, then applies GPT-2's regex;
    3. each piece's UTF-8 bytes become GPT-2's byte characters, and the
       lowest-rank adjacent pair is merged until no pair of the piece is in
       ``merges``; the resulting tokens are looked up in ``vocabulary``.

    Everything runs with core TensorFlow ops (RE2 regexes, string splits, hash
    tables, a ``tf.while_loop`` over all pieces at once), so the layer works in
    ``tf.data``, in a ``tf.function`` and in a SavedModel served by a stock TF
    Serving binary, without ``tensorflow_text``. The string ops do not compile
    with XLA: keep tokenization out of ``jit_compile`` functions.

    ``detokenize`` joins the tokens' bytes, so ``detokenize(tokenize(text))``
    gives back any valid UTF-8 text exactly. Invalid UTF-8 bytes are read as
    U+FFFD (as Python's ``bytes.decode(errors="replace")`` would). A byte with
    no single-byte token in the vocabulary is dropped, as Hugging Face does
    (SmolLM2's has none for six rare control characters, e.g. ``\x04``).

    No start or end token is added: the caller (e.g. a ``CausalLMPreprocessor``)
    adds them.

    The vocabulary and merges are assets, not config: ``get_config()`` has
    ``"vocabulary": None`` and ``"merges": None``, and ``model.save("m.keras")``
    writes them to the file's assets (``save_assets``), which
    ``keras.saving.load_model`` reads back (``load_assets``). Without a
    ``.keras`` file, pass them back yourself:
    ``BytePairTokenizer.from_config({**config, "vocabulary": v, "merges": m})``.

    Args:
      vocabulary: token strings in id order, in GPT-2's byte alphabet (as in
        GGUF ``tokenizer.ggml.tokens`` or a ``tokenizer.json``'s vocab).
        ``None`` leaves the tokenizer empty until ``set_vocabulary`` (or
        ``load_assets``) is called.
      merges: merge rules in rank order, each ``"left right"`` or
        ``[left, right]``; both sides and their concatenation must be tokens.
      pre_tokenizer: ``"gpt2"`` or ``"smollm"`` (llama.cpp's
        ``tokenizer.ggml.pre``; ``"gpt-2"`` is taken for ``"gpt2"``).
      special_tokens: tokens matched whole in the text, such as
        ``<|im_start|>``; each must be in the vocabulary.

    Example:

    >>> vocabulary = list(bytes_to_unicode().values())
    >>> vocabulary += ["Ġt", "he", "Ġthe", "<|end|>"]
    >>> tokenizer = BytePairTokenizer(
    ...     vocabulary, ["Ġ t", "h e", "Ġt he"], special_tokens=["<|end|>"])
    >>> ids = tokenizer(["the the<|end|>"])
    >>> [[tokenizer.id_to_token(i) for i in row] for row in ids.to_list()]
    [['t', 'he', 'Ġthe', '<|end|>']]
    >>> tokenizer.detokenize(ids).numpy()
    array([b'the the<|end|>'], dtype=object)
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        merges: Sequence | None = None,
        pre_tokenizer: str = "gpt2",
        special_tokens: Sequence[str] | None = None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        # Strings in, ragged ids out: keep Keras from converting or casting.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

        pre_tokenizer = _PRE_TOKENIZER_ALIASES.get(pre_tokenizer, pre_tokenizer)
        if pre_tokenizer not in PRE_TOKENIZERS:
            raise ValueError(
                f"unknown pre_tokenizer {pre_tokenizer!r}; supported: {', '.join(PRE_TOKENIZERS)}"
            )
        self.pre_tokenizer = pre_tokenizer
        self.special_tokens = list(special_tokens or [])
        self._vocab = None
        if (vocabulary is None) != (merges is None):
            raise ValueError("pass both vocabulary and merges, or neither")
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, merges)

    # -- building ------------------------------------------------------------

    def set_vocabulary(self, vocabulary: Sequence[str], merges: Sequence) -> None:
        """Sets the tokens (id = position) and merge rules (rank order) and builds the tables."""
        vocabulary = list(vocabulary)
        pairs = _merge_pairs(merges)
        index = {}
        for i, token in enumerate(vocabulary):
            index.setdefault(token, i)

        byte_chars = bytes_to_unicode()
        if _PLACEHOLDER not in index:
            raise ValueError(
                f"the vocabulary has no token {_PLACEHOLDER!r}: not a byte-level BPE vocabulary"
            )
        unknown = [t for t in self.special_tokens if t not in index]
        if unknown:
            raise ValueError(f"special tokens {unknown} are not in the vocabulary")

        size = len(vocabulary)
        keys, merged = [], []
        for rank, (left, right) in enumerate(pairs):
            for token in (left, right, left + right):
                if token not in index:
                    raise ValueError(
                        f"merge {rank} ({left!r} {right!r}) uses {token!r}, "
                        "which is not in the vocabulary"
                    )
            keys.append(index[left] * size + index[right])
            merged.append(index[left + right])

        self._vocab = _Vocabulary(vocabulary, pairs, index)
        self._vocab.compiled_tokenize = tf.function(
            self._tokenize, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
        )
        self.special_token_ids = [index[t] for t in self.special_tokens]
        # A byte without a token (SmolLM2 has none for a few control characters and bytes
        # that valid UTF-8 never holds) is dropped, as Hugging Face's BPE does without an
        # unknown token.
        self._byte_token_ids = tf.constant(
            [index.get(byte_chars[b], -1) for b in range(256)], tf.int32
        )
        # A pair of adjacent ids (left * size + right) -> the rank of its merge; rank -> result.
        # Ranks go in a dict first: a later duplicate of a merge must not override its rank.
        ranks = {}
        for rank, key in enumerate(keys):
            ranks.setdefault(key, rank)
        ranks = ranks or {-1: -1}  # a table cannot be empty; no pair has a negative key
        self._merge_ranks = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(ranks), tf.int64), tf.constant(list(ranks.values()), tf.int64)
            ),
            -1,
        )
        self._merged_ids = tf.constant(merged or [0], tf.int32)
        self._num_merges = len(pairs)
        used = set()
        self._merge_all_occurrences = True  # see _merge_positions
        for left, right in pairs:
            if left + right in used:
                self._merge_all_occurrences = False
                break
            used.update((left, right))
        self._special_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(self.special_tokens or [""], tf.string),
                tf.constant(self.special_token_ids or [-1], tf.int32),
            ),
            -1,
        )
        # Longest first: RE2 takes the first alternative that matches at a position.
        by_length = sorted(self.special_tokens, key=len, reverse=True)
        self._special_pattern = "|".join(_escape_re2(t) for t in by_length) or None
        to_latin1 = str.maketrans({c: chr(b) for b, c in byte_chars.items()})
        self._token_bytes = tf.constant([_token_bytes(t, to_latin1) for t in vocabulary], tf.string)

    @classmethod
    def from_tokenizer_json(cls, path: str, **kwargs) -> "BytePairTokenizer":
        """Builds the tokenizer a Hugging Face ``tokenizer.json`` describes.

        Takes a byte-level ``BPE`` model with no normalizer and a ``ByteLevel``
        pre-tokenizer (``gpt2``), optionally after ``Digits(individual_digits=True)``
        (``smollm``); every added token becomes a special token.
        """
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        model = spec.get("model") or {}
        if model.get("type") != "BPE":
            raise ValueError(f"{path}: model type {model.get('type')!r}, expected 'BPE'")
        for option in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
            if model.get(option):
                raise ValueError(f"{path}: BPE option {option}={model[option]!r} is not supported")
        for option in ("byte_fallback", "ignore_merges"):
            if model.get(option):
                raise ValueError(f"{path}: BPE option {option}=true is not supported")
        if spec.get("normalizer"):
            raise ValueError(
                f"{path}: normalizer {spec['normalizer'].get('type')!r} is not supported"
            )
        tokens = dict(model["vocab"])
        added = spec.get("added_tokens") or []
        tokens.update({t["content"]: t["id"] for t in added})
        vocabulary = [None] * (max(tokens.values()) + 1)
        for token, i in tokens.items():
            vocabulary[i] = token
        if None in vocabulary:
            raise ValueError(
                f"{path}: token ids are not contiguous (id {vocabulary.index(None)} is missing)"
            )
        return cls(
            vocabulary,
            model["merges"],
            pre_tokenizer=_pre_tokenizer_name(spec.get("pre_tokenizer"), path),
            special_tokens=[t["content"] for t in added],
            **kwargs,
        )

    # -- the vocabulary as a .keras asset -------------------------------------

    def save_assets(self, dir_path: str) -> None:
        """Writes the vocabulary and merges as JSON (called by ``model.save``)."""
        self._require_vocabulary()
        for name, value in (
            (VOCABULARY_FILE, self._vocab.tokens),
            (MERGES_FILE, self._vocab.merges),
        ):
            with open(os.path.join(dir_path, name), "w", encoding="utf-8") as f:
                json.dump(value, f, ensure_ascii=False)

    def load_assets(self, dir_path: str) -> None:
        """Reads what ``save_assets`` wrote (called by ``keras.saving.load_model``)."""
        loaded = []
        for name in (VOCABULARY_FILE, MERGES_FILE):
            with open(os.path.join(dir_path, name), encoding="utf-8") as f:
                loaded.append(json.load(f))
        self.set_vocabulary(*loaded)

    def _require_vocabulary(self) -> list[str]:
        if self._vocab is None:
            raise ValueError(
                f"BytePairTokenizer {self.name!r} has no vocabulary: pass vocabulary=... and "
                "merges=..., call set_vocabulary(), or load it from a .keras file "
                "(get_config() leaves them out)"
            )
        return self._vocab.tokens

    # -- vocabulary -----------------------------------------------------------

    def vocabulary_size(self) -> int:
        return len(self._require_vocabulary())

    def get_vocabulary(self) -> list[str]:
        return list(self._require_vocabulary())

    def get_merges(self) -> list[tuple[str, str]]:
        self._require_vocabulary()
        return list(self._vocab.merges)

    def id_to_token(self, token_id: int) -> str:
        vocabulary = self._require_vocabulary()
        if not 0 <= token_id < len(vocabulary):
            raise ValueError(f"id {token_id} is outside the vocabulary [0, {len(vocabulary)})")
        return vocabulary[token_id]

    def token_to_id(self, token: str) -> int:
        self._require_vocabulary()
        if token not in self._vocab.index:
            raise ValueError(f"token {token!r} is not in the vocabulary")
        return self._vocab.index[token]

    # -- tokenization ---------------------------------------------------------

    def call(self, inputs):
        return self.tokenize(inputs)

    def compute_output_spec(self, inputs):
        # Known without the vocabulary, so a functional model rebuilds before load_assets.
        return keras.KerasTensor(tuple(inputs.shape) + (None,), dtype="int32", ragged=True)

    def tokenize(self, inputs):
        """Strings -> token ids.

        A scalar gives a 1-D int32 tensor; a 1-D batch gives a ``tf.RaggedTensor``
        ``[batch, (tokens)]``.
        """
        self._require_vocabulary()
        texts, is_scalar = _as_batch(inputs)
        # Run eagerly, the merge loop's many small ops would each pay Python's dispatch cost.
        tokenize = self._vocab.compiled_tokenize if tf.executing_eagerly() else self._tokenize
        ids = tokenize(texts)
        return ids[0] if is_scalar else ids

    # Plain graph code (the loop is an explicit tf.while_loop): autograph would only slow tracing.
    @tf.autograph.experimental.do_not_convert
    def _tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        pieces, text_of_piece, special_id = self._pre_tokenize(texts)
        ids, piece_of_token = self._byte_pair_merge(pieces)
        special = tf.gather(special_id, piece_of_token)
        ids = tf.where(special >= 0, special, ids)
        return tf.RaggedTensor.from_value_rowids(
            ids,
            tf.gather(text_of_piece, piece_of_token),
            nrows=tf.shape(texts, tf.int64)[0],
            validate=False,
        )

    def split_pieces(self, inputs) -> tf.RaggedTensor:
        """The pre-tokenizer alone: ragged ``[batch, (pieces)]`` strings, special tokens whole."""
        self._require_vocabulary()
        texts, is_scalar = _as_batch(inputs)
        pieces, text_of_piece, special_id = self._pre_tokenize(texts)
        special = tf.gather(self._token_bytes, tf.maximum(special_id, 0))
        pieces = tf.where(special_id >= 0, special, pieces)
        pieces = tf.RaggedTensor.from_value_rowids(
            pieces, text_of_piece, nrows=tf.shape(texts, tf.int64)[0], validate=False
        )
        return pieces[0] if is_scalar else pieces

    def detokenize(self, ids, skip_special_tokens: bool = False):
        """Token ids -> text: the tokens' bytes joined.

        ``ids`` is ``[batch, n]`` (dense or ragged; gives ``[batch]`` strings) or
        ``[n]`` (gives a scalar). ``skip_special_tokens`` leaves out the special
        tokens (e.g. padding or an end token after generation).
        """
        self._require_vocabulary()
        if not isinstance(ids, (tf.Tensor, tf.RaggedTensor)):
            ids = tf.ragged.constant(ids, dtype=tf.int32)
        ids = tf.cast(ids, tf.int32)
        flat = ids.flat_values if isinstance(ids, tf.RaggedTensor) else tf.reshape(ids, [-1])
        checks = [
            tf.debugging.assert_non_negative(flat, message="detokenize: a token id is negative"),
            tf.debugging.assert_less(
                flat,
                self.vocabulary_size(),
                message=f"detokenize: a token id is >= the vocabulary size {self.vocabulary_size()}",
            ),
        ]
        with tf.control_dependencies(checks):
            pieces = tf.gather(self._token_bytes, flat)
        if skip_special_tokens and self.special_token_ids:
            is_special = tf.reduce_any(flat[:, tf.newaxis] == self.special_token_ids, axis=-1)
            pieces = tf.where(is_special, b"", pieces)
        if isinstance(ids, tf.RaggedTensor):
            pieces = ids.with_flat_values(pieces)
        else:
            pieces = tf.reshape(pieces, tf.shape(ids))
        return tf.strings.reduce_join(pieces, axis=-1)

    def _pre_tokenize(self, texts: tf.Tensor):
        """Splits texts into pieces (flat, in text order).

        Returns ``(pieces, text_of_piece, special_id)``: ``special_id`` is a special
        token's id for a piece that is one (whose string is then a placeholder),
        -1 for a piece to merge.
        """
        texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
        pieces = texts
        source = tf.range(tf.shape(texts, tf.int64)[0])
        special_id = tf.fill(tf.shape(texts), -1)
        if self._special_pattern:
            pieces, source, special_id = _split(pieces, self._special_pattern, source, special_id)
            special_id = self._special_ids.lookup(pieces)
            pieces = tf.where(special_id >= 0, _PLACEHOLDER, pieces)
        if self.pre_tokenizer == "smollm":
            pieces, source, special_id = _split(pieces, _DIGIT, source, special_id)
        pieces, source, special_id = _split(
            pieces, _LAST_SPACE_BEFORE_WORD, source, special_id, b"\\1" + _SEPARATOR + b"\\2"
        )
        pieces, source, special_id = _split(pieces, _GPT2_PATTERN, source, special_id)
        return pieces, source, special_id

    def _byte_pair_merge(self, pieces: tf.Tensor):
        """BPE over all pieces at once.

        Returns ``(ids, piece_of_token)``: the token ids of all pieces, flat and in
        order, and the piece each came from. Every round merges, in every
        unfinished piece, its lowest-rank pair (see ``_merge_positions`` for which
        occurrences); a piece with no pair in the merges is finished and leaves
        the loop. The state is flat (a symbol's row is its piece's
        index among the unfinished ones) to keep the graph small.
        """
        # Latin-1 decoding turns every byte into the code point of the same value.
        row_splits, byte_values = tf.raw_ops.UnicodeDecode(
            input=pieces, input_encoding="ISO-8859-1", Tsplits=tf.int32
        )
        symbols = tf.gather(self._byte_token_ids, byte_values)
        row = tf.searchsorted(row_splits[1:], tf.range(tf.size(symbols)), side="right")
        has_token = _where(symbols >= 0)
        symbols, row = tf.gather(symbols, has_token), tf.gather(row, has_token)
        vocabulary_size = tf.constant(self.vocabulary_size(), tf.int64)
        no_merge = tf.constant(self._num_merges, tf.int64)

        def step(active, values, row, finished):
            pair_row = row[:-1]
            key = tf.cast(values[:-1], tf.int64) * vocabulary_size + tf.cast(values[1:], tf.int64)
            rank = self._merge_ranks.lookup(key)
            rank = tf.where((pair_row == row[1:]) & (rank >= 0), rank, no_merge)
            best_rank = tf.math.unsorted_segment_min(rank, pair_row, tf.size(active))
            merging = best_rank < no_merge  # a row without pairs has int64 max: finished
            symbol_merging = tf.gather(merging, row)
            done = _where(tf.logical_not(symbol_merging))
            finished = [
                finished[0].write(finished[0].size(), tf.gather(values, done)),
                finished[1].write(finished[1].size(), tf.gather(active, tf.gather(row, done))),
            ]
            is_best = (rank == tf.gather(best_rank, pair_row)) & (rank < no_merge)
            position = self._merge_positions(is_best, pair_row, merging)
            merged = tf.gather(self._merged_ids, tf.gather(rank, position))
            values = tf.tensor_scatter_nd_update(values, position[:, None], merged)
            dropped = tf.scatter_nd(
                position[:, None] + 1, tf.ones_like(merged), tf.shape(values, tf.int64)
            )
            keep = _where(symbol_merging & (dropped == 0))
            new_row = tf.cumsum(tf.cast(merging, tf.int32)) - 1
            return (
                tf.boolean_mask(active, merging),
                tf.gather(values, keep),
                tf.gather(new_row, tf.gather(row, keep)),
                finished,
            )

        finished = [
            tf.TensorArray(
                tf.int32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None]
            )
            for _ in range(2)
        ]
        active = tf.range(tf.size(pieces))
        _, _, _, finished = tf.while_loop(
            lambda active, *_: tf.size(active) > 0,
            lambda *state: step(*state[:3], list(state[3])),
            (active, symbols, row, finished),
            shape_invariants=(tf.TensorShape([None]),) * 3 + ([None] * 2,),
        )
        ids, piece = (ta.concat() for ta in finished)
        # Pieces finish in any order; a stable sort by piece restores text order.
        order = tf.argsort(piece, stable=True)
        return tf.gather(ids, order), tf.cast(tf.gather(piece, order), tf.int64)

    def _merge_positions(self, is_best, pair_row, merging):
        """Flat positions of the pairs to merge this round, from where each row's best pair is.

        Hugging Face merges one pair at a time: the lowest rank, then the leftmost. When every
        token is made by merges ranked before all merges that use it, a merge's new pairs all
        rank after it, so the next ones merge the rest of that row's best pair, left to right:
        all occurrences can go in one round. They overlap only in runs of one repeated symbol
        (``a a a``), where left to right takes every other one. Other merge lists merge the
        leftmost occurrence only.
        """
        position = tf.range(tf.size(is_best, tf.int64), dtype=tf.int64)
        if self._merge_all_occurrences:
            starts_run = is_best & tf.logical_not(tf.concat([[False], is_best[:-1]], 0))
            run_start = tf.concat([_where(starts_run), [0]], 0)  # [0]: gather needs an item
            run = tf.maximum(tf.cumsum(tf.cast(starts_run, tf.int32)) - 1, 0)
            offset = position - tf.gather(run_start, run)
            return _where(is_best & (offset % 2 == 0))
        leftmost = tf.math.unsorted_segment_min(
            tf.where(is_best, position, position.dtype.max), pair_row, tf.size(merging)
        )
        return tf.boolean_mask(leftmost, merging)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": None,  # assets: see save_assets / the class docstring
                "merges": None,
                "pre_tokenizer": self.pre_tokenizer,
                "special_tokens": list(self.special_tokens),
            }
        )
        return config


class _Vocabulary:
    """The tokens, merges and token -> id map, out of reach of Keras' attribute tracking
    (which would wrap every item of these large lists)."""

    def __init__(self, tokens: list[str], merges: list[tuple[str, str]], index: dict[str, int]):
        self.tokens, self.merges, self.index = tokens, merges, index
        self.compiled_tokenize = None  # the layer's tokenization as a tf.function, for eager calls


def _split(pieces, pattern, source, special_id, rewrite=_AROUND_MATCH):
    """Cuts every piece where ``rewrite`` puts the separator; drops empty parts.

    ``source`` and ``special_id`` (one per piece) follow the parts.
    """
    indices, parts, _ = tf.raw_ops.StringSplitV2(
        input=tf.strings.regex_replace(pieces, pattern, rewrite), sep=_SEPARATOR
    )
    nonempty = _where(tf.strings.length(parts) > 0)
    of_part = tf.gather(indices[:, 0], nonempty)
    return (
        tf.gather(parts, nonempty),
        tf.gather(source, of_part),
        tf.gather(special_id, of_part),
    )


def _where(mask: tf.Tensor) -> tf.Tensor:
    """Positions of the true items of a 1-D mask (a gather with them is a light boolean_mask)."""
    return tf.reshape(tf.where(mask), [-1])


def _token_bytes(token: str, to_latin1: dict) -> bytes:
    """The bytes a token stands for; a token outside the byte alphabet stands for itself."""
    try:  # byte characters -> the code points 0-255 that latin-1 writes as those bytes
        return token.translate(to_latin1).encode("latin-1")
    except UnicodeEncodeError:
        return token.encode("utf-8")


def _pre_tokenizer_name(spec: dict | None, path: str) -> str:
    """``gpt2`` or ``smollm`` from a ``tokenizer.json``'s ``pre_tokenizer``."""

    def is_byte_level(step):
        return (
            step.get("type") == "ByteLevel"
            and not step.get("add_prefix_space", True)
            and step.get("use_regex", True)
        )

    spec = spec or {}
    steps = spec.get("pretokenizers", []) if spec.get("type") == "Sequence" else [spec]
    if len(steps) == 1 and is_byte_level(steps[0]):
        return "gpt2"
    if (
        len(steps) == 2
        and steps[0].get("type") == "Digits"
        and steps[0].get("individual_digits")
        and is_byte_level(steps[1])
    ):
        return "smollm"
    raise ValueError(
        f"{path}: pre_tokenizer {json.dumps(spec)} is not supported; supported: ByteLevel "
        "(add_prefix_space=false, use_regex=true), optionally after Digits(individual_digits=true)"
    )


def _as_batch(inputs):
    """Returns (1-D string tensor, whether the input was a scalar)."""
    texts = tf.convert_to_tensor(inputs, tf.string)
    if texts.shape.rank not in (0, 1):
        raise ValueError(
            f"BytePairTokenizer takes a scalar or a 1-D batch of strings, got {texts.shape}"
        )
    return tf.reshape(texts, [-1]), texts.shape.rank == 0
