"""The project's import graph: no cycles, and data flows one way (tfmodels <- tfx_pipeline; serving alone).

The graph is read from the source with ``ast`` (nothing is imported), function-level imports
included, since a cycle through a lazy import still couples the two modules.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("tfmodels", "tfx_pipeline", "serving")


def _module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root, packages):
    return {
        _module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }


def _resolve(name, modules):
    """The longest prefix of the dotted ``name`` that is one of our modules, or None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imports(module, path, modules):
    """Our modules that ``module`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from package import submodule`` depends on the submodule only (the package is
            # imported first anyway); ``from package import name`` depends on the package.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target and target != module:
                found.add(target)
    return found


def import_graph(root=ROOT, packages=PACKAGES):
    """``{module: set of our modules it imports}`` for every module of ``packages``."""
    modules = _modules(root, packages)
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def find_cycle(graph):
    """One cycle as a list of modules ``[a, b, ..., a]``, or None (iterative DFS)."""
    state = {}  # module -> 1 on the current path, 2 finished
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(sorted(graph.get(child, ()))))
    return None


def test_the_walker_sees_every_kind_of_import(tmp_path):
    files = {
        "pkg/__init__.py": "from pkg.a import f\n",
        "pkg/a.py": "from . import b\nimport os\n",
        "pkg/b.py": "def g():\n    from .sub import c  # function-level\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "import pkg.a\nfrom ..b import g\nfrom pkg import f\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.sub.c"},
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg", "pkg.a", "pkg.b"},
    }
    assert find_cycle(graph) == ["pkg", "pkg.a", "pkg.b", "pkg.sub.c", "pkg"]
    # The real graph is not empty: the walker reads our tree.
    assert "tfmodels.export.signatures" in import_graph()["tfmodels.export.classifier"]


def test_find_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize(
    "package, forbidden",
    [("tfmodels", ("tfx_pipeline", "serving")), ("serving", ("tfmodels", "tfx_pipeline"))],
)
def test_dependencies_flow_one_way(package, forbidden):
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] in forbidden
    )
    assert not bad, bad
