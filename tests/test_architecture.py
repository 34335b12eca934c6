"""The dependency direction of docs/architecture.md: no import circle.

Module-level imports only (an import inside a function runs after every
module has loaded, and ``if TYPE_CHECKING:`` blocks never run); importing a
package one belongs to (``from . import __version__``) is not an edge.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "synthinfer"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=1)
def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for sub in node.body if isinstance(node, ast.Try) else [node]:
                if isinstance(sub, ast.ImportFrom) and sub.level:
                    base = package.split(".")[: len(package.split(".")) - (sub.level - 1)]
                    target = ".".join(base + ([sub.module] if sub.module else []))
                    deps |= {t for t in [target, *(f"{target}.{a.name}" for a in sub.names)] if t in paths}
                elif isinstance(sub, ast.ImportFrom | ast.Import):
                    modules = [sub.module] if isinstance(sub, ast.ImportFrom) else [a.name for a in sub.names]
                    deps |= {m for m in modules if m in paths}
        graph[name] = {d for d in deps if not (name == d or name.startswith(d + "."))}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_graph_sees_the_imports():
    graph = _import_graph()
    assert "synthinfer.families" in graph["synthinfer.gmm"]
    assert "synthinfer.solvers" in graph["synthinfer.gmm"]


def test_there_is_no_import_circle():
    assert _cycles(_import_graph()) == []


def test_a_circle_would_be_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_inference_reads_a_fit_only_through_its_protocol():
    graph = _import_graph()
    for name, deps in graph.items():
        if name.startswith("synthinfer.inference"):
            assert not deps & {"synthinfer.gmm", "synthinfer.results"}, name


def test_families_depend_only_on_the_low_level_modules():
    allowed = {"synthinfer.exceptions", "synthinfer.rowblocks", "synthinfer.solvers"}
    for name, deps in _import_graph().items():
        if name.startswith("synthinfer.families"):
            outside = {d for d in deps if not d.startswith("synthinfer.families")}
            assert outside <= allowed, (name, outside - allowed)
