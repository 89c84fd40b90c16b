"""Training samples: the pixels of a cube under labelled points or polygons, as a tidy table.

Reached as ``cube.eoai.extract(labels, label="class")``. Only the sampled pixels are read: the pixel
indices are gathered first and the cube is indexed with vectorised (point-wise) indexing, so a dask
cube loads only the chunks the labels touch.

Examples
--------
>>> import eoai  # doctest: +SKIP
>>> cube = eoai.load(eoai.datasets.sample_catalog(), bands=["ndvi"])  # doctest: +SKIP
>>> samples = cube.eoai.extract(eoai.datasets.sample_labels(), label="class")  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._crs import check_crs
from .._renamed import renamed_parameters
from .._skipped import user_stacklevel
from ..errors import (
    CRSError,
    DataSkippedWarning,
    EoaiWarning,
    FewSamplesWarning,
    InputError,
    NoOverlapError,
)
from .features import (
    _var_features,
    as_dataset,
    check_features,
    feature_names,
    patch_array,
    patch_names,
    patch_offset,
    time_dim,
)

RESERVED = ("label", "group", "x", "y")
LON_NAMES = ("lon", "longitude", "lng", "long")
LAT_NAMES = ("lat", "latitude")


def read_labels(labels: Any, *, crs: Any = None) -> Any:
    """Labels as a GeoDataFrame: a GeoDataFrame, or a path to GeoPackage/GeoJSON/Shapefile/CSV.

    A CSV needs ``lon``/``lat`` (or ``longitude``/``latitude``) columns in degrees (EPSG:4326),
    or ``x``/``y`` columns together with ``crs=``.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "pts.csv")
    >>> pd.DataFrame({"lon": [14.5], "lat": [46.0], "class": [2]}).to_csv(path, index=False)
    >>> read_labels(path).crs.to_epsg()
    4326
    """
    import geopandas as gpd

    if crs is not None:
        check_crs(crs, "read_labels: crs")
    if isinstance(labels, gpd.GeoDataFrame):
        return labels
    if isinstance(labels, pd.DataFrame):
        return _points_from_table(labels, crs, source="the DataFrame")
    if isinstance(labels, (str, Path)):
        path = Path(labels)
        if not path.exists():
            raise InputError(f"label file {path} does not exist")
        if path.suffix.lower() in {".csv", ".txt"}:
            return _points_from_table(pd.read_csv(path), crs, source=str(path))
        return gpd.read_file(path)
    raise InputError(
        f"labels must be a GeoDataFrame or a path (gpkg, geojson, shp, csv), got {type(labels).__name__}"
    )


def _points_from_table(table: pd.DataFrame, crs: Any, source: str) -> Any:
    import geopandas as gpd

    cols = {c.lower(): c for c in table.columns}
    lon = next((cols[c] for c in LON_NAMES if c in cols), None)
    lat = next((cols[c] for c in LAT_NAMES if c in cols), None)
    if lon is not None and lat is not None:
        geom = gpd.points_from_xy(table[lon], table[lat])
        return gpd.GeoDataFrame(
            table.drop(columns=[lon, lat]), geometry=geom, crs=crs or "EPSG:4326"
        )
    if "x" in cols and "y" in cols:
        if crs is None:
            raise CRSError(
                f"{source} has x/y columns but no CRS: pass crs='EPSG:....' or use lon/lat columns"
            )
        geom = gpd.points_from_xy(table[cols["x"]], table[cols["y"]])
        return gpd.GeoDataFrame(table.drop(columns=[cols["x"], cols["y"]]), geometry=geom, crs=crs)
    raise InputError(
        f"{source} needs lon/lat (or longitude/latitude) columns, or x/y columns with crs=; "
        f"its columns are {list(table.columns)}"
    )


def _clean_geometries(gdf: Any) -> Any:
    import shapely

    geom = gdf.geometry
    empty = geom.isna() | geom.is_empty
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} of {len(gdf)} label geometries are empty or missing and were skipped",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
        gdf = gdf[~empty]
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        warnings.warn(
            f"{int(invalid.sum())} invalid label geometries (e.g. self-intersecting) were repaired "
            "with shapely.make_valid",
            EoaiWarning,
            stacklevel=user_stacklevel(),
        )
        gdf = gdf.copy()
        gdf.loc[invalid, gdf.geometry.name] = shapely.make_valid(gdf.geometry[invalid].values)
    return gdf


def _pixel_indices(
    gdf: Any, geobox: Any, all_touched: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, label-row position) of every pixel under the geometries (points: the pixel hit)."""
    import rasterio.features

    ny, nx = geobox.shape
    transform = geobox.affine
    geoms = gdf.geometry.values
    is_point = np.asarray(gdf.geom_type.isin(["Point"]))
    rows, cols, owners = [], [], []
    if is_point.any():
        pts = geoms[is_point]
        inv = ~transform
        x, y = np.asarray(pts.x), np.asarray(pts.y)
        px, py = inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f
        c, r = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
        inside = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
        rows.append(r[inside])
        cols.append(c[inside])
        owners.append(np.flatnonzero(is_point)[inside])
    other = np.flatnonzero(~is_point)
    if other.size:
        # burn the position of each polygon; count covers to find pixels claimed twice
        shapes = list(zip(geoms[other], other.astype("int32"), strict=True))
        burned = rasterio.features.rasterize(
            shapes, out_shape=(ny, nx), transform=transform, fill=-1, dtype="int32",
            all_touched=all_touched,
        )  # fmt: skip
        counts = rasterio.features.rasterize(
            [(g, 1) for g in geoms[other]], out_shape=(ny, nx), transform=transform, fill=0,
            dtype="int32", all_touched=all_touched, merge_alg=rasterio.enums.MergeAlg.add,
        )  # fmt: skip
        overlap = int((counts > 1).sum())
        if overlap:
            warnings.warn(
                f"{overlap} pixels are covered by more than one label polygon; each was given to "
                "the last polygon that covers it",
                EoaiWarning,
                stacklevel=user_stacklevel(),
            )
        r, c = np.nonzero(burned >= 0)
        rows.append(r)
        cols.append(c)
        owners.append(burned[r, c].astype(np.int64))
    return (
        np.concatenate(rows).astype(np.int64),
        np.concatenate(cols).astype(np.int64),
        np.concatenate(owners).astype(np.int64),
    )


