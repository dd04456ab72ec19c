"""Command-line helpers of the example scripts and benchmarks (standard library only)."""

import argparse
from typing import Sequence


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):  # a help that already says its default keeps its own words
        return action.help if "default" in (action.help or "") else super()._get_help_string(action)


def parser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser whose --help shows every flag's default."""
    return argparse.ArgumentParser(description=description, formatter_class=_DefaultsFormatter)


def require_positive(parser_: argparse.ArgumentParser, args: argparse.Namespace, names: Sequence[str],
                     allow_zero: Sequence[str] = ()) -> argparse.Namespace:
    """`parser_.error` naming the first flag in `names` whose value is not > 0 (>= 0 for `allow_zero`)."""
    for name in names:
        value = getattr(args, name)
        if value < 0 or (value == 0 and name not in allow_zero):
            bound = ">= 0" if name in allow_zero else "> 0"
            parser_.error(f"argument --{name.replace('_', '-')}: must be {bound}, got {value}")
    return args
