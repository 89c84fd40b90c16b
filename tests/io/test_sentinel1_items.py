"""Sentinel-1 STAC items as real catalogs publish them (shared/data/sentinel1, metadata only).

Planetary Computer ``sentinel-1-rtc`` (current ``vv``/``vh`` keys, stac-geoparquet; early
``vv-rtc`` keys without a collection field, pctasks), Planetary Computer ``sentinel-1-grd``,
stactools-sentinel1 GRD items (Earth Search's layout) and the AWS RTC tiles (``gamma0_vv``).
"""

from __future__ import annotations

import json
import warnings

import pystac
import pytest

import eoai
from eoai.errors import DataSkippedWarning, EmptySearchError, InputError, UnknownBandError
from eoai.io.bands import resolve_bands
from eoai.io.presets import get_preset
from eoai.io.sentinel1 import (
    asset_units,
    band_units,
    check_polarisations,
    cql2_conditions,
    filter_sentinel1,
    is_sentinel1,
    query_conditions,
)

S1 = "sentinel1"
PCT = f"{S1}/planetary-computer-tasks/pctasks/task/tests/data-files/items/s1-rtc/2019/12/15/IW"


def _items(shared, pattern):
    out = []
    for path in sorted((shared / S1).parent.glob(pattern)):
        data = json.loads(path.read_text())
        for d in data if isinstance(data, list) else [data]:
            out.append(pystac.Item.from_dict(d, preserve_dict=False))
    return out


@pytest.fixture(scope="module")
def pc_rtc(shared_data):
    return _items(shared_data, f"{S1}/stac-geoparquet/tests/data/sentinel-1-rtc-pc.json")


@pytest.fixture(scope="module")
def pc_rtc_old(shared_data):
    return _items(shared_data, f"{PCT}/*/*_rtc.json")


@pytest.fixture(scope="module")
def pc_grd(shared_data):
    return _items(shared_data, f"{S1}/stac-geoparquet/_extracted/sentinel-1-grd__*.json")


@pytest.fixture(scope="module")
def stactools_grd(shared_data):
    return _items(shared_data, f"{S1}/stactools-sentinel1/examples/grd/S1A_*/*.json")


@pytest.fixture(scope="module")
def aws_rtc(shared_data):
    return _items(
        shared_data, f"{S1}/stactools-sentinel1/examples/rtc/sentinel1-rtc-aws/*/S1*/*.json"
    )


def test_asset_keys_map_to_polarisations(pc_rtc, pc_rtc_old, pc_grd, stactools_grd, aws_rtc):
    assert len(pc_rtc) == 4 and len(pc_rtc_old) == 8 and len(aws_rtc) == 2
    assert resolve_bands(pc_rtc, ["vv", "VH"]) == {"vv": "vv", "VH": "vh"}
    dv = [i for i in pc_rtc_old if "1SDV" in i.id]
    dh = [i for i in pc_rtc_old if "1SDH" in i.id]
    assert resolve_bands(dv, ["vv", "vh"]) == {"vv": "vv-rtc", "vh": "vh-rtc"}
    assert resolve_bands(dh, ["hh", "hv"]) == {"hh": "hh-rtc", "hv": "hv-rtc"}
    iw = [i for i in pc_grd if "_IW_" in i.id]
    assert resolve_bands(iw, ["vv"]) == {"vv": "vv"}
    assert resolve_bands(aws_rtc, ["vv", "vh"]) == {"vv": "gamma0_vv", "vh": "gamma0_vh"}
    assert all(is_sentinel1(i) for i in pc_rtc + pc_rtc_old + pc_grd + stactools_grd + aws_rtc)


def test_units_per_collection(pc_rtc, pc_rtc_old, pc_grd, stactools_grd, aws_rtc):
    assert {asset_units(i, "vv") for i in pc_rtc} == {"linear"}  # PC documents linear gamma0
    assert {asset_units(i, "vv-rtc") for i in pc_rtc_old if "1SDV" in i.id} == {"linear"}
    assert {asset_units(i, "hh") for i in pc_grd if "hh" in i.assets} == {"amplitude"}
    assert {asset_units(i, "vv") for i in stactools_grd if "vv" in i.assets} == {"amplitude"}
    assert {asset_units(i, "gamma0_vv") for i in aws_rtc} == {"linear"}
    attrs = band_units(pc_rtc, {"vv": "vv", "vh": "vh"})
    assert attrs["vv"]["units"] == "linear" and attrs["vh"]["eoai:looks"] == 4.4
    assert "gamma0" in attrs["vv"]["long_name"]
    assert band_units(pc_rtc, {"vv": "vv"}, units="dB")["vv"]["units"] == "dB"  # override
    with pytest.raises(InputError, match=r"names band\(s\) \['hh'\]"):
        band_units(pc_rtc, {"vv": "vv"}, units={"hh": "dB"})
    with pytest.raises(InputError, match="not a backscatter unit"):
        band_units(pc_rtc, {"vv": "vv"}, units="kelvin")
    # GRD is in radar geometry: refused with a pointer to the RTC collection
    for grd in (pc_grd, stactools_grd):
        pol = "vv" if any("vv" in i.assets for i in grd) else "hh"
        with pytest.raises(InputError, match="radar geometry.*sentinel-1-rtc"):
            band_units([i for i in grd if pol in i.assets], {pol: pol})
    # an unknown Sentinel-1 source without raster:bands unit asks for units=
    anon = pc_rtc[0].clone()
    anon.collection_id = "my-s1-archive"
    with pytest.raises(InputError, match="units='dB'"):
        band_units([anon], {"vv": "vv"})
    anon.assets["vv"].extra_fields["raster:bands"][0]["unit"] = "dB"
    assert band_units([anon], {"vv": "vv"})["vv"]["units"] == "dB"


