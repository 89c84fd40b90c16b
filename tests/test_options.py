"""eoai.set_options, the one device resolver and renamed keywords."""

import json
import warnings

import pytest

import eoai
from eoai._device import resolve_device
from eoai._progress import enabled
from eoai._renamed import renamed_parameters
from eoai.errors import InputError


def test_set_options_is_a_context_manager_and_restores():
    before = eoai.get_options()
    with eoai.set_options(device="cpu", threads=2, progress=True):
        assert eoai.get_options() == {"device": "cpu", "threads": 2, "progress": True}
        assert enabled(None) is True
        assert enabled(False) is False  # an explicit argument wins
    assert eoai.get_options() == before
    assert enabled(None) is False  # a test run is not an interactive session


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"device": "gpu"}, "device='gpu' is unknown"),
        ({"threads": 0}, "threads=0 must be a positive integer"),
        ({"progress": "yes"}, "progress='yes' must be True, False or None"),
        ({"colour": 1}, r"unknown option\(s\) \['colour'\]"),
    ],
)
def test_set_options_rejects_bad_values(kwargs, match):
    before = eoai.get_options()
    with pytest.raises(InputError, match=match):
        eoai.set_options(**kwargs)
    assert eoai.get_options() == before


def test_device_option_fills_auto_only():
    assert resolve_device("auto") == "cpu"  # no GPU on the test machines
    with eoai.set_options(device="cpu"):
        assert resolve_device("auto") == "cpu"
        assert resolve_device(None) == "cpu"
    with eoai.set_options(device="cuda"):
        # the option is used where the call says "auto", and it is checked like an argument
        import torch

        if not torch.cuda.is_available():
            with pytest.raises(InputError, match="torch sees no CUDA GPU"):
                resolve_device("auto", "gapfill")
        assert resolve_device("cpu") == "cpu"  # an explicit argument wins


def test_time_series_and_networks_share_the_resolver():
    from eoai.ml._deep_train import resolve_device as torch_device
    from eoai.timeseries._device import resolve_device as kernel_device

    assert kernel_device("cpu", "gapfill") is None  # numba kernels on the CPU
    assert str(torch_device("cpu")) == "cpu"
    with eoai.set_options(device="cpu"):
        assert kernel_device("auto", "gapfill") is None
        assert str(torch_device("auto")) == "cpu"
    for resolver in (kernel_device, torch_device):
        with pytest.raises(InputError, match="device='tpu' is unknown"):
            resolver("tpu")
    with pytest.raises(InputError, match="device='cuda' has no GPU kernel; use device='cpu'"):
        resolve_device("cuda", unsupported="has no GPU kernel")


def test_renamed_parameter_warns_once_and_refuses_both():
    @renamed_parameters(random_state="seed", n_jobs="threads")
    def draw(n, *, seed=0, threads=None):
        return n, seed, threads

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert draw(1, random_state=3, n_jobs=2) == (1, 3, 2)
    messages = [str(w.message) for w in caught if w.category is FutureWarning]
    assert messages == [
        "draw(random_state=...) is renamed seed=...; random_state= will be removed in the next "
        "release",
        "draw(n_jobs=...) is renamed threads=...; n_jobs= will be removed in the next release",
    ]
    assert caught[0].filename == __file__  # points at the caller's line
    with pytest.raises(InputError, match="got both random_state= and seed="):
        draw(1, random_state=3, seed=4)


def test_old_names_of_ml_functions_still_work_with_a_future_warning():
    import numpy as np
    import pandas as pd

    import eoai.ml

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"b": rng.normal(size=40), "label": np.repeat([1, 2], 20)})
    df["b"] += df["label"]
    with pytest.warns(FutureWarning, match=r"fit\(n_jobs=\.\.\.\) is renamed threads="):
        old = eoai.ml.fit(df, n_estimators=5, n_jobs=1, random_state=2)
    new = eoai.ml.fit(df, n_estimators=5, threads=1, seed=2)
    X = df[["b"]].to_numpy("float32")
    np.testing.assert_array_equal(old.predict_proba(X), new.predict_proba(X))
    with eoai.set_options(threads=1):  # the option fills threads=None
        assert eoai.ml.fit(df, n_estimators=5).estimator.n_jobs == 1


def test_device_option_reaches_the_time_series_kernels():
    """gapfill and detect_breaks default to device="auto" like the networks (issue #14), so the
    option reaches them; a method without a GPU kernel stays on the CPU under the option."""
    import numpy as np
    import pandas as pd
    import torch
    import xarray as xr

    from eoai.timeseries.breaks import detect_breaks
    from eoai.timeseries.gapfill import gapfill

    t = pd.date_range("2018-01-01", periods=60, freq="16D")
    rng = np.random.default_rng(0)
    da = xr.DataArray(rng.random((60, 2, 2)), dims=("time", "y", "x"), coords={"time": t})
    expected = gapfill(da, "linear", device="cpu")
    xr.testing.assert_allclose(gapfill(da, "linear"), expected)  # auto = numba without a GPU
    if torch.cuda.is_available():
        pytest.skip("checks the option where torch sees no GPU")
    with eoai.set_options(device="cuda"):
        with pytest.raises(InputError, match="torch sees no CUDA GPU"):
            gapfill(da, "linear")
        with pytest.raises(InputError, match="torch sees no CUDA GPU"):
            detect_breaks(da, "2019-06-01")
        # no GPU kernel for the V-curve: the option is a preference, the CPU runs it
        smooth = gapfill(da, "whittaker", lam="vcurve")
        assert json.loads(smooth.attrs["eoai:parameters"]).get("device") is None
        assert gapfill(da, "linear", device="cpu").equals(expected)  # the argument wins
    with eoai.set_options(device="cpu"):
        xr.testing.assert_allclose(gapfill(da, "linear"), expected)
