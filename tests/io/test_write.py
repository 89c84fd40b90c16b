"""eoai.write: COG (class maps for QGIS) and Zarr, region by region, resumable after SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr

import eoai
import eoai.viz.colours
from eoai._attrs import netcdf_attrs
from eoai.errors import (
    CRSError,
    DataSkippedWarning,
    EoaiError,
    InputError,
    MissingDimensionError,
    ResumeMismatchError,
    TargetExistsError,
    WriteError,
)
from eoai.io.write import serialisable_attrs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import write_cases  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::eoai.errors.DataSkippedWarning")


@pytest.fixture(scope="module", autouse=True)
def _threads():
    with dask.config.set(scheduler="threads", num_workers=2):
        yield


@pytest.fixture(scope="module")
def classes():
    return write_cases.classes(32)  # 4 regions of 16 x 16 px


@pytest.fixture(scope="module")
def ndvi():
    return write_cases.ndvi(32).isel(time=slice(0, 3))


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def zarr_digest(store: Path) -> dict[str, str]:
    """sha256 of every array's values and attrs, and of the group attrs (the ledger is no array)."""
    group = zarr.open_group(str(store), mode="r")
    out = {
        "attrs": hashlib.sha256(json.dumps(dict(group.attrs), sort_keys=True).encode()).hexdigest()
    }
    for name, arr in sorted(group.arrays()):
        values = np.ascontiguousarray(arr[...])
        out[name] = hashlib.sha256(values.tobytes() + str(values.dtype).encode()).hexdigest()
        out[name + ".attrs"] = hashlib.sha256(
            json.dumps(dict(arr.attrs), sort_keys=True).encode()
        ).hexdigest()
    return out


def tiff_ifds(path: Path) -> list[dict[str, int]]:
    """Walk the (classic, little-endian) TIFF IFD chain: offset, width and first/last tile offsets."""
    data = path.read_bytes()
    assert data[:4] == b"II*\x00", "expected a classic little-endian TIFF"
    (offset,) = struct.unpack_from("<I", data, 4)
    sizes = {3: 2, 4: 4, 16: 8}
    ifds = []
    while offset:
        (n,) = struct.unpack_from("<H", data, offset)
        tags = {}
        for i in range(n):
            tag, typ, count, value = struct.unpack_from("<HHII", data, offset + 2 + 12 * i)
            if tag in (256, 324):
                if count * sizes.get(typ, 4) <= 4:
                    vals = [value]
                else:
                    fmt = "<" + ("H" if typ == 3 else "I") * count
                    vals = list(struct.unpack_from(fmt, data, value))
                tags[tag] = vals
        ifds.append(
            {"ifd": offset, "width": tags[256][0], "first_tile": min(tags[324]),
             "last_tile": max(tags[324])}
        )  # fmt: skip
        (offset,) = struct.unpack_from("<I", data, offset + 2 + 12 * n)
    return ifds


def assert_cog_layout(path: Path) -> None:
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.overviews(1), "no overviews"
        assert src.profile["tiled"]
    ifds = tiff_ifds(path)
    assert len(ifds) == 1 + len(rasterio.open(path).overviews(1))
    widths = [i["width"] for i in ifds]
    assert widths == sorted(widths, reverse=True), "full resolution first, then smaller overviews"
    # every IFD before any pixel data; pixel data of the smallest overview first, full res last
    assert max(i["ifd"] for i in ifds) < min(i["first_tile"] for i in ifds)
    firsts = [i["first_tile"] for i in ifds]
    assert firsts == sorted(firsts, reverse=True)


# --------------------------------------------------------------------------------------------
# attributes
# --------------------------------------------------------------------------------------------


