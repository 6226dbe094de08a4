"""The package's floors: no module imports one above its own (function-level imports included;
imports for type checking only are not imports). A newcomer reads upwards from the helpers.

Floors, lowest first (a module's floor is that of the longest prefix listed):
0. helpers: atomic, cache, text, objective, schedule, interrupt, reaper, plots, diagnostics;
1. the config (with the loss kinds' table, `infgan.config.kinds`, which says which kinds train a
   critic without importing training code);
2. data, models, metrics, resource limits, output checks, the Ray cluster connection;
3. training (`infgan.train`, the loss kinds with it) and W&B (run tracking, a W&B agent's overrides);
4. sweeps (`infgan.tune`, W&B's sweep engine and sweep file among its searchers and schedulers);
5. command handlers;
6. the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "infgan"

FLOORS = {
    "infgan.atomic": 0,
    "infgan.cache": 0,
    "infgan.text": 0,
    "infgan.objective": 0,
    "infgan.schedule": 0,
    "infgan.interrupt": 0,
    "infgan.reaper": 0,
    "infgan.plots": 0,
    "infgan.diagnostics": 0,
    "infgan.config": 1,
    "infgan.data": 2,
    "infgan.models": 2,
    "infgan.metrics": 2,
    "infgan.limits": 2,
    "infgan.outputs": 2,
    "infgan.cluster": 2,
    "infgan.train": 3,
    "infgan.wandb": 3,
    "infgan.tune": 4,
    "infgan.commands": 5,
    "infgan.cli": 6,
    "infgan.__main__": 6,
    "infgan.__init__": 6,
}


def floor(module: str) -> int:
    """The floor of a dotted module name (`pkg.__init__` for a package's own file)."""
    for name in (module, module + ".__init__"):
        if name in FLOORS:
            return FLOORS[name]
    parts = module.split(".")
    for n in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in FLOORS:
            return FLOORS[prefix]
    raise KeyError(f"{module}: no floor; add it to FLOORS in tests/test_layers.py")


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every infgan import, skipping `if TYPE_CHECKING:` blocks."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "infgan":
            for alias in node.names:  # `from infgan import metrics` imports the module infgan.metrics
                sub = f"{node.module}.{alias.name}"
                file = ROOT.parent / sub.replace(".", "/")
                found.append((node.lineno, sub if file.is_dir() or file.with_suffix(".py").exists() else node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "infgan")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def test_every_module_has_a_floor():
    for path in _modules():
        floor(".".join(path.relative_to(ROOT.parent).with_suffix("").parts))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_import_climbs_above_its_floor(path):
    module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
    own = floor(module)
    above = [
        f"line {line}: {name} (floor {floor(name)})"
        for line, name in _imports(ast.parse(path.read_text()))
        if floor(name) > own
    ]
    assert not above, f"{module} (floor {own}) imports from above it: {'; '.join(above)}"


def _module_of(name: str) -> str:
    """The module file an import names: a package's own file is `pkg.__init__`."""
    file = ROOT.parent / name.replace(".", "/")
    return f"{name}.__init__" if file.is_dir() else name


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _modules():
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        graph[module] = {_module_of(name) for _, name in _imports(ast.parse(path.read_text()))} - {module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_function_level_imports_included():
    assert _cycles(_import_graph()) == []


def test_the_circle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