def describe_cube(cube: xr.Dataset) -> dict[str, Any]:
    """JSON description of a cube (bands, dates, CRS, resolution, bounds) kept with samples and models.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"red": (("y", "x"), np.zeros((2, 2)))}, coords={"y": [1.0, 0.0], "x": [0.0, 1.0]})
    >>> describe_cube(ds)["variables"]
    ['red']
    """
    out: dict[str, Any] = {"variables": [str(v) for v in cube.data_vars], "shape": dict(cube.sizes)}
    if "time" in cube.dims:
        t = pd.DatetimeIndex(cube["time"].values)
        out["dates"] = [d.isoformat() for d in t]
    for dim in cube.dims:  # a flattened sources tree (eoai.stack_sources): dates per source
        if isinstance(dim, str) and dim.startswith("time_"):
            t = pd.DatetimeIndex(cube[dim].values)
            out.setdefault("sources", {})[dim[len("time_") :]] = [d.isoformat() for d in t]
    try:
        import odc.geo.xr  # noqa: F401

        gbox = cube.odc.geobox
        if gbox is not None:
            out["crs"] = str(gbox.crs)
            out["resolution"] = [float(gbox.resolution.x), float(gbox.resolution.y)]
            out["bounds"] = [float(v) for v in gbox.boundingbox]
    except Exception:  # noqa: BLE001 - description only
        pass
    return out


