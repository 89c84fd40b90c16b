"""The ``.eoai`` accessor: bound methods documented as their function, per-type accessors, light
import, Jupyter completion, deprecated ``help()`` and warnings that point at the user's line."""

from __future__ import annotations

import inspect
import pydoc
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import eoai
from eoai import accessors
from eoai.errors import DataSkippedWarning, EoaiWarning

KINDS = {"Dataset": xr.Dataset, "DataArray": xr.DataArray}


def _cube() -> xr.DataArray:
    times = pd.to_datetime(["2020-01-11", "2020-01-01", "2020-01-21", "2020-01-31"])  # unsorted
    data = np.array([[[0.2]], [[0.1]], [[np.nan]], [[0.4]]])
    return xr.DataArray(data, dims=("time", "y", "x"), coords={"time": times}, name="ndvi")


def _objects() -> dict[str, xr.Dataset | xr.DataArray]:
    da = _cube()
    return {"Dataset": da.to_dataset(), "DataArray": da}


def _accepted(name: str) -> list[str]:
    return [kind for kind in KINDS if accessors._accepts(name, kind)]


CASES = [(name, kind) for name in sorted(accessors._METHODS) for kind in _accepted(name)]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_method_is_the_function_bound_to_the_object(name, kind):
    func = accessors._target(name)
    method = getattr(_objects()[kind].eoai, name)
    params = list(inspect.signature(func).parameters.values())
    assert inspect.signature(method) == inspect.signature(func).replace(parameters=params[1:])
    assert method.__doc__ is func.__doc__
    assert method.__wrapped__ is func
    assert method.__name__ == name and method.__module__ == func.__module__
    assert getattr(type(_objects()[kind].eoai), name) is func  # on the class: the function


def test_help_shows_the_functions_signature_without_its_first_argument_and_its_doc():
    from eoai.timeseries.gapfill import gapfill

    text = pydoc.render_doc(_cube().eoai.gapfill, renderer=pydoc.plaintext)
    assert "gapfill(method: 'str' = 'linear', *, freq:" in text
    assert "obj:" not in text.split("\n\n")[1]  # the signature line
    assert gapfill.__doc__.splitlines()[0] in text


def test_call_passes_the_object_first():
    ds = xr.Dataset({"red": ("x", [0.1, 0.2]), "nir": ("x", [0.5, 0.4])})
    xr.testing.assert_identical(ds.eoai.index("ndvi"), eoai.indices.index(ds, "ndvi"))


@pytest.mark.parametrize("name", sorted(accessors._METHODS))
def test_accepted_types_match_the_first_annotation(name):
    """A method is on an accessor iff its function's first parameter is annotated with that type
    (a new Dataset-only method must be listed in accessors._ACCEPTS)."""
    first = next(iter(inspect.signature(accessors._target(name)).parameters.values()))
    annotation = str(first.annotation)
    wanted = [kind for kind in KINDS if re.search(rf"\b{kind}\b", annotation)]
    assert sorted(_accepted(name)) == sorted(wanted), f"{name}({first.name}: {annotation})"


def test_dataset_only_methods_are_not_on_a_dataarray():
    da, ds = _cube(), _cube().to_dataset()
    for name in ("superres", "quicklook"):
        assert hasattr(ds.eoai, name)
        assert not hasattr(da.eoai, name)
        assert name not in dir(da.eoai) and name in dir(ds.eoai)
        with pytest.raises(AttributeError, match=rf"{name} takes a Dataset.*da\.to_dataset\(name="):
            getattr(da.eoai, name)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        da.eoai.nope  # noqa: B018


def test_dir_lists_every_method_of_the_type():
    for kind, obj in _objects().items():
        listed = {n for n in dir(obj.eoai) if not n.startswith("_")}
        assert listed == {n for n in accessors._METHODS if accessors._accepts(n, kind)} | {"help"}


