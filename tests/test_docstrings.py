"""Docstring examples run, and public classes document themselves in one dialect.

Every ``>>>`` example in ``tfmodels``, ``tfx_pipeline`` and ``serving`` runs as a doctest (one
test per module). Only modules whose source has an example are imported, so the pipeline and
server packages cost nothing until they grow one. The dialect is Google style: ``Args:``,
``Returns:``, ``Call args:``, ``Example:`` followed by ``>>>`` lines.
"""

import doctest
import importlib
import inspect
import pathlib
import re

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("tfmodels", "tfx_pipeline", "serving")
# The API: registered layers/models and the config classes of these packages each have Args (when
# they take any) and an Example (internal helpers and unregistered base classes are exempt).
API_PACKAGES = ("tfmodels.layers", "tfmodels.models", "tfmodels.text")
# Other dialects' section headers, and our own old spelling of "Call args:".
FOREIGN_SECTIONS = re.compile(
    r"^\s*(Parameters\n\s*-{3,}|Returns\n\s*-{3,}|:param |Call arguments:|Arguments:)", re.M
)


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(with_examples_only):
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "__main__.py":
                continue
            if with_examples_only and ">>>" not in path.read_text(encoding="utf-8"):
                continue
            yield _module_name(path)


@pytest.mark.parametrize("name", list(_modules(with_examples_only=True)))
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name) if t.examples]
    assert tests, f"{name} has '>>>' in its source but no doctest was found"
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in {name}"


def _api_classes():
    for name in _modules(with_examples_only=False):
        if not name.startswith(API_PACKAGES):
            continue
        module = importlib.import_module(name)
        for cls_name, cls in vars(module).items():
            if not inspect.isclass(cls) or cls.__module__ != name or cls_name.startswith("_"):
                continue
            registered = keras.saving.get_registered_name(cls).startswith("tfmodels>")
            if registered or cls_name.endswith("Config"):
                yield f"{name}.{cls_name}", cls


def test_public_classes_have_args_and_a_running_example():
    classes = dict(_api_classes())
    assert "tfmodels.layers.dense.Dense" in classes and "tfmodels.models.bert.config.BertConfig" in classes
    problems = []
    for qualified, cls in classes.items():
        doc = inspect.getdoc(cls) or ""
        if "Example:" not in doc or ">>>" not in doc.split("Example:", 1)[-1]:
            problems.append(f"{qualified}: no 'Example:' with '>>>' lines")
        parameters = [
            p for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]
        if parameters and "Args:" not in doc:
            problems.append(f"{qualified}: takes {[p.name for p in parameters]} but has no 'Args:'")
        if FOREIGN_SECTIONS.search(doc):
            problems.append(f"{qualified}: {FOREIGN_SECTIONS.search(doc).group(1)!r} is not our dialect")
    assert not problems, "\n".join(problems)
