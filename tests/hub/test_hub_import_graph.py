"""bridge.hub's modules import each other without cycles (TYPE_CHECKING imports count):
the verbs see the server only through protocols (HubState, CommandSink)."""

from __future__ import annotations

import ast
from pathlib import Path

import bridge.hub

PACKAGE = Path(bridge.hub.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """Sibling modules of ``bridge.hub`` that ``path`` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("bridge.hub."):
                found.add(node.module.split(".")[2])
    return found


def test_no_import_cycle_inside_bridge_hub():
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path) & set(modules) for name, path in modules.items()}
    cycles = []

    def visit(name: str, stack: list[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in stack:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif len(stack) < len(graph):
                visit(dep, stack + [dep])

    for name in sorted(graph):
        visit(name, [name])
    assert not cycles, f"import cycles in bridge.hub: {cycles}"
    assert {"verbs", "perms", "command"} <= graph["server"]  # the graph is real
    assert "server" not in graph["verbs"] | graph["perms"] | graph["command"]
