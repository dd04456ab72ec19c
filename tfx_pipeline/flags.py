"""Command-line flag types and `Flag`, a flag declared once and added to a parser (the core's and the tasks').

Standard library only, so that `--help` and flag errors come before TensorFlow.
"""

import argparse
import dataclasses
import os
from typing import Any, Dict, Tuple


@dataclasses.dataclass(frozen=True)
class Flag:
    """`parser.add_argument(*names, **kwargs)`, as a value: tasks list the flags they read, and a flag two tasks
    share (e.g. `--encoder`) is one `Flag` object, added once."""

    names: Tuple[str, ...]
    kwargs: Dict[str, Any]

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest") or self.names[0].lstrip("-").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(*self.names, **self.kwargs)


def flag(*names: str, **kwargs) -> Flag:
    return Flag(tuple(names), kwargs)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def threshold(top: float):
    """A blessing threshold in [0, top]; up to 1% above `top` is allowed: a threshold no model reaches, for
    "never bless" runs."""

    def parse(text: str) -> float:
        value = float(text)
        if not 0 <= value <= top * 1.01:
            raise argparse.ArgumentTypeError(f"must be in [0, {top:g}], got {text}")
        return value

    return parse


fraction = threshold(1.0)


def directory(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return text


def vocab_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text} is not a file (a WordPiece vocabulary, one token a line)")
    return text


def beam_arg(text: str) -> str:
    if not text.startswith("--"):
        raise argparse.ArgumentTypeError(f"a Beam argument starts with --, got {text!r} "
                                         f"(write --beam-arg=--name=value)")
    return text
