"""ACLSum (Takeshita et al., NAACL 2024), shipped by PyPI ``aclsum==0.1.2``: 250 ACL papers with
three one-sentence summaries each (the challenge, the approach, the outcome), split train 100 /
val 50 / test 100.

The package's own reader needs Python 3.11 and ``sienna``; the split files are plain JSON Lines,
so this module reads them directly (the package is found, not imported). The papers' sentences
come tokenized (``"workflow ."``, ``"( MT )"``); ``detokenize`` joins them back into prose.
"""

import dataclasses
import json
import re

from tfmodels.datasets.packaged import package_file

SPLITS = ("train", "val", "test")
ASPECTS = ("challenge", "approach", "outcome")
SECTIONS = ("abstract", "introduction", "conclusion")
INSTALL_HINT = "pip install --no-deps aclsum==0.1.2"

_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}]|n't|'s|'re|'ve|'m|'ll|'d)")
_SPACE_AFTER = re.compile(r"([(\[{]) ")


@dataclasses.dataclass(frozen=True)
class Paper:
    """One ACLSum paper.

    Args:
        id: the ACL Anthology id (``"E09-1056"``).
        title: the paper's title.
        summaries: ``{aspect: summary}`` for ``challenge``, ``approach`` and ``outcome``.
        sentences: ``{section: [sentence, ...]}`` for ``abstract``, ``introduction`` and
            ``conclusion``, as prose (``detokenize``d).
    """

    id: str
    title: str
    summaries: dict
    sentences: dict

    def text(self, section="abstract"):
        """The section's sentences joined by spaces."""
        return " ".join(self.sentences[section])


def detokenize(sentence):
    """Undoes the corpus' tokenization: no space before closing punctuation and clitics, none
    after opening brackets (``"workflow ."`` -> ``"workflow."``, ``"( MT )"`` -> ``"(MT)"``)."""
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", sentence.strip()))


def _paper(record, where):
    missing = [k for k in ("id", "title", "summary", "sentences") if k not in record]
    missing += [f"summary.{a}" for a in ASPECTS if a not in record.get("summary", {})]
    missing += [f"sentences.{s}" for s in SECTIONS if s not in record.get("sentences", {})]
    if missing:
        raise ValueError(f"{where}: not an ACLSum record, it lacks {missing}")
    return Paper(
        id=record["id"],
        title=record["title"],
        summaries={a: record["summary"][a].strip() for a in ASPECTS},
        sentences={s: [detokenize(t) for t in record["sentences"][s]] for s in SECTIONS},
    )


def load_aclsum(split):
    """The papers of ``split`` (``"train"``, ``"val"`` or ``"test"``) in file order.

    Example:
    >>> papers = load_aclsum("test")  # doctest: +SKIP
    >>> len(papers), sorted(papers[0].summaries)  # doctest: +SKIP
    (100, ['approach', 'challenge', 'outcome'])
    """
    if split not in SPLITS:
        raise ValueError(f"unknown ACLSum split {split!r}; choose one of {SPLITS}")
    path = package_file("aclsum", "dataset", f"{split}.jsonl", install_hint=INSTALL_HINT)
    papers = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if line.strip():
                papers.append(_paper(json.loads(line), f"{path}:{line_number}"))
    return papers


def lead_summary(paper, section="abstract", sentences=1):
    """The lead baseline: the first ``sentences`` sentences of ``section``."""
    return " ".join(paper.sentences[section][:sentences])