@pytest.mark.slow
def test_import_and_accessor_lookup_stay_light():
    """``import eoai``, ``dir(ds.eoai)`` and ``hasattr`` import no heavy module and no eoai
    submodule beyond the accessor, the errors and the options."""
    code = (
        "import sys, numpy as np, xarray as xr, eoai\n"
        "da = xr.DataArray(np.zeros(3), dims='x'); dir(da.eoai); dir(da.to_dataset(name='a').eoai)\n"
        "hasattr(da.eoai, 'superres')\n"
        "heavy = ['torch', 'sklearn', 'numba', 'scipy.signal', 'odc.stac',"
        " 'rasterio', 'matplotlib', 'ipyleaflet', 'hvplot']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'eoai')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, own = out.stdout.splitlines()
    assert heavy == "", f"import eoai pulled heavy modules: {heavy}"
    assert own.split(",") == ["eoai", "eoai._options", "eoai.accessors", "eoai.errors"]


def test_help_method_is_deprecated_and_points_at_the_new_way(capsys):
    with pytest.warns(FutureWarning, match=r"use help\(obj\.eoai\.gapfill\).*gapfill\?") as rec:
        _cube().eoai.help("gapfill")
    assert rec[0].filename == __file__
    from eoai.timeseries.gapfill import gapfill

    assert capsys.readouterr().out.strip() == gapfill.__doc__.strip()


def test_ipython_question_mark_shows_the_function():
    """What ``ds.eoai.gapfill?`` prints: the function's file, bound signature and docstring."""
    pytest.importorskip("IPython")
    from IPython.core.oinspect import Inspector

    from eoai.timeseries import gapfill as module

    try:
        inspector = Inspector(theme_name="nocolor")  # IPython >= 9
    except TypeError:  # pragma: no cover - IPython 8
        inspector = Inspector()
    info = inspector.info(_cube().to_dataset().eoai.gapfill)
    assert info["type_name"] == "function"
    assert info["file"] == module.__file__
    assert (
        info["definition"].replace("\n", "").replace(" ", "").startswith("(method:'str'='linear'")
    )
    assert info["docstring"] == inspect.cleandoc(module.gapfill.__doc__)


@pytest.mark.slow
def test_ipython_completes_the_functions_keywords():
    """Jupyter's completer (IPython with Jedi, its default) and IPython's own keyword matcher
    offer the keyword arguments of the bound function."""
    pytest.importorskip("IPython")
    from IPython.core.completer import IPCompleter, provisionalcompleter

    ds = _cube().to_dataset()
    completer = IPCompleter(
        shell=None,
        namespace={"ds": ds},
        global_namespace={},
        disable_matchers=[  # these need a shell
            "IPCompleter.magic_matcher",
            "IPCompleter.magic_config_matcher",
            "IPCompleter.magic_color_matcher",
        ],
    )

    def complete(text: str) -> set[str]:
        with provisionalcompleter():
            return {c.text for c in completer.completions(text, len(text))}

    assert completer.use_jedi
    assert {"max_gap=", "max_iter="} <= complete("ds.eoai.gapfill(max_")
    assert "bands=" in complete("ds.eoai.index(ban")
    assert complete("ds.eoai.gap") >= {"gapfill"}
    # IPython's own matcher evaluates ds.eoai only under the "unsafe" policy (xarray objects
    # define __getattr__, which the default "limited" policy does not evaluate)
    completer.use_jedi, completer.evaluation = False, "unsafe"
    assert {"max_gap=", "max_iter="} <= complete("ds.eoai.gapfill(max_")


def _warnings_of(call) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        call()
    return rec


@pytest.mark.parametrize("via", ["accessor", "function"])
def test_warnings_point_at_the_users_line(via):
    from eoai.timeseries.gapfill import gapfill

    da = _cube()
    if via == "accessor":
        rec = _warnings_of(lambda: da.eoai.gapfill("linear", freq="5D", max_gap=1))
    else:
        rec = _warnings_of(lambda: gapfill(da, "linear", freq="5D", max_gap=1))
    sorted_warning = [w for w in rec if issubclass(w.category, EoaiWarning)]
    skipped = [w for w in rec if issubclass(w.category, DataSkippedWarning)]
    assert sorted_warning and "was not sorted" in str(sorted_warning[0].message)
    assert skipped, [str(w.message) for w in rec]
    assert {w.filename for w in rec} == {__file__}, [(w.filename, str(w.message)) for w in rec]


def test_user_stacklevel_skips_every_eoai_frame():
    """Frames whose code lives in the eoai package are skipped, however many there are."""
    from eoai import _skipped

    ns: dict = {"user_stacklevel": _skipped.user_stacklevel}
    source = "def inner(obj=None):\n    return user_stacklevel()\n"
    exec(compile(source, _skipped._PACKAGE_DIR + "fake_module.py", "exec"), ns)
    assert _skipped.user_stacklevel() == 1  # called here, outside eoai: warn's own caller
    assert ns["inner"]() == 2  # inner (eoai) -> this test
    assert accessors._bind(ns["inner"], None, "inner", "Dataset")() == 3  # via the accessor


def test_a_method_added_to_the_table_later_works(monkeypatch):
    monkeypatch.setitem(accessors._METHODS, "_late", "eoai.indices:index")
    ds = xr.Dataset({"red": ("x", [0.1, 0.2]), "nir": ("x", [0.5, 0.4])})
    assert ds.eoai._late.__wrapped__ is eoai.indices.index
    xr.testing.assert_identical(ds.eoai._late("ndvi"), ds.eoai.index("ndvi"))
