"""The layout of ``web/``: no import circle. Every import between modules of ``web`` is read
with ``ast`` (including imports inside functions, the usual way to hide a circle), and the
graph must have no cycle: a module never imports, directly or through others, a module that
imports it back. The workflow is used only through its public API (``from workflow import``).
"""

from __future__ import annotations

import ast
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"


def _module_name(path: Path) -> str:
    parts = path.relative_to(WEB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(WEB.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``web`` that the module ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            # ``from web import pages`` imports the module web.pages.
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as the list of its modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_checker_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_web_has_no_import_cycle() -> None:
    graph = import_graph()
    assert graph.get("web.app"), "the import graph was not read"
    cycle = find_cycle(graph)
    assert cycle is None, "import circle in web/: " + " -> ".join(cycle or [])


def test_problems_know_nothing_of_the_pages() -> None:
    graph = import_graph()
    assert not {m for m in graph["web.problems"] if m.startswith("web.pages")}


def test_workflow_only_through_its_public_api() -> None:
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workflow."):
                raise AssertionError(f"{name} imports {node.module}; use 'from workflow import'")
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("workflow."), (name, alias.name)