def test_serialisable_attrs_encodes_what_netcdf_and_zarr_refuse(tmp_path):
    attrs = {
        "params": {"k": 1, "nested": [1, None]}, "none": None, "flag": True, "mixed": [1, "a"],
        "empty": [], "ints": np.array([1, 2], dtype="int16"), "names": ["a", "b"],
        "scalar": np.float32(0.5), "when": np.datetime64("2021-05-01"), "bools": [True, False],
    }  # fmt: skip
    out = serialisable_attrs(attrs)
    assert json.loads(out["params"]) == {"k": 1, "nested": [1, None]}
    # the package's one convention (eoai._attrs.netcdf_attrs): booleans 0/1, dates ISO 8601
    assert json.loads(out["none"]) is None and out["flag"] == 1
    assert json.loads(out["mixed"]) == [1, "a"] and json.loads(out["empty"]) == []
    assert out["ints"] == [1, 2] and out["names"] == ["a", "b"] and out["scalar"] == 0.5
    assert out["when"].startswith("2021-05-01") and out["bools"] == [1, 0]
    assert out == netcdf_attrs(attrs)
    da = xr.DataArray(np.zeros((2, 2), "float32"), dims=("y", "x"), attrs=attrs, name="v")
    with pytest.raises((TypeError, ValueError)):  # the raw attrs really are refused by netCDF
        da.to_netcdf(tmp_path / "raw.nc", engine="h5netcdf")
    da.attrs = out
    da.to_netcdf(tmp_path / "ok.nc", engine="h5netcdf")
    back = xr.open_dataarray(tmp_path / "ok.nc", engine="h5netcdf")
    assert json.loads(back.attrs["params"]) == {"k": 1, "nested": [1, None]}


def test_zarr_write_encodes_structured_attrs(tmp_path, classes):
    obj = classes[["confidence"]].assign_attrs(extra={"a": [1, 2]}, maybe=None, ok=True)
    eoai.write(obj, tmp_path / "c.zarr", progress=False)
    back = xr.open_zarr(tmp_path / "c.zarr")
    assert json.loads(back.attrs["extra"]) == {"a": [1, 2]}
    assert back.attrs["maybe"] == "null" and back.attrs["ok"] == 1  # booleans 0/1 (eoai._attrs)
    assert json.loads(back.attrs["eoai:parameters"])["uncertainty"] == "entropy"


# --------------------------------------------------------------------------------------------
# COG
# --------------------------------------------------------------------------------------------


def test_class_map_cog_for_qgis(tmp_path, classes):
    report = classes["class"].eoai.write(tmp_path / "classes.tif", blocksize=16, progress=False)
    tif = tmp_path / "classes.tif"
    assert report.paths == [tif] and report.computed == report.regions == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "classes.qml",
        "classes.tif",
        "classes.tif.aux.xml",
    ]  # fmt: skip (no .partial left)
    legend = dict(zip(classes["class"].attrs["flag_values"],
                      zip(classes["class"].attrs["class_names"], classes["class"].attrs["colours"],
                          strict=True), strict=True))  # fmt: skip
    with rasterio.open(tif) as src:
        assert src.profile["tiled"] and src.block_shapes[0] == (16, 16)
        assert src.compression.name.lower() == "deflate"
        assert src.nodata == 255 and src.dtypes[0] == "uint8"
        assert src.crs.to_epsg() == 32631
        assert src.transform == classes.odc.geobox.affine
        assert src.overviews(1) == [2]
        cmap = src.colormap(1)
        for value, (_, colour) in legend.items():
            assert (
                "#{:02x}{:02x}{:02x}".format(*cmap[value][:3]) == colour and cmap[value][3] == 255
            )
        assert cmap[255][3] == 0  # nodata transparent
        assert src.descriptions == ("class",)
        tags = src.tags(1)
        assert json.loads(tags["class_names"]) == classes["class"].attrs["class_names"]
        assert tags["flag_meanings"] == classes["class"].attrs["flag_meanings"]
        np.testing.assert_array_equal(src.read(1), classes["class"].values)
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
    assert_cog_layout(tif)
    # GDAL category names (PAM sidecar, read by GDAL and QGIS): index = pixel value
    cats = ET.parse(tmp_path / "classes.tif.aux.xml").findall(".//CategoryNames/Category")
    names = [c.text or "" for c in cats]
    for value, (name, _) in legend.items():
        assert names[value] == name
    # QGIS style: paletted renderer with every class value, colour and label
    qml = ET.parse(tmp_path / "classes.qml").getroot()
    renderer = qml.find("./pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = {int(e.get("value")): (e.get("label"), e.get("color"))
               for e in renderer.findall("./colorPalette/paletteEntry")}  # fmt: skip
    assert entries == legend


def test_float_cube_one_cog_per_date(tmp_path, ndvi):
    report = eoai.write(ndvi, tmp_path / "ndvi", blocksize=16, progress=False)
    days = [str(np.datetime_as_string(t, "D")) for t in ndvi.time.values]
    expected = [tmp_path / "ndvi" / f"ndvi_{d}.tif" for d in days]
    assert report.paths == expected
    assert sorted(p.name for p in (tmp_path / "ndvi").iterdir()) == sorted(p.name for p in expected)
    for i, path in enumerate(expected):
        with rasterio.open(path) as src:
            assert np.isnan(src.nodata) and src.dtypes[0] == "float32"
            assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
            np.testing.assert_array_equal(src.read(1), ndvi.isel(time=i).values)
        assert_cog_layout(path)


