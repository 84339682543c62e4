"""The training package's shape: the lowest layer imports no other package, no module over 500 lines, no
import cycle between its modules."""

from __future__ import annotations

import ast
from pathlib import Path

import training

PACKAGE = Path(training.__file__).parent
HIGHER_LAYERS = {"indexing", "service", "eval", "deploy"}


def _imports(path: Path) -> list[str]:
    """Modules imported at run time (imports under ``if TYPE_CHECKING:`` are for type checkers only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
        for node in ast.walk(block)
    }
    nodes = [n for n in ast.walk(tree) if id(n) not in typing_only]
    names = [a.name for n in nodes if isinstance(n, ast.Import) for a in n.names]
    return names + [n.module or "" for n in nodes if isinstance(n, ast.ImportFrom) and not n.level]


def test_training_imports_no_higher_layer() -> None:
    for path in PACKAGE.glob("*.py"):
        bad = [m for m in _imports(path) if m.split(".")[0] in HIGHER_LAYERS]
        assert not bad, f"{path.name} imports {bad}"


def test_no_module_over_500_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.glob("*.py")}
    assert max(sizes.values()) <= 500, sizes


def test_no_import_cycle_between_training_modules() -> None:
    graph = {
        p.stem: {m.split(".")[1] for m in _imports(p) if m.startswith("training.")}
        for p in PACKAGE.glob("*.py")
    }

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    cycles = sorted(m for m in graph if reaches(m, m, {m}))
    assert not cycles, f"modules on an import cycle: {cycles}"
