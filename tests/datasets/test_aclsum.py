import json

import pytest

from tfmodels.datasets import aclsum
from tfmodels.datasets.aclsum import Paper, detokenize, lead_summary, load_aclsum


@pytest.mark.parametrize("split, size", [("train", 100), ("val", 50), ("test", 100)])
def test_splits_have_the_published_sizes_and_every_field(split, size):
    papers = load_aclsum(split)
    assert len(papers) == size
    assert len({p.id for p in papers}) == size
    for paper in papers:
        assert set(paper.summaries) == set(aclsum.ASPECTS)
        assert all(paper.summaries.values()) and paper.sentences["abstract"]


def test_splits_do_not_share_papers():
    ids = [{p.id for p in load_aclsum(s)} for s in aclsum.SPLITS]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def test_first_test_paper_is_read_as_prose():
    paper = load_aclsum("test")[0]
    assert paper.id == "E09-1056"
    assert paper.summaries["challenge"].startswith("Existing machine translation systems")
    assert lead_summary(paper) == (
        "Handling terminology is an important matter in a translation workflow.")
    assert "Machine Translation (MT) systems" in paper.text()


def test_detokenize_joins_punctuation_brackets_and_clitics():
    assert detokenize("However , MT ( e.g. SMT ) does n't work .") == (
        "However, MT (e.g. SMT) doesn't work.")


def test_unknown_split_and_bad_records_are_named(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown ACLSum split 'dev'"):
        load_aclsum("dev")
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "val.jsonl").write_text(json.dumps({"id": "x", "title": "t"}) + "\n")
    monkeypatch.setattr(aclsum, "package_file",
                        lambda package, *parts, **_: str(tmp_path.joinpath(*parts)))
    with pytest.raises(ValueError, match=r"val.jsonl:1: not an ACLSum record.*summary"):
        load_aclsum("val")


def test_paper_text_joins_a_section():
    paper = Paper("id", "t", {}, {"abstract": ["A b.", "C d."]})
    assert paper.text() == "A b. C d."
