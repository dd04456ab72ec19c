"""English-Spanish Bible verse pairs from the Debian SWORD modules, read with ``pysword``.

King James (``sword-text-kjv``, module ``engKJV2006eb``) and Reina-Valera 1909
(``sword-text-sparv``, module ``spaRV1909eb``) both use the KJV versification, so verse ``i`` of
one is verse ``i`` of the other: 31,102 verses, 31,084 pairs with text on both sides. Install with
``apt-get install sword-text-kjv sword-text-sparv``; nothing is downloaded at run time.

Example:
>>> from tfmodels.datasets import bible
>>> if bible.missing_reason() is None:  # the Debian packages are installed
...     train, test = bible.split_by_book(bible.load_verse_pairs())
"""

import dataclasses
import functools
import os
import re

SWORD_PATH = os.environ.get("TFMODELS_SWORD_PATH", "/usr/share/sword")
ENGLISH_MODULE = "engKJV2006eb"  # Debian package sword-text-kjv
SPANISH_MODULE = "spaRV1909eb"  # Debian package sword-text-sparv

# Held out whole, so test verses share no chapter with training: Old and New Testament, narrative,
# prophecy and letters; 568 verse pairs (~1.8% of the corpus), small enough to decode with beams on CPU.
TEST_BOOKS = ("Ruth", "Joel", "Jonah", "Philippians", "Titus", "James", "I John")


@dataclasses.dataclass(frozen=True)
class VersePair:
    """One verse in both languages."""

    book: str
    chapter: int
    verse: int
    english: str
    spanish: str


def missing_reason(sword_path=None):
    """Why the corpus cannot be read here (for ``pytest.skip``), or None when it can."""
    try:
        import pysword  # noqa: F401
    except ImportError:
        return "pysword is not installed (pip install pysword==0.2.8)"
    sword_path = sword_path or SWORD_PATH
    for module, package in ((ENGLISH_MODULE, "sword-text-kjv"), (SPANISH_MODULE, "sword-text-sparv")):
        # Debian keeps the module's case in the file name; SWORD itself also accepts lower case.
        names = {module + ".conf", module.lower() + ".conf"}
        conf = os.path.join(sword_path, "mods.d", module + ".conf")
        if not any(os.path.exists(os.path.join(sword_path, "mods.d", n)) for n in names):
            return f"SWORD module {module} not found at {conf} (apt-get install {package})"
    return None


_SPACES = re.compile(r"\s+")
# Reina-Valera prints a chapter's first word in capitals ("EN el principio", "¡OH Jehová",
# "Y ACONTECIÓ"); turn it back into an ordinary word so it shares vocabulary with the rest.
_CAPITALIZED_OPENING = re.compile(r"^(\W*(?:\w\s+)?)([A-ZÁÉÍÓÚÑ]{2,})\b")


def clean_verse(text):
    """Drops the paragraph marks and layout whitespace of the modules' text."""
    text = _SPACES.sub(" ", text.replace("¶", " ")).strip()

    def recase(match):
        lead, word = match.groups()
        # "EN el" -> "En el", but "Y ACONTECIÓ" -> "Y aconteció" (not the sentence's first word).
        return lead + (word.lower() if any(c.isalpha() for c in lead) else word.capitalize())

    return _CAPITALIZED_OPENING.sub(recase, text)


def _open_bible(modules, name):
    bible = modules.get_bible_from_module(name)
    # pysword 0.2.8 inflates a whole compressed block (a book, in these modules) for every verse
    # it reads, which makes reading the Bible take minutes; remembering the last block makes it
    # one inflate per book.
    read_block = bible._decompressed_text

    @functools.lru_cache(maxsize=1)
    def read_block_once(testament, block):
        return read_block(testament, block)

    bible._decompressed_text = read_block_once
    return bible


@functools.lru_cache(maxsize=2)
def _load(sword_path):
    from pysword.modules import SwordModules

    modules = SwordModules(sword_path)
    modules.parse_modules()
    english = _open_bible(modules, ENGLISH_MODULE)
    spanish = _open_bible(modules, SPANISH_MODULE)
    pairs = []
    for books in english.get_structure().get_books().values():
        for book in books:
            english_verses = english.get_iter(books=[book.osis_name])
            spanish_verses = spanish.get_iter(books=[book.osis_name])
            refs = ((c + 1, v + 1) for c, n in enumerate(book.chapter_lengths) for v in range(n))
            for (chapter, verse), en, es in zip(refs, english_verses, spanish_verses):
                en, es = clean_verse(en), clean_verse(es)
                # A few verses are empty in one translation (merged into a neighbour).
                if en and es:
                    pairs.append(VersePair(book.name, chapter, verse, en, es))
    return tuple(pairs)


def load_verse_pairs(sword_path=None):
    """All verse pairs with text on both sides, in canonical order.

    Args:
        sword_path: the SWORD library root (``mods.d/`` and ``modules/``); defaults to
            ``$TFMODELS_SWORD_PATH`` or ``/usr/share/sword``.

    Returns:
        a list of ``VersePair``.

    Raises:
        FileNotFoundError: the modules are not installed (see ``missing_reason``).
    """
    sword_path = sword_path or SWORD_PATH
    reason = missing_reason(sword_path)
    if reason:
        raise FileNotFoundError(reason)
    return list(_load(sword_path))


def split_by_book(pairs, test_books=TEST_BOOKS):
    """``(train, test)``: the verses of ``test_books`` (names as pysword spells them) held out."""
    test_books = set(test_books)
    known = {p.book for p in pairs}
    unknown = test_books - known
    if unknown:
        raise ValueError(f"unknown book(s) {sorted(unknown)}; books are e.g. {sorted(known)[:5]}")
    train = [p for p in pairs if p.book not in test_books]
    test = [p for p in pairs if p.book in test_books]
    return train, test