def test_several_variables_into_one_tif_name(tmp_path, classes):
    report = classes.eoai.write(tmp_path / "map.tif", blocksize=16, progress=False)
    assert [p.name for p in report.paths] == [
        "map_class.tif", "map_confidence.tif", "map_uncertainty.tif",
    ]  # fmt: skip
    assert (tmp_path / "map_class.qml").is_file() and not (tmp_path / "map_confidence.qml").exists()


def test_phenology_cogs_skip_date_variables_and_zarr_keeps_them(tmp_path):
    pheno = write_cases.pheno(32)
    with pytest.warns(DataSkippedWarning, match="sos, pos, eos, mos"):
        report = pheno.eoai.write(tmp_path / "pheno", blocksize=16, progress=False)
    names = {p.name for p in report.paths}
    assert "sos_doy.tif" in names and "amplitude.tif" in names and "sos.tif" not in names
    with rasterio.open(tmp_path / "pheno" / "sos_doy.tif") as src:
        np.testing.assert_array_equal(src.read(1), pheno["sos_doy"].values)
    pheno.eoai.write(tmp_path / "pheno.zarr", progress=False)
    back = xr.open_zarr(tmp_path / "pheno.zarr")
    assert back["sos"].dtype.kind == "M"
    np.testing.assert_array_equal(back["sos"].values, pheno["sos"].values)


# --------------------------------------------------------------------------------------------
# Zarr
# --------------------------------------------------------------------------------------------


def test_zarr_region_by_region_crs_cf_consolidated(tmp_path, classes, count_computes):
    before = {v: (dict(classes[v].attrs), dict(classes[v].encoding)) for v in classes.variables}
    with count_computes() as counter:
        report = eoai.write(classes, tmp_path / "c.zarr", batch_size=3, progress=False)
    assert {v: (dict(classes[v].attrs), dict(classes[v].encoding)) for v in classes.variables} == (
        before
    )  # the user's object is left as it was
    assert report.regions == 4 and report.computed == 4
    assert counter.count == 2  # one dask computation per batch of 3 regions, nothing loaded whole
    assert not (tmp_path / "c.zarr.partial").exists()
    if zarr.__version__.startswith("2."):
        assert (tmp_path / "c.zarr" / ".zmetadata").is_file()  # consolidated (Zarr v2)
    else:
        meta = json.loads((tmp_path / "c.zarr" / "zarr.json").read_text())
        assert "consolidated_metadata" in meta  # consolidated (Zarr v3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        back = xr.open_zarr(tmp_path / "c.zarr", consolidated=True)
    import odc.geo.xr  # noqa: F401
    import rioxarray  # noqa: F401

    assert back.odc.crs.epsg == 32631 and back["confidence"].rio.crs.to_epsg() == 32631
    assert back.odc.geobox == classes.odc.geobox
    assert back["class"].attrs["grid_mapping"] == "spatial_ref"
    assert back["class"].encoding["_FillValue"] == 255
    raw = xr.open_zarr(tmp_path / "c.zarr", mask_and_scale=False)
    np.testing.assert_array_equal(raw["class"].values, classes["class"].values)
    np.testing.assert_array_equal(back["uncertainty"].values, classes["uncertainty"].values)
    assert back.attrs["eoai:method"] == "classify"
    assert back.sizes == {"y": 32, "x": 32}


def test_zarr_mixed_dims_each_region_writes_its_own_part(tmp_path, ndvi, classes):
    """(time, y, x) in 3 date chunks, (y, x), (time,) and a dask (y, x) coordinate together."""
    ds = xr.Dataset(
        {
            "ndvi": ndvi.chunk({"time": 1}),
            "class": classes["class"],
            "valid": ndvi.notnull().mean(["y", "x"]),
        }
    ).assign_coords(weight=classes["confidence"])
    report = eoai.write(ds, tmp_path / "mixed.zarr", batch_size=5, progress=False)
    assert report.regions == 3 * 2 * 2 and report.computed == 12
    back = xr.open_zarr(tmp_path / "mixed.zarr", mask_and_scale=False)
    np.testing.assert_array_equal(back["ndvi"].values, ds["ndvi"].values)
    np.testing.assert_array_equal(back["class"].values, ds["class"].values)
    np.testing.assert_array_equal(back["valid"].values, ds["valid"].values)
    np.testing.assert_array_equal(back["weight"].values, ds["weight"].values)
    assert "weight" in back.coords and back["ndvi"].encoding["chunks"] == (1, 16, 16)
    with pytest.raises(WriteError, match=r"'valid'.*drop_vars\('valid'\)"):
        eoai.write(ds, tmp_path / "mixed", progress=False)


