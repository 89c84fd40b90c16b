"""eoai's modules import each other as a DAG (eoai issue #14): no import cycle anywhere.

Every import is read from the source (``ast``), function-level imports included: a lower layer
that reaches up from inside a function is a cycle as much as a top-level import. Package
``__init__`` modules are left out as targets (they load their submodules lazily by name), so an
edge means "this module needs that module's code".
"""

from __future__ import annotations

import ast
from pathlib import Path

import eoai

ROOT = Path(eoai.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = ["eoai", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def graph() -> dict[str, set[str]]:
    """Module -> the eoai modules (not packages) it imports anywhere in its source."""
    mods = _modules()
    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        out[name] = {m for m in found if m in mods and m != name and mods[m].name != "__init__.py"}
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
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
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    g = graph()
    assert len(g) > 100  # every module was read
    bad = cycles(g)
    detail = "; ".join(
        " , ".join(f"{a} -> {b}" for a in comp for b in sorted(g[a] & set(comp))) for comp in bad
    )
    assert not bad, f"import cycles (edges within each): {detail}"


def test_the_check_finds_a_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]


def test_private_deep_parts_sit_below_the_public_module():
    g = graph()
    for part in ("_deep_io", "_deep_segment", "_deep_fusion", "_deep_utae", "_deep_model"):
        assert "eoai.ml.deep" not in g[f"eoai.ml.{part}"], part
    assert "eoai.ml.persist" not in g["eoai.ml.presto.head"] | g["eoai.ml.presto.model"]
