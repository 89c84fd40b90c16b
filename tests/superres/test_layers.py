"""The modules of eoai.superres import each other as a DAG, api.py at the top (eoai issue #14).

Every import is read from the source (``ast``), function-level imports included: a lower layer
that reaches up into ``api`` from inside a function is a cycle as much as a top-level import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import eoai.superres

PACKAGE = "eoai.superres"
FOLDER = Path(eoai.superres.__file__).parent


def _imports(path: Path) -> set[str]:
    """Modules of eoai.superres that ``path`` imports (anywhere in the file)."""
    me = path.stem
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module
            elif node.level == 0 and (node.module or "").startswith(PACKAGE + "."):
                base = node.module[len(PACKAGE) + 1 :]
            elif node.level == 0 and node.module == PACKAGE:
                base = None
            else:
                continue
            if base is None:  # from . import x, y
                found.update(a.name for a in node.names)
            else:
                found.add(base.split(".")[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(PACKAGE + "."):
                    found.add(a.name[len(PACKAGE) + 1 :].split(".")[0])
    return {m for m in found if (FOLDER / f"{m}.py").exists() and m != me}


def graph() -> dict[str, set[str]]:
    return {p.stem: _imports(p) for p in sorted(FOLDER.glob("*.py")) if p.stem != "__init__"}


def _cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``g`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_cycle_finder_finds_a_function_level_cycle(tmp_path):
    """The checker itself: a function-level ``from .api import`` makes a cycle it reports."""
    (tmp_path / "lower.py").write_text("def f():\n    from .api import g\n")
    (tmp_path / "api.py").write_text("from .lower import f\n")
    g = {p.stem: set() for p in tmp_path.glob("*.py")}
    for p in tmp_path.glob("*.py"):
        tree = ast.parse(p.read_text())
        g[p.stem] = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert _cycle(g) in (["api", "lower", "api"], ["lower", "api", "lower"])
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_superres_imports_form_a_dag_with_api_on_top():
    g = graph()
    assert {"api", "wald", "tiling", "weights", "_common"} <= set(g)
    # the shared private helpers are in _common, which imports no other layer but bands
    assert g["_common"] <= {"bands"}, g["_common"]
    assert _cycle(g) is None, f"import cycle in eoai.superres: {' -> '.join(_cycle(g))}"
    above_api = sorted(m for m, deps in g.items() if "api" in deps)
    assert above_api == [], f"{above_api} import eoai.superres.api: only the package may"