def test_numpy_input_is_cut_into_blocks(tmp_path, classes):
    conf = classes["confidence"].compute()
    report = eoai.write(conf, tmp_path / "conf.zarr", chunks=16, progress=False)
    assert report.regions == 4
    back = xr.open_zarr(tmp_path / "conf.zarr")
    assert back["confidence"].encoding["chunks"] == (16, 16)
    np.testing.assert_array_equal(back["confidence"].values, conf.values)


@pytest.mark.slow
def test_distributed_cluster_equals_threaded(tmp_path, classes, capfd):
    distributed = pytest.importorskip("distributed")
    eoai.write(classes, tmp_path / "threads.zarr", progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with dask.config.set(scheduler=None):
            capfd.readouterr()
            report = eoai.write(classes, tmp_path / "cluster.zarr", batch_size=2, progress=True)
            assert "4/4" in capfd.readouterr().err  # the bar follows the cluster's regions
        assert sum(client.nthreads().values()) == 2
    assert report.computed == 4
    assert zarr_digest(tmp_path / "cluster.zarr") == zarr_digest(tmp_path / "threads.zarr")


# --------------------------------------------------------------------------------------------
# resume after SIGKILL
# --------------------------------------------------------------------------------------------


def _killed_write(case: str, n: int, target: Path, min_done: int) -> dict:
    """Run write_cases.py in a subprocess (tasks slowed by a dask callback) and SIGKILL it once
    its ledger lists >= min_done regions; return that ledger."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, "EOAI_SLOW_TASKS": "0.02"}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "write_cases.py"), case, str(n), str(target), "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    partial = target.with_name(target.name + ".partial")
    ledger_path = partial / "ledger.json"
    deadline = time.monotonic() + 300  # a guard against hanging, not a timing assertion
    ledger = None
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                ledger = json.loads(ledger_path.read_text())
            except (OSError, ValueError):
                ledger = None
            if ledger and len(ledger["done"]) >= min_done:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the writer was not killed mid-write: {err[-2000:]}"
    ledger = json.loads(ledger_path.read_text())
    assert min_done <= len(ledger["done"]) < ledger["regions_total"]
    assert not target.exists()  # nothing looks complete
    return ledger


_METADATA = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def _chunk_files(store: Path) -> dict[str, int]:
    """Chunk files of a Zarr v2 or v3 store -> modification time (ns)."""
    return {
        str(p.relative_to(store)): p.stat().st_mtime_ns
        for p in store.rglob("*")
        if p.is_file() and p.name not in _METADATA
    }


@pytest.mark.slow
def test_zarr_resume_after_sigkill_equals_uninterrupted(tmp_path):
    n = 48  # 9 regions of 16 x 16
    target = tmp_path / "killed.zarr"
    ledger = _killed_write("classes", n, target, min_done=2)
    stage = target.with_name(target.name + ".partial") / "stage.zarr"
    before = _chunk_files(stage)
    obj = write_cases.classes(n)
    report = eoai.write(obj, target, batch_size=2, progress=False)
    assert report.resumed and report.regions == 9
    assert report.computed == 9 - len(ledger["done"]) < 9
    after = _chunk_files(target)
    kept = [k for k, t in before.items() if after.get(k) == t]
    assert kept, "no chunk of the killed run was kept"
    assert len(after) > len(kept)
    reference = tmp_path / "reference.zarr"
    eoai.write(obj, reference, progress=False)
    assert zarr_digest(target) == zarr_digest(reference)
    assert not target.with_name(target.name + ".partial").exists()


@pytest.mark.slow
def test_cog_resume_after_sigkill_equals_uninterrupted(tmp_path):
    n = 48
    target = tmp_path / "killed.tif"
    ledger = _killed_write("classmap", n, target, min_done=3)
    obj = write_cases.classmap(n)
    report = eoai.write(obj, target, progress=False)
    assert report.resumed and report.computed == 9 - len(ledger["done"]) < 9
    reference = tmp_path / "reference.tif"
    eoai.write(obj, reference, progress=False)
    with rasterio.open(target) as a, rasterio.open(reference) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
        assert a.tags(1) == b.tags(1) and a.colormap(1) == b.colormap(1)
        assert a.profile == b.profile
    assert (tmp_path / "killed.qml").read_text() == (tmp_path / "reference.qml").read_text()


# --------------------------------------------------------------------------------------------
# interrupted writes of another computation, existing targets
# --------------------------------------------------------------------------------------------


def _failing(obj: xr.DataArray, bad_block: int) -> xr.DataArray:
    """obj whose dask block number ``bad_block`` (row-major) raises when computed."""

    def boom(block, block_info=None):
        loc = block_info[0]["chunk-location"]
        if loc[0] * block_info[0]["num-chunks"][1] + loc[1] == bad_block:
            raise RuntimeError("simulated crash")
        return block

    return obj.copy(data=obj.data.map_blocks(boom, dtype=obj.dtype))


def test_resume_of_another_computation_is_refused_and_nothing_overwritten(tmp_path, classes):
    target = tmp_path / "conf.zarr"
    conf = classes["confidence"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        eoai.write(_failing(conf, 2), target, batch_size=1, progress=False)
    partial = target.with_name(target.name + ".partial")
    ledger_bytes = (partial / "ledger.json").read_bytes()
    assert json.loads(ledger_bytes)["done"] == [0, 1]
    files = _chunk_files(partial / "stage.zarr")
    # the same grid and variable but other values (another dask graph): refused
    with pytest.raises(ResumeMismatchError) as err:
        eoai.write(conf * 2, target, progress=False)
    msg = str(err.value)
    assert str(partial) in msg and "variables.confidence.token" in msg and "resume=False" in msg
    # another dtype
    with pytest.raises(ResumeMismatchError, match=r"variables\.confidence\.dtype"):
        eoai.write(conf.astype("float64"), target, progress=False)
    # another grid
    with pytest.raises(ResumeMismatchError, match=r"grid\.affine"):
        eoai.write(conf.assign_coords(x=conf.x + 10), target, progress=False)
    assert (partial / "ledger.json").read_bytes() == ledger_bytes
    assert _chunk_files(partial / "stage.zarr") == files
    assert not target.exists()
    # an existing target is refused before the interrupted write is discarded
    (tmp_path / "conf.zarr").mkdir()
    with pytest.raises(TargetExistsError):
        eoai.write(conf, target, resume=False, progress=False)
    assert (partial / "ledger.json").read_bytes() == ledger_bytes
    (tmp_path / "conf.zarr").rmdir()
    # resume=False starts again
    report = eoai.write(_failing(conf, 99), target, resume=False, progress=False)
    assert not report.resumed and report.computed == 4


def test_existing_target_needs_overwrite(tmp_path, classes):
    for name in ("c.zarr", "c.tif"):
        target = tmp_path / name
        eoai.write(classes["confidence"], target, progress=False)
        with pytest.raises(TargetExistsError, match=str(target)) as err:
            eoai.write(classes["confidence"] * 2, target, progress=False)
        assert isinstance(err.value, FileExistsError) and "overwrite=True" in str(err.value)
        eoai.write(classes["confidence"] * 2, target, overwrite=True, progress=False)
    back = xr.open_zarr(tmp_path / "c.zarr")["confidence"]
    np.testing.assert_allclose(back.values, (classes["confidence"] * 2).values)
    with rasterio.open(tmp_path / "c.tif") as src:
        np.testing.assert_allclose(src.read(1), (classes["confidence"] * 2).values)
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.replaced"))
    # a class map replaced by a continuous layer leaves no stale style or category names
    eoai.write(classes["class"], tmp_path / "m.tif", progress=False)
    assert (tmp_path / "m.qml").exists() and (tmp_path / "m.tif.aux.xml").exists()
    eoai.write(classes["confidence"], tmp_path / "m.tif", overwrite=True, progress=False)
    assert not (tmp_path / "m.qml").exists() and not (tmp_path / "m.tif.aux.xml").exists()
    with rasterio.open(tmp_path / "m.tif") as src:
        assert src.dtypes[0] == "float32" and src.descriptions == ("confidence",)


# --------------------------------------------------------------------------------------------
# progress and errors
# --------------------------------------------------------------------------------------------


def test_progress_bar_only_when_asked(tmp_path, classes, capfd):
    eoai.write(classes["confidence"], tmp_path / "a.zarr", batch_size=2, progress=True)
    err = capfd.readouterr().err
    assert "eoai.write a.zarr" in err and "4/4" in err
    eoai.write(classes["confidence"], tmp_path / "b.zarr", progress=False)
    assert capfd.readouterr().err == ""
    eoai.write(classes["confidence"], tmp_path / "c.zarr")  # None: a script -> off
    assert capfd.readouterr().err == ""


def test_progress_default_off_under_papermill(monkeypatch):
    from eoai import _progress

    monkeypatch.delenv("EOAI_PROGRESS", raising=False)
    assert _progress.enabled(None) is False
    monkeypatch.setenv("EOAI_PROGRESS", "1")
    assert _progress.enabled(None) is True
    monkeypatch.delenv("EOAI_PROGRESS")

    class Kernel:
        _allow_stdin = True

    class ZMQInteractiveShell:
        kernel = Kernel()

    shell = ZMQInteractiveShell()
    monkeypatch.setattr(_progress, "_ipython_shell", lambda: shell)
    monkeypatch.delitem(sys.modules, "papermill", raising=False)
    assert _progress.enabled(None) is True  # JupyterLab: allow_stdin=True
    Kernel._allow_stdin = False  # nbclient / papermill kernels
    assert _progress.is_batch_run() and _progress.enabled(None) is False
    Kernel._allow_stdin = True
    monkeypatch.setitem(sys.modules, "papermill", object())
    assert _progress.enabled(None) is False


def test_errors_say_what_and_how(tmp_path, classes):
    conf = classes["confidence"]
    with pytest.raises(WriteError, match=r"\.tif.*\.zarr"):
        eoai.write(conf, tmp_path / "x.png")
    with pytest.raises(WriteError, match="format='cog'"):
        eoai.write(conf, tmp_path / "x.tif", format="netcdf")
    with pytest.raises(InputError, match="xarray"):
        eoai.write(np.zeros((2, 2)), tmp_path / "x.tif")
    with pytest.raises(MissingDimensionError, match="eoai.write needs spatial dimensions y and x"):
        eoai.write(conf.rename(x="col"), tmp_path / "x.tif")
    bare = xr.DataArray(np.zeros((4, 4), "float32"), dims=("y", "x"),
                        coords={"y": np.arange(4.0), "x": np.arange(4.0)}, name="v")  # fmt: skip
    with pytest.raises(CRSError, match=r"odc\.assign_crs"):
        eoai.write(bare, tmp_path / "x.zarr")
    cube = conf.expand_dims(band=["a", "b"])
    with pytest.raises(WriteError, match=r"\['band'\].*isel\(band=0\).*\.zarr"):
        eoai.write(cube, tmp_path / "x.tif")
    with pytest.raises(InputError, match="multiple of 16"):
        eoai.write(conf, tmp_path / "x.tif", blocksize=100)
    pheno_dates = write_cases.pheno(32)[["sos"]]
    with pytest.raises(WriteError, match="datetime64.*zarr"):
        eoai.write(pheno_dates, tmp_path / "d.tif")
    for cls in (WriteError, TargetExistsError, ResumeMismatchError):
        assert issubclass(cls, EoaiError)
    assert not list(tmp_path.iterdir())  # errors are raised before anything is written


@pytest.mark.slow
def test_progress_is_off_in_a_real_papermill_kernel(tmp_path, monkeypatch):
    """In a kernel run by papermill, papermill is not imported: allow_stdin=False decides."""
    nbformat = pytest.importorskip("nbformat")
    pm = pytest.importorskip("papermill")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import sys, json\n"
            "from eoai import _progress\n"
            "print(json.dumps({'in_kernel': _progress.in_notebook_kernel(), "
            "'papermill_imported': 'papermill' in sys.modules, "
            "'batch': _progress.is_batch_run(), 'enabled': _progress.enabled(None)}))"
        )
    ]
    src, out = tmp_path / "probe.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))  # the kernel imports this eoai
    monkeypatch.delenv("EOAI_PROGRESS", raising=False)
    pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False)
    text = "".join(o.get("text", "") for o in nbformat.read(out, as_version=4).cells[0].outputs)
    seen = json.loads(text.strip().splitlines()[-1])
    assert seen == {"in_kernel": True, "papermill_imported": False, "batch": True, "enabled": False}


@pytest.mark.parametrize("name", ["late.zarr", "late.tif"])
def test_killed_after_the_rename_resumes_to_nothing(tmp_path, classes, monkeypatch, name):
    """An interruption between the final rename and the removal of .partial is harmless."""
    import eoai.io.write as writer

    target = tmp_path / name
    real_rmtree = writer.shutil.rmtree

    def interrupted(path, *args, **kwargs):
        if str(path).endswith(".partial"):
            raise KeyboardInterrupt("simulated kill after the rename")
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(writer.shutil, "rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        eoai.write(classes["class"], target, progress=False)
    monkeypatch.setattr(writer.shutil, "rmtree", real_rmtree)
    assert target.exists() and target.with_name(name + ".partial").exists()
    report = eoai.write(classes["class"], target, progress=False)
    assert report.resumed and report.computed == 0 and report.paths == [target]
    assert not target.with_name(name + ".partial").exists()
    if name.endswith(".zarr"):
        raw = xr.open_zarr(target, mask_and_scale=False)["class"].values
    else:
        raw = rasterio.open(target).read(1)
    np.testing.assert_array_equal(raw, classes["class"].values)


def test_real_slovenia_reference_and_ndvi(tmp_path, shared_data):
    """The eo-learn Slovenia patch (EPSG:32633, 101 x 100 px): LULC class map and NDVI dates."""
    ds = xr.open_dataset(shared_data / "eolearn_slovenia" / "eolearn_testpatch.nc")
    lulc = ds["LULC"]
    report = lulc.eoai.write(tmp_path / "lulc.tif", blocksize=32, progress=False)
    meanings = lulc.attrs["flag_meanings"].split()
    with rasterio.open(report.path) as src:
        assert src.crs.to_epsg() == 32633 and src.transform == ds.odc.geobox.affine
        assert (src.width, src.height) == (100, 101) and src.dtypes[0] == "uint16"
        assert src.nodata is None  # 0 is the class "no_data", not a GDAL nodata
        np.testing.assert_array_equal(src.read(1), lulc.values)
        cmap = src.colormap(1)
        legend = eoai.viz.colours.class_legend(lulc)
        assert {v: "#{:02x}{:02x}{:02x}".format(*cmap[v][:3]) for v in legend} == {
            v: c for v, (_, c) in legend.items()
        }
    assert_cog_layout(report.path)
    cats = ET.parse(tmp_path / "lulc.tif.aux.xml").findall(".//Category")
    assert [c.text for c in cats] == meanings
    labels = [e.get("label") for e in ET.parse(tmp_path / "lulc.qml").iter("paletteEntry")]
    assert labels == meanings
    ndvi = ds["NDVI"].isel(time_all=slice(0, 2)).rename(time_all="time").chunk({"y": 64, "x": 64})
    report = ndvi.eoai.write(tmp_path / "ndvi", blocksize=32, progress=False)
    assert [p.name for p in report.paths] == ["NDVI_2015-07-11.tif", "NDVI_2015-07-31.tif"]
    with rasterio.open(report.paths[1]) as src:  # the source's int16 + scale_factor is undone
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        np.testing.assert_array_equal(src.read(1), ndvi.isel(time=1).values)
    ndvi.eoai.write(tmp_path / "ndvi.zarr", progress=False)
    back = xr.open_zarr(tmp_path / "ndvi.zarr")["NDVI"]
    assert back.dtype == "float32" and np.nanmax(back.values) > 0.5
    np.testing.assert_array_equal(back.values, ndvi.values)


def test_names_that_are_not_text_are_refused_before_anything_is_written(tmp_path, classes):
    # regression: an int variable name escaped as xarray's TypeError (Zarr) or str.join's (COG)
    conf = classes["confidence"]
    ds = xr.Dataset({1: conf, "confidence": conf})
    for target in ("x.zarr", "folder"):
        with pytest.raises(InputError, match=r"\[1\] are not.*rename\(\{1: '1'\}\)"):
            eoai.write(ds, tmp_path / target, progress=False)
    with pytest.raises(InputError, match=r"\[0\] are not"):
        eoai.write(conf.expand_dims({0: 1}), tmp_path / "x.zarr", progress=False)
    assert not list(tmp_path.iterdir())
