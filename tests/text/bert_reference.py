"""A plain-Python port of google-research/bert ``tokenization.py`` (FullTokenizer).

Written for the tests as an independent reference: character by character,
with Python's ``str.lower`` on the whole word and ``unicodedata``, exactly the
original algorithm (no tables, no TensorFlow).
"""

import unicodedata


def _is_whitespace(char):
    if char in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char):
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp):
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokenize(text, do_lower_case=True):
    cleaned = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            continue
        cleaned.append(" " if _is_whitespace(char) else char)
    spaced = []
    for char in cleaned:
        spaced.append(f" {char} " if _is_chinese_char(ord(char)) else char)
    tokens = []
    for token in "".join(spaced).split():
        if do_lower_case:
            token = token.lower()
            token = "".join(
                c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn"
            )
        current = []
        for char in token:
            if _is_punctuation(char):
                if current:
                    tokens.append("".join(current))
                    current = []
                tokens.append(char)
            else:
                current.append(char)
        if current:
            tokens.append("".join(current))
    return " ".join(tokens).split()


def wordpiece_tokenize(word, vocab, unk="[UNK]", max_chars=100):
    chars = list(word)
    if len(chars) > max_chars:
        return [unk]
    start, pieces = 0, []
    while start < len(chars):
        end, current = len(chars), None
        while start < end:
            sub = "".join(chars[start:end])
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                current = sub
                break
            end -= 1
        if current is None:
            return [unk]
        pieces.append(current)
        start = end
    return pieces


class FullTokenizer:
    def __init__(self, vocab_file, do_lower_case=True):
        with open(vocab_file, encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines[-1] == "":
            lines.pop()
        self.vocab = {line.strip(): i for i, line in enumerate(lines)}
        self.do_lower_case = do_lower_case

    def tokenize(self, text):
        return [
            piece
            for word in basic_tokenize(text, self.do_lower_case)
            for piece in wordpiece_tokenize(word, self.vocab)
        ]

    def ids(self, text):
        return [self.vocab[t] for t in self.tokenize(text)]
