"""One palette for the package (issue #14): maps, plots, models and written class maps agree."""

from __future__ import annotations

import numpy as np
import xarray as xr

from eoai.ml import base
from eoai.viz import colours


def test_models_and_maps_share_one_palette_and_named_colours():
    assert base.PALETTE is colours.PALETTE and base.NAMED_COLOURS is colours.NAMED_COLOURS
    names = ["Forest", "cultivated land", "thing", "water"]
    # a class map without colours is drawn in the colours a model gives the same classes
    legend = colours.class_legend(xr.DataArray(np.zeros((2, 2)), attrs={"class_names": names}))
    assert [c for _, c in legend.values()] == base.default_colours(names)
    assert legend[0] == ("Forest", "#1a7f37") and legend[1][1] == "#f1c232"
    assert legend[2][1] == colours.PALETTE[2]  # an unknown name: the palette at its position
    assert len(set(colours.PALETTE)) == len(colours.PALETTE) == 20
