"""Collect the docstring examples of the eoai package as tests (``python -m pytest`` runs them).

pytest's ``--doctest-modules`` would also import every file under ``tests/`` as a doctest module,
which collides with the sub-folders' own ``conftest.py`` files; so the examples are collected here,
for ``eoai/`` only (``testpaths`` in pyproject.toml names it). Passing ``--doctest-modules`` by hand
still works: pytest's own collector then takes over and this hook steps aside.
"""

from __future__ import annotations

from pathlib import Path

from _pytest.doctest import DoctestModule

PACKAGE = Path(__file__).resolve().parent / "eoai"

#: Modules whose examples are not run for now, relative to the package, each with the reason
#: (shrink this list once their examples pass fast again). Also applies with --doctest-modules.
DOCTEST_SKIP: dict[str, str] = {}


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix != ".py" or PACKAGE not in file_path.resolve().parents:
        return None
    if parent.config.option.doctestmodules:
        return None  # pytest's doctest plugin collects it
    return DoctestModule.from_parent(parent, path=file_path)


def pytest_ignore_collect(collection_path: Path, config):
    path = collection_path.resolve()
    if PACKAGE in path.parents and path.relative_to(PACKAGE).as_posix() in DOCTEST_SKIP:
        return True
    return None
