"""The production notebook runs unchanged on the clusters people have, and gives the same maps.

- dask-gateway (JupyterHub): a real gateway server on 127.0.0.1 (fixture in conftest.py);
- dask-jobqueue (SLURM on HPC): the job script the notebook's settings give, and the same
  JobQueueCluster machinery with jobs run as local processes (``dask_jobqueue.LocalCluster``);
- a ``distributed.LocalCluster`` of processes is the default case of tests/notebooks.

Each run must write the same class map as the threaded scheduler computes in this process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "08_production_run.ipynb"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def threaded_result():
    """The notebook's job computed here with dask threads (quick settings)."""
    import eoai
    import eoai.ml
    from eoai.datasets import sample_catalog, sample_labels

    items = eoai.search(sample_catalog(), collections=["slovenia-ndvi"], datetime="2016")
    cube = eoai.load(items, bands=["ndvi"], chunks={"x": 32, "y": 32})
    filled = cube.ndvi.eoai.gapfill("whittaker", freq="10D")
    features = filled.to_dataset(name="ndvi")
    samples = features.eoai.extract(sample_labels(), label="class")
    model = eoai.ml.fit(samples, "rf", n_estimators=50, threads=1)
    classes = features.eoai.classify(model, threads=1)["class"].compute(scheduler="threads")
    sos = filled.eoai.phenology(threshold=0.5)["sos"].compute(scheduler="threads")
    return classes, sos


def _run(tmp_path: Path, **parameters) -> Path:
    import papermill as pm

    out = tmp_path / "run"
    pm.execute_notebook(
        str(NOTEBOOK), str(tmp_path / NOTEBOOK.name),
        parameters={"quick": True, "out": str(out), **parameters},
        cwd=str(NOTEBOOK.parent), kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    return out


def _check_outputs(out: Path, threaded_result) -> None:
    classes, sos = threaded_result
    with rasterio.open(out / "classes.tif") as src:
        written = src.read(1)
        assert src.crs.to_epsg() == classes.odc.crs.epsg
    np.testing.assert_array_equal(written, classes.values)
    assert (out / "classes.qml").is_file()
    store = xr.open_zarr(out / "phenology.zarr")
    np.testing.assert_array_equal(store["sos"].values, sos.values)


def test_notebook_on_dask_gateway(dask_gateway, tmp_path, threaded_result):
    url, password = dask_gateway
    out = _run(tmp_path, cluster="gateway", gateway_address=url, gateway_password=password)
    _check_outputs(out, threaded_result)


def test_notebook_on_dask_jobqueue(tmp_path, threaded_result):
    pytest.importorskip("dask_jobqueue")
    out = _run(tmp_path, cluster="jobqueue-local")
    _check_outputs(out, threaded_result)


def test_slurm_job_script_of_the_notebook_settings():
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    with dask_jobqueue.SLURMCluster(
        cores=1, processes=1, memory="1.5GB", queue="cpu", account="eo-lab", walltime="02:00:00",
        scheduler_options={"host": "127.0.0.1", "dashboard_address": None},
    ) as cluster:  # fmt: skip
        script = cluster.job_script()
    assert "#SBATCH -p cpu" in script
    assert "#SBATCH -A eo-lab" in script
    assert "#SBATCH -t 02:00:00" in script
    assert "#SBATCH --cpus-per-task=1" in script and "--nthreads 1" in script
    assert "--memory-limit 1.40GiB" in script
