"""The architecture, checked: imports run one way (training < indexing < service < eval, deploy), no module
cycles, no dynamic imports outside the composition root (``service.cli``), no module over 500 lines.

Every import statement counts, also those inside functions: a lazy import is still an edge.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYER = {"training": 0, "indexing": 1, "service": 2, "eval": 3, "deploy": 3}
COMPOSITION_ROOT = "service.cli"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for package in LAYER:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, resolved to a module we own when possible."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in MODULES else base, node.lineno))
    return [(m, line) for m, line in found if m.split(".")[0] in LAYER]


def _is_root(name: str) -> bool:
    return name == COMPOSITION_ROOT or name.startswith(COMPOSITION_ROOT + ".")


def test_every_package_imports_only_packages_to_its_left() -> None:
    upward = []
    for name, path in MODULES.items():
        if _is_root(name):
            continue
        mine = name.split(".")[0]
        for target, line in _imports(name, path):
            theirs = target.split(".")[0]
            if theirs != mine and LAYER[theirs] >= LAYER[mine]:
                upward.append(f"{path.relative_to(REPO)}:{line} imports {target}")
            if _is_root(target):
                upward.append(f"{path.relative_to(REPO)}:{line} imports the composition root {target}")
    assert upward == []


def test_no_module_import_cycles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for target, _ in _imports(name, path):
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name and MODULES[target].name != "__init__.py":
                graph[name].add(target)
    cycles = _strongly_connected(graph)
    assert [sorted(c) for c in cycles if len(c) > 1] == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm (iterative enough for a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            out.append(component)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_dynamic_imports_outside_the_composition_root() -> None:
    dynamic = []
    for name, path in MODULES.items():
        if _is_root(name):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            called = node.func if isinstance(node, ast.Call) else None
            label = ast.unparse(called) if called is not None else ""
            if label in ("__import__", "importlib.import_module", "import_module") or (
                isinstance(node, ast.Import) and any(a.name == "importlib" for a in node.names)
            ):
                dynamic.append(f"{path.relative_to(REPO)}:{node.lineno} {label or 'import importlib'}")
    assert dynamic == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_500_lines(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(REPO)} has {lines} lines; split it by job"


def test_the_console_script_is_the_composition_root() -> None:
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"imprint": f"{COMPOSITION_ROOT}:app"}


def test_the_checker_sees_edges() -> None:
    """The checks above would pass vacuously if import resolution broke: known edges must be found, lazy
    (in-function) imports included."""
    assert "training.text" in {m for m, _ in _imports("service.routing", MODULES["service.routing"])}
    assert "service.state" in {m for m, _ in _imports("eval.modes", MODULES["eval.modes"])}  # inside a method
    assert "service.routes.kb" in {m for m, _ in _imports("service.app", MODULES["service.app"])}