def test_orbit_mode_polarisation_filters(pc_rtc, pc_rtc_old, pc_grd, stactools_grd):
    items = pc_rtc + pc_rtc_old + pc_grd + stactools_grd
    desc = eoai.search(items, orbit_state="descending")
    assert sorted({(i.properties["sat:relative_orbit"]) for i in desc}) == [11, 20, 51, 95]
    track5 = eoai.search(items, orbit_state="ascending", relative_orbit=5)
    assert sorted(i.id for i in track5) == sorted(i.id for i in pc_rtc_old if "1SDV" in i.id)
    assert len(eoai.search(items, relative_orbit=[51, 95])) == 5
    ew = eoai.search(items, instrument_mode="ew")
    assert {i.properties["sar:instrument_mode"] for i in ew} == {"EW"} and len(ew) == 2
    hv = eoai.search(items, polarizations=["HH", "HV"])
    assert all(set(i.properties["sar:polarizations"]) == {"HH", "HV"} for i in hv)
    assert len(hv) == 4 + 1  # 4 early PC RTC DH scenes + the stactools EW GRDM 1SDH
    assert len(eoai.search(items, polarizations="vh", instrument_mode="IW")) == 4 + 4 + 1 + 1
    with pytest.raises(EmptySearchError, match=r"VV\+VH \(.*sat:relative_orbit .*51"):
        eoai.search(pc_rtc + pc_rtc_old, polarizations="HH", relative_orbit=51)


def test_filters_leave_out_items_lacking_the_property(pc_rtc):
    bare = pc_rtc[0].clone()
    bare.id = "no-orbit"
    del bare.properties["sat:orbit_state"]
    with pytest.warns(DataSkippedWarning, match="1 item.*sat:orbit_state"):
        kept = filter_sentinel1([*pc_rtc, bare], orbit_state="descending")
    assert len(kept) == 4


def test_filter_validation_and_server_conditions():
    with pytest.raises(InputError, match="ascending"):
        eoai.search([], orbit_state="north")
    with pytest.raises(InputError, match="1-175"):
        eoai.search([], relative_orbit=0)
    with pytest.raises(InputError, match="IW, EW"):
        eoai.search([], instrument_mode="XX")
    with pytest.raises(InputError, match="VV, VH, HH or HV"):
        eoai.search([], polarizations=["VV", "LL"])
    filt = {"orbit_state": "ascending", "relative_orbit": [5, 6], "instrument_mode": ["IW"]}
    assert cql2_conditions(filt) == [
        {"op": "=", "args": [{"property": "sat:orbit_state"}, "ascending"]},
        {"op": "in", "args": [{"property": "sat:relative_orbit"}, [5, 6]]},
        {"op": "=", "args": [{"property": "sar:instrument_mode"}, "IW"]},
    ]
    assert query_conditions(filt)["sat:relative_orbit"] == {"in": [5, 6]}


def test_missing_polarisation_is_a_clear_error(pc_rtc_old):
    dh = [i for i in pc_rtc_old if "1SDH" in i.id]
    with pytest.raises(UnknownBandError, match=r"VH are not in these Sentinel-1 items.*HH\+HV"):
        check_polarisations(dh, ["vv", "vh"])
    kept, left = check_polarisations(pc_rtc_old, ["vv"])  # DV and DH mixed: DH left out
    assert left == 4 and all("1SDV" in i.id for i in kept)
    with pytest.raises(UnknownBandError, match="VV are not"):
        eoai.load(dh, ["vv"])  # before any read


def test_presets():
    assert get_preset("planetary-computer-s1-rtc").collections == ("sentinel-1-rtc",)
    assert get_preset("pc-s1-rtc").sign
    for name in ("planetary-computer-s1-grd", "earth-search-s1-grd", "cdse-s1-grd"):
        assert get_preset(name).collections == ("sentinel-1-grd",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_preset("cdse-s1-grd").url == get_preset("cdse").url