@renamed_parameters(random_state="seed")
def extract(
    cube: xr.Dataset | xr.DataArray | xr.DataTree,
    labels: Any,
    label: str = "class",
    *,
    group: str | None = None,
    max_per_polygon: int | None = None,
    features: Sequence[str] | None = None,
    all_touched: bool = False,
    min_samples: int = 10,
    drop_empty: bool = True,
    seed: int | None = 0,
    crs: Any = None,
    patch: int | Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Sample the cube under labelled points or polygons into a tidy table of features.

    Parameters
    ----------
    cube
        Dataset or DataArray with dims ``(time, y, x)`` and/or ``(y, x)`` and a CRS (odc-geo).
        Derived features (indices, phenology metrics) are sampled the same way: pass that cube.
        A DataTree of sources on one grid (:func:`eoai.stack_sources`) gives the features of all
        sources at once, each with its own dates: ``s2.red_2020-06-04``, ``s1.vv_2020-06-07``.
    labels
        GeoDataFrame, or path to a GeoPackage / GeoJSON / Shapefile / CSV (lon, lat columns) of
        points or polygons in any CRS; reprojected to the cube's CRS.
    label
        Column of ``labels`` with the class (ints or strings).
    group
        Column identifying a group (e.g. a field or a polygon id) kept for grouped
        cross-validation; default: the row of each geometry in ``labels`` (one group per polygon).
    max_per_polygon
        Keep at most this many pixels per polygon (random, seeded by ``seed``).
    features
        Feature names to keep (see :func:`eoai.ml.features.feature_names`); default all.
    all_touched
        Take every pixel a polygon touches, not only those whose centre is inside.
    min_samples
        Warn (:class:`FewSamplesWarning`, with counts) for classes with fewer samples (for a
        continuous ``label``, see :func:`eoai.ml.base.infer_task`: when the whole table is
        smaller).
    drop_empty
        Drop samples whose features are all NaN (warned with a count).
    seed
        Seed of ``max_per_polygon``.
    crs
        CRS of a CSV with x/y columns.
    patch
        With a sources tree: also take the ``patch x patch`` pixels of an image around each sampled
        pixel, the features ``"<source>.<band>[i,j]"`` (layout in :mod:`eoai.ml.features`; NaN
        outside the image), for patch branches (``eoai.ml.fit(samples, "m3fusion")`` /
        ``"multireso"``). A size reads every fine source (``eoai.stack_sources(..., fine="vhr")``,
        in its own fine pixels); ``{source: size}`` names the sources, fine ones or static ones on
        the base grid (``{"vhr": 32, "ms": 8}``: MultiResoLCC's panchromatic and multispectral
        patches of one footprint at a ratio of 4).

    Returns
    -------
    pandas.DataFrame
        One row per pixel sample: the feature columns (``red_2021-03-04``...), ``label``,
        ``group``, ``x``, ``y`` (pixel centre in the cube CRS). ``df.attrs`` holds
        ``"eoai:features"``, ``"eoai:label"`` (the label column) and ``"eoai:cube"``.

    Raises
    ------
    eoai.errors.CRSError
        The labels or the cube have no CRS, or ``crs`` is not a CRS that PROJ knows.
    eoai.errors.NoOverlapError
        No label falls on the cube.
    eoai.errors.InputError
        The label or group column is missing, or no valid geometry is left.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr, geopandas as gpd, odc.geo.xr
    >>> from shapely.geometry import box
    >>> from odc.geo.geobox import GeoBox
    >>> gbox = GeoBox.from_bbox((500000, 5000000, 500100, 5000100), "EPSG:32633", resolution=10)
    >>> t = pd.to_datetime(["2021-05-01", "2021-07-01"])
    >>> cube = odc.geo.xr.xr_zeros(gbox, dtype="float32").expand_dims(time=t).to_dataset(name="ndvi")
    >>> labels = gpd.GeoDataFrame({"class": [1]}, geometry=[box(500000, 5000000, 500030, 5000020)], crs=32633)
    >>> df = extract(cube, labels, min_samples=1)
    >>> len(df), list(df.columns)
    (6, ['ndvi_2021-05-01', 'ndvi_2021-07-01', 'label', 'group', 'x', 'y'])
    """
    import odc.geo.xr  # noqa: F401  (registers the .odc accessor)

    ds = as_dataset(cube)
    names = feature_names(ds)
    images = _patch_groups(cube, patch)
    for _src, arr, _ratio, size in images:
        names = names + patch_names([str(b) for b in arr["band"].values], size)
    if features is not None:
        check_features(names, features)
    try:
        geobox = ds.odc.geobox
    except Exception:  # noqa: BLE001
        geobox = None
    if geobox is None or geobox.crs is None:
        raise CRSError(
            "the cube has no CRS / geotransform; set it with cube.odc.assign_crs('EPSG:....') "
            "(odc-geo) so that labels can be placed on its pixels"
        )
    if crs is not None:
        check_crs(crs, "extract: crs")
    gdf = read_labels(labels, crs=crs)
    if gdf.crs is None:
        raise CRSError(
            "the labels have no CRS; set it with labels.set_crs('EPSG:....') "
            "(the CRS the coordinates are in), then extract again"
        )
    if label not in gdf.columns:
        raise InputError(
            f"the labels have no column {label!r}; pass label= one of {[c for c in gdf.columns if c != gdf.geometry.name]}"
        )
    if group is not None and group not in gdf.columns:
        raise InputError(f"the labels have no group column {group!r}; columns: {list(gdf.columns)}")
    if len(gdf) == 0:
        raise InputError("the labels are empty (no rows)")
    nolabel = gdf[label].isna()
    if nolabel.any():
        warnings.warn(
            f"{int(nolabel.sum())} label geometries have no {label!r} value and were skipped",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )
        gdf = gdf[~nolabel]
    gdf = _clean_geometries(gdf)
    if len(gdf) == 0:
        raise InputError("no valid label geometry left (all were empty or had no label)")
    gdf = gdf.to_crs(geobox.crs.to_wkt()).reset_index(drop=True)
    group_values = (
        gdf[group].to_numpy() if group is not None else np.asarray(gdf.index, dtype=np.int64)
    )

    rows, cols, owner = _pixel_indices(gdf, geobox, all_touched)
    hit = np.bincount(owner, minlength=len(gdf)) > 0
    if not hit.any():
        raise NoOverlapError(
            f"none of the {len(gdf)} labels falls on the cube (cube bounds "
            f"{tuple(round(float(v), 2) for v in geobox.boundingbox)} in {geobox.crs}; labels bounds "
            f"{tuple(round(float(v), 2) for v in gdf.total_bounds)} after reprojection): "
            "check the CRS of the labels and the area loaded"
        )
    if not hit.all():
        warnings.warn(
            f"{int((~hit).sum())} of {len(gdf)} labels cover no pixel of the cube (outside it, or "
            "polygons smaller than a pixel: try all_touched=True) and were skipped",
            DataSkippedWarning,
            stacklevel=user_stacklevel(),
        )

    if max_per_polygon is not None:
        if max_per_polygon < 1:
            raise InputError(f"max_per_polygon must be >= 1, got {max_per_polygon}")
        rng = np.random.default_rng(seed)
        order = np.lexsort((rng.random(owner.size), owner))
        rank = pd.Series(owner[order]).groupby(owner[order]).cumcount().to_numpy()
        keep = np.sort(order[rank < max_per_polygon])
        rows, cols, owner = rows[keep], cols[keep], owner[keep]

    # vectorised point-wise indexing: dask reads only the chunks holding these pixels
    iy = xr.DataArray(rows, dims="sample")
    ix = xr.DataArray(cols, dims="sample")
    picked = ds.isel(y=iy, x=ix).compute()
    columns: dict[str, np.ndarray] = {}
    for name, var in picked.data_vars.items():
        tdim = time_dim(var)
        if tdim is not None:
            values = var.transpose("sample", tdim).values
            for j, fname in enumerate(_var_features(picked, name, var)):
                columns[fname] = values[:, j].astype("float32", copy=False)
        else:
            columns[str(name)] = var.values.astype("float32", copy=False)
    for _src, arr, ratio, size in images:
        columns.update(_patches(arr, ratio, size, rows, cols))
    table = pd.DataFrame({n: columns[n] for n in names})
    if features is not None:
        table = table[list(features)]
    table["label"] = gdf[label].to_numpy()[owner]
    table["group"] = group_values[owner]
    a = geobox.affine
    table["x"] = a.a * (cols + 0.5) + a.b * (rows + 0.5) + a.c
    table["y"] = a.d * (cols + 0.5) + a.e * (rows + 0.5) + a.f

    feats = list(features) if features is not None else names
    if drop_empty:
        empty = table[feats].isna().all(axis=1).to_numpy()
        if empty.any():
            warnings.warn(
                f"{int(empty.sum())} of {len(table)} sampled pixels have no valid value in any "
                "feature (NaN everywhere, e.g. outside the data or always cloudy) and were skipped",
                DataSkippedWarning,
                stacklevel=user_stacklevel(),
            )
            table = table[~empty].reset_index(drop=True)
    if len(table) == 0:
        raise NoOverlapError("the labels fall on the cube but every sampled pixel is NaN")

    from .base import infer_task

    continuous = infer_task(table["label"]) == "regression"
    counts = table.groupby("label").size()
    groups = table.groupby("label")["group"].nunique()
    few = counts[(counts < min_samples) | (groups < 2)]
    if continuous:  # a continuous target (regression) has no classes to count
        few = few.iloc[:0]
        if len(table) < min_samples:
            warnings.warn(
                f"only {len(table)} samples of the continuous target {label!r} (fewer than "
                f"{min_samples}); the model will be poor",
                FewSamplesWarning,
                stacklevel=user_stacklevel(),
            )
    if len(few):

        def _n(count: int, what: str) -> str:
            return f"{count} {what}{'' if count == 1 else 's'}"

        detail = ", ".join(
            f"class {k!r}: {_n(int(counts[k]), 'pixel')} in {_n(int(groups[k]), 'polygon')}"
            for k in few.index
        )
        need = f"fewer than {min_samples} pixels or " if min_samples > 1 else ""
        warnings.warn(
            f"classes with few samples ({need}a single polygon): {detail}. The model will be poor "
            "for them and grouped cross-validation cannot test them: add labelled polygons.",
            FewSamplesWarning,
            stacklevel=user_stacklevel(),
        )
    table.attrs["eoai:features"] = feats
    table.attrs["eoai:label"] = label
    table.attrs["eoai:cube"] = describe_cube(ds)
    if images:
        table.attrs["eoai:patch"] = {
            src: {"size": size, "ratio": int(ratio), "bands": [str(b) for b in arr["band"].values]}
            for src, arr, ratio, size in images
        }
    return table


def _patch_groups(cube: Any, patch: Any) -> list[tuple[str, xr.DataArray, int, int]]:
    """``[(source, image (rows, columns, band), ratio, size)]`` of ``extract``'s ``patch=``."""
    if patch is None:
        return []
    if not isinstance(cube, xr.DataTree):
        raise InputError(
            "patch= reads patches of images of a sources tree: pass one, e.g. "
            "eoai.stack_sources({'s2': s2, 'vhr': vhr}, fine='vhr')"
        )
    from ..errors import ModelError
    from ..io.stack import fine_sources

    if isinstance(patch, Mapping):
        spec = dict(patch)
    else:
        spec = dict.fromkeys(fine_sources(cube), patch)
        if not spec:
            raise InputError(
                "patch= (a size) reads the fine sources of the tree, and it has none: stack the "
                "very-high-resolution image at its own resolution, eoai.stack_sources({..., 'vhr': "
                "vhr}, fine='vhr'), or name the source: patch={'ms': 5}"
            )
    out = []
    for src, size in spec.items():
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise InputError(
                f"patch sizes must be whole numbers of pixels >= 1, got {size!r} for {src!r}"
            )
        try:
            arr, ratio = patch_array(cube, str(src))
        except ModelError as err:
            raise InputError(str(err)) from None
        out.append((str(src), arr, int(ratio), int(size)))
    return out


def _patches(
    image: xr.DataArray, ratio: int, patch: int, rows: np.ndarray, cols: np.ndarray
) -> dict[str, np.ndarray]:
    """The patch columns (:func:`eoai.ml.features.patch_names`) of base pixels (rows, cols)."""
    off = np.arange(patch) + patch_offset(ratio, patch)
    fr, fc = rows[:, None] * ratio + off, cols[:, None] * ratio + off
    dy, dx = image.dims[0], image.dims[1]
    h, w = image.sizes[dy], image.sizes[dx]
    inside = ((fr >= 0) & (fr < h))[:, :, None] & ((fc >= 0) & (fc < w))[:, None, :]
    iy = xr.DataArray(np.clip(fr, 0, h - 1), dims=("sample", "pi"))
    ix = xr.DataArray(np.clip(fc, 0, w - 1), dims=("sample", "pj"))
    vals = image.isel({dy: iy, dx: ix}).transpose("sample", "band", "pi", "pj")
    values = np.where(inside[:, None], vals.values, np.nan).astype("float32")
    out = {}
    for b, band in enumerate(image["band"].values):
        flat = values[:, b].reshape(len(rows), patch * patch)
        for k, fname in enumerate(patch_names([str(band)], patch)):
            out[fname] = flat[:, k]
    return out


def sample_features(
    samples: pd.DataFrame, features: Sequence[str] | None = None, target: str = "label"
) -> list[str]:
    """The feature columns of a sample table: ``features``, ``attrs['eoai:features']`` or the rest.

    Parameters
    ----------
    samples
        Sample table (from :func:`extract`, or any DataFrame with a target column).
    features
        Feature columns (default: ``attrs['eoai:features']``, else every column but ``label``,
        ``group``, ``x``, ``y`` and ``target``).
    target
        The column to predict (class labels or a continuous quantity); it must be present and is
        never a feature.

    Examples
    --------
    >>> import pandas as pd
    >>> sample_features(pd.DataFrame({"a": [1.0], "label": [1], "group": [0], "x": [0.0], "y": [0.0]}))
    ['a']
    >>> sample_features(pd.DataFrame({"a": [1.0], "lfmc": [80.0]}), target="lfmc")
    ['a']
    """
    if not isinstance(samples, pd.DataFrame):
        raise InputError(
            f"samples must be a pandas DataFrame (from eoai.ml.extract), got {type(samples).__name__}"
        )
    if not isinstance(target, str):
        raise InputError(f"target must be a column name, got {type(target).__name__}")
    if target not in samples.columns:
        if target == "label":
            raise InputError(
                "the samples have no 'label' column; make them with eoai.ml.extract, name the "
                "class column 'label', or pass target= the column to predict"
            )
        raise InputError(
            f"the samples have no target column {target!r}; pass target= one of "
            f"{[str(c) for c in samples.columns if c not in ('group', 'x', 'y')][:20]}"
        )
    if features is None:
        features = samples.attrs.get("eoai:features") or [
            c for c in samples.columns if c not in RESERVED and c != target
        ]
    features = [str(f) for f in features]
    missing = [f for f in features if f not in samples.columns]
    if missing:
        raise InputError(f"the samples lack the feature columns {missing}")
    if target in features:
        raise InputError(f"the target column {target!r} is also a feature; drop it from features=")
    return features
