"""The task registry (`tfx_pipeline.tasks`): every record complete and consistent, `TASKS` and the compressible
tasks derived from it, and no module of the pipeline outside `tfx_pipeline/tasks/` naming a task."""

import ast
import dataclasses
import json
import os

import pytest

from tfx_pipeline import tasks
from tfx_pipeline.tasks.base import Options, Task

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(tasks.__file__)))  # tfx_pipeline/
# What code outside tfx_pipeline/tasks/ may import of it: the registry and the shared base, never a task's module.
SHARED = {"tfx_pipeline.tasks", "tfx_pipeline.tasks.base"}
TASK_MODULES = {name for name in os.listdir(os.path.dirname(tasks.__file__)) if name.endswith(".py")}


def _docstrings(tree):
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def task_name_uses(source: str, names=tasks.TASKS):
    """`(line, what)` for each place in `source` that names a task: a string equal to a task name outside
    docstrings (a comparison, a membership test, a dict key, a default), or an import of a task's module."""
    tree = ast.parse(source)
    docstrings, task_modules = _docstrings(tree), {name[:-3] for name in TASK_MODULES} - {"__init__", "base"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings:
            found.append((node.lineno, f"the task name {node.value!r}"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfx_pipeline.tasks"):
            modules = [node.module] if node.module != "tfx_pipeline.tasks" else [
                f"tfx_pipeline.tasks.{alias.name}" for alias in node.names if alias.name in task_modules]
            found += [(node.lineno, f"an import of {m}") for m in modules if m not in SHARED]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, f"an import of {alias.name}") for alias in node.names
                      if alias.name.startswith("tfx_pipeline.tasks.") and alias.name not in SHARED]
    return sorted(found)


def test_the_check_finds_what_it_looks_for():
    source = ('"""A docstring may say classify."""\n'
              'if config.task == "translate":\n    pass\n'
              'compressible = args.task in ("classify", "span_qa")\n'
              'from tfx_pipeline.tasks import span_qa, base\n'
              'from tfx_pipeline.tasks.token_classification import NAME\n'
              'from tfx_pipeline.tasks.base import gate\n')
    assert task_name_uses(source) == [
        (2, "the task name 'translate'"), (4, "the task name 'classify'"), (4, "the task name 'span_qa'"),
        (5, "an import of tfx_pipeline.tasks.span_qa"),
        (6, "an import of tfx_pipeline.tasks.token_classification")]


def test_no_module_outside_the_tasks_package_names_a_task():
    places = []
    for directory, _, files in os.walk(PACKAGE):
        if os.path.abspath(directory).startswith(os.path.dirname(os.path.abspath(tasks.__file__))):
            continue
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as f:
                    places += [f"{os.path.relpath(path, PACKAGE)}:{line}: {what}"
                               for line, what in task_name_uses(f.read())]
    assert not places, "look the task up in tfx_pipeline.tasks instead:\n" + "\n".join(places)


def test_task_names_and_compressible_tasks_come_from_the_registry():
    assert tasks.TASKS == tuple(tasks.REGISTRY) == tuple(task.name for task in tasks.REGISTRY.values())
    assert tasks.DEFAULT_TASK == tasks.TASKS[0]
    assert tasks.COMPRESSIBLE_TASKS == tuple(t.name for t in tasks.REGISTRY.values() if t.compressible)
    assert set(tasks.COMPRESSIBLE_TASKS) < set(tasks.TASKS)
    with pytest.raises(ValueError, match="task must be one of"):
        tasks.get("ner")


@pytest.mark.parametrize("name", tasks.TASKS)
def test_each_record_is_complete(name, tmp_path):
    from tfx_pipeline.__main__ import build_parser
    from tfx_pipeline.cli import check_args, config_from_args
    from tfx_pipeline.demo import parse_args as demo_args

    task = tasks.get(name)
    assert isinstance(task, Task) and task.name == name
    optional = {"prepare", "not_blessed_hint"}
    for field in dataclasses.fields(Task):
        assert field.name in optional or getattr(task, field.name) is not None, field.name
    assert issubclass(task.options, Options) and task.options.__dataclass_params__.frozen
    assert task.summary and task.data_name and task.flags

    # The options the flags' defaults give: checked, JSON both ways, and gated on one metric at the flag's threshold.
    parser = build_parser()
    args = check_args(parser, parser.parse_args(["run", "--root", str(tmp_path), "--data-root", str(tmp_path),
                                                  "--task", name, "--tag", "B-x"]))
    config = config_from_args(args)
    assert type(config.options) is task.options
    assert task.options.from_json(json.loads(json.dumps(config.options.to_json()))) == config.options
    metric, threshold = config.gate()
    gate_flags = [f for f in dataclasses.fields(task.options) if f.metadata.get("gate")]
    assert len(gate_flags) == 1 and threshold == pytest.approx(getattr(config.options, gate_flags[0].name))
    assert metric and config.learning_rate > 0

    # The demo's defaults are flags of the demo, and take effect.
    demo_parsed = demo_args(["--task", name])
    assert {key: getattr(demo_parsed, key) for key in task.demo.defaults} == task.demo.defaults
    assert demo_parsed.root == task.demo.root


def test_flags_two_tasks_share_say_which_tasks_read_them():
    flags = {flag.names[0]: flag for flag in tasks.flags()}
    assert len(flags) == len(tasks.flags())  # each once
    readers = [t.name for t in tasks.REGISTRY.values() if any(f.names[0] == "--min-f1" for f in t.flags)]
    assert len(readers) >= 2 and all(f"{name}:" in flags["--min-f1"].kwargs["help"] for name in readers)
    assert flags["--quantize"].kwargs["help"].startswith(", ".join(tasks.COMPRESSIBLE_TASKS) + ":")
