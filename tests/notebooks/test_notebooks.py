"""Every notebook in notebooks/ and tutorials/ runs under papermill with quick=True.

Each runs with its own folder as working directory (like ``papermill --cwd``); a failure shows the
failing cell and error. The notebooks must follow the convention: valid nbformat v4, no committed
outputs, first code cell tagged ``parameters`` defining ``quick``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(
    p for folder in ("notebooks", "tutorials") for p in (ROOT / folder).glob("*.ipynb")
)


#: Notebooks executed by another test, with their outputs checked (run here too, they would cost
#: CI time for no further check); their structure is still checked here.
RUN_ELSEWHERE = {
    "08_production_run.ipynb": "executed twice by tests/cluster/test_clusters.py (dask-gateway and "
    "dask-jobqueue clusters of processes), its COG and Zarr outputs compared with a threaded run",
}


def test_there_are_notebooks_and_tutorials():
    folders = {p.parent.name for p in NOTEBOOKS}
    assert {"notebooks", "tutorials"} <= folders


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.name}" for p in NOTEBOOKS])
def test_notebook_runs_with_quick_true(path: Path, tmp_path: Path):
    import papermill as pm

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    assert "parameters" in code[0].metadata.get("tags", []), (
        f"{path.name}: the first code cell must be tagged 'parameters'"
    )
    assert "quick" in code[0].source, f"{path.name}: the parameters cell must define quick"
    assert all(not c.get("outputs") for c in code), f"{path.name} has committed outputs"
    if path.name in RUN_ELSEWHERE:
        pytest.skip(RUN_ELSEWHERE[path.name])
    parameters: dict = {"quick": True}
    names = {line.split("=")[0].strip() for line in code[0].source.splitlines() if "=" in line}
    for folder in {"maps_folder", "out"} & names:  # outputs go to the test's folder, not the repo
        parameters[folder] = str(tmp_path / folder)
    try:
        pm.execute_notebook(
            str(path),
            str(tmp_path / path.name),
            parameters=parameters,
            cwd=str(path.parent),
            kernel_name="python3",
            progress_bar=False,
        )
    except pm.PapermillExecutionError as err:
        pytest.fail(
            f"{path.parent.name}/{path.name} failed at In [{err.exec_count}]:\n{err.source}\n"
            f"{err.ename}: {err.evalue}",
            pytrace=False,
        )
