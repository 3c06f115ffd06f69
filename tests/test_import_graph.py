"""The bridge's modules import each other without cycles, anywhere in the package.

Every import counts, also those under ``TYPE_CHECKING`` and inside functions: a module
that needs another only for a type names it through a protocol instead. ``from pkg
import sub`` is an edge to the submodule ``sub``, not to the package's ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bridge

ROOT = Path(bridge.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = ["bridge", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """The bridge modules that module ``name`` imports."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                full = f"{base}.{node.module}" if node.module else base
            else:
                full = node.module or ""
            for alias in node.names:
                if f"{full}.{alias.name}" in MODULES:
                    found.add(f"{full}.{alias.name}")
                elif full in MODULES:
                    found.add(full)
    return found - {name}


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_is_real():
    assert "bridge.legacy.command" in GRAPH["bridge.legacy.actor"]
    assert {"bridge.hub.verbs", "bridge.hub.perms"} <= GRAPH["bridge.hub.server"]
    assert "bridge.service.monitoring" in GRAPH["bridge.service.bridge"]


def test_no_import_cycle_in_the_bridge_package():
    assert _cycles(GRAPH) == []
