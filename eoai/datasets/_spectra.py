"""Spectra, Sentinel-2 codes and land-cover classes of the synthetic cubes (private).

:class:`LandClass` (re-exported by :mod:`eoai.datasets.synthetic`) describes one class: its
phenology, its endmember spectra, its weight in a scene. The band tables and the Sentinel-2 ``scl``
codes are the ones :func:`eoai.datasets.synthetic_cube` writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

# --------------------------------------------------------------------------------------------
# Spectra and codes
# --------------------------------------------------------------------------------------------

#: Sentinel-2 band common names known to the generator, in spectral order.
BANDS: tuple[str, ...] = (
    "coastal",
    "blue",
    "green",
    "red",
    "rededge1",
    "rededge2",
    "rededge3",
    "nir",
    "nir08",
    "nir09",
    "swir16",
    "swir22",
)
DEFAULT_BANDS: tuple[str, ...] = (
    "blue",
    "green",
    "red",
    "rededge1",
    "rededge2",
    "rededge3",
    "nir",
    "nir08",
    "swir16",
    "swir22",
)
#: Bands Sentinel-2 delivers at 20 m: the ones degraded when ``highres`` is requested.
BANDS_20M: tuple[str, ...] = ("rededge1", "rededge2", "rededge3", "nir08", "swir16", "swir22")

# Endmember surface reflectances (approximate, typical of Sentinel-2 L2A), same order as BANDS.
_ENDMEMBERS: dict[str, np.ndarray] = {
    "soil": np.array([0.07, 0.08, 0.11, 0.15, 0.18, 0.20, 0.22, 0.24, 0.25, 0.25, 0.32, 0.27]),
    "vegetation": np.array(
        [0.02, 0.03, 0.07, 0.03, 0.11, 0.30, 0.38, 0.42, 0.44, 0.44, 0.21, 0.10]
    ),
    "water": np.array([0.06, 0.06, 0.05, 0.03, 0.02, 0.015, 0.012, 0.01, 0.01, 0.01, 0.005, 0.003]),
}
_RED, _NIR = BANDS.index("red"), BANDS.index("nir")

#: Sentinel-2 L2A scene classification codes used in the ``scl`` band.
SCL_CODES: dict[int, str] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_pixels",
    3: "cloud_shadows",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}

#: NDVI of a parcel after an abrupt change (clear-cut to bare soil).
BREAK_NDVI = 0.12


@dataclass(frozen=True)
class LandClass:
    """A land-cover class of the synthetic scene and its NDVI phenology.

    Parameters
    ----------
    name, colour
        Class name and hex colour (kept in the truth's attrs for legends).
    base
        NDVI outside the growing seasons.
    seasons
        ``((sos, eos), ...)``: day-of-year of the rising and falling inflection points of each
        season of a year (0, 1 or 2 seasons), chronological and not overlapping. Days are counted
        from 1 January of the season's year and may run past 366 into the next calendar year (a
        southern-hemisphere season from October to April is ``((285, 470),)``); the first ``sos``
        is at most 366 and the last ``eos`` at most the first ``sos`` + 365 (no overlap with the
        next year's first season).
    amplitude
        NDVI amplitude, one value for all seasons or one per season.
    rate_up, rate_down
        Logistic rates (1/day) of green-up and senescence.
    background
        ``"soil"`` or ``"water"``: the endmember mixed with vegetation to make reflectances.
    weight
        Relative share of parcels drawn with this class.
    breakable
        Whether abrupt changes (clear-cuts) may happen in parcels of this class.

    Examples
    --------
    >>> from eoai.datasets.synthetic import LandClass
    >>> maize = LandClass("maize", "#ffd92f", base=0.2, seasons=((140, 250),), amplitude=0.6)
    >>> maize.n_seasons
    1
    """

    name: str
    colour: str
    base: float
    seasons: tuple[tuple[float, float], ...] = ()
    amplitude: float | tuple[float, ...] = 0.0
    rate_up: float = 0.1
    rate_down: float = 0.08
    background: str = "soil"
    weight: float = 1.0
    breakable: bool = False
    amplitudes: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        amps = (
            tuple(float(a) for a in self.amplitude)
            if isinstance(self.amplitude, (tuple, list))
            else (float(self.amplitude),) * len(self.seasons)
        )
        if len(amps) != len(self.seasons):
            raise InputError(
                f"class {self.name!r}: {len(amps)} amplitudes for {len(self.seasons)} seasons; "
                "give one amplitude or one per season"
            )
        if len(self.seasons) > 2:
            raise InputError(
                f"class {self.name!r}: at most 2 seasons a year, got {len(self.seasons)}"
            )
        last = -math.inf
        for sos, eos in self.seasons:
            if (
                not (1 <= sos < eos)
                or sos <= last
                or self.seasons[0][0] > 366
                or eos > self.seasons[0][0] + 365
            ):
                raise InputError(
                    f"class {self.name!r}: seasons {self.seasons} must be day-of-year pairs "
                    "(sos, eos) with 1 <= sos < eos, chronological and not overlapping, the first "
                    "sos <= 366 and the last eos <= first sos + 365 (days past 366 fall in the "
                    "next calendar year)"
                )
            last = eos
        if self.background not in ("soil", "water"):
            raise InputError(
                f"class {self.name!r}: background must be 'soil' or 'water', got {self.background!r}"
            )
        if self.rate_up <= 0 or self.rate_down <= 0:
            raise InputError(f"class {self.name!r}: rate_up and rate_down must be > 0")
        object.__setattr__(self, "amplitudes", amps)

    @property
    def n_seasons(self) -> int:
        """Number of growing seasons a year."""
        return len(self.seasons)


#: The default classes of :func:`synthetic_cube` (pass names or :class:`LandClass` objects).
DEFAULT_CLASSES: dict[str, LandClass] = {
    c.name: c
    for c in (
        LandClass("water", "#1f78b4", base=-0.4, background="water", weight=0.5),
        LandClass("urban", "#e31a1c", base=0.12, weight=0.6),
        LandClass(
            "cropland", "#ffd92f", base=0.18, seasons=((125, 240),), amplitude=0.65,
            rate_up=0.12, rate_down=0.10,
        ),
        LandClass(
            "double_crop", "#ff7f00", base=0.18, seasons=((80, 150), (205, 285)),
            amplitude=(0.55, 0.5), rate_up=0.15, rate_down=0.13,
        ),
        LandClass(
            "grassland", "#b2df8a", base=0.35, seasons=((100, 280),), amplitude=0.35,
            rate_up=0.08, rate_down=0.06,
        ),
        LandClass(
            "forest", "#33a02c", base=0.4, seasons=((115, 295),), amplitude=0.45,
            rate_up=0.1, rate_down=0.08, weight=1.2, breakable=True,
        ),
    )
}  # fmt: skip
