"""The examples' and benchmarks' command lines: --help shows every flag's default; a wrong value fails at once
naming the flag (before any data is read or model built)."""

import importlib.util
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _module(name):
    if name.startswith("bench/"):
        spec = importlib.util.spec_from_file_location(name.replace("/", "_")[:-3], os.path.join(REPO, name))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(name)


def _entry(module):
    return getattr(module, "parse_args", None) or module.main


COMMANDS = {"tfmodels.examples.quickstart": "--batch-size", "tfmodels.examples.translate": "--epochs",
            "tfmodels.examples.pretrain_bert": "--pretrain-steps", "bench/bert_train.py": "--rounds",
            "bench/generate.py": "--beam-width", "tfmodels.examples.multi_worker": "--steps-per-epoch"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_shows_every_default_and_a_bad_value_names_the_flag(name, capsys):
    entry = _entry(_module(name))
    with pytest.raises(SystemExit) as exit_info:
        entry(["--help"])
    assert exit_info.value.code == 0
    options = capsys.readouterr().out.split("options:")[1]
    for block in re.split(r"\n  (?=-)", options)[1:]:
        if block.startswith("-h,"):
            continue
        assert "default" in block, block
    flag = COMMANDS[name]
    with pytest.raises(SystemExit) as exit_info:
        entry([flag, "0"])
    assert exit_info.value.code == 2
    assert f"argument {flag}: must be > 0, got 0" in capsys.readouterr().err
