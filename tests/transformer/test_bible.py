"""The English-Spanish Bible verse pairs (Debian SWORD modules read with pysword)."""

import pytest

from tfmodels.datasets import bible

BIBLE_MISSING = bible.missing_reason()


def test_missing_reason_names_the_package(tmp_path):
    reason = bible.missing_reason(str(tmp_path))
    if reason and "pysword" in reason:
        assert "pip install pysword" in reason
    else:
        assert "apt-get install sword-text-kjv" in reason
    with pytest.raises(FileNotFoundError):
        bible.load_verse_pairs(str(tmp_path))


def test_clean_verse():
    assert bible.clean_verse("EN el principio  crió Dios") == "En el principio crió Dios"
    assert bible.clean_verse("Y ACONTECIÓ ¶ que") == "Y aconteció que"
    assert bible.clean_verse("¶ In the beginning\n God") == "In the beginning God"


def test_split_by_book_rejects_unknown_books():
    pairs = [bible.VersePair("Ruth", 1, 1, "a", "b"), bible.VersePair("Genesis", 1, 1, "c", "d")]
    train, test = bible.split_by_book(pairs, test_books=("Ruth",))
    assert [p.book for p in train] == ["Genesis"] and [p.book for p in test] == ["Ruth"]
    with pytest.raises(ValueError, match="unknown book"):
        bible.split_by_book(pairs, test_books=("Ruht",))


@pytest.mark.e2e
@pytest.mark.skipif(
    BIBLE_MISSING is not None, reason=f"English-Spanish Bible corpus unavailable: {BIBLE_MISSING}"
)
def test_load_and_split_the_real_corpus():
    """Reads both modules (about a minute on 2 cores)."""
    pairs = bible.load_verse_pairs()
    assert 31000 < len(pairs) <= 31102
    first = pairs[0]
    assert (first.book, first.chapter, first.verse) == ("Genesis", 1, 1)
    assert first.english.startswith("In the beginning God created")
    assert first.spanish.startswith("En el principio crió Dios")
    train, test = bible.split_by_book(pairs)
    assert {p.book for p in test} == set(bible.TEST_BOOKS)
    assert len(test) == 568 and len(train) + len(test) == len(pairs)
