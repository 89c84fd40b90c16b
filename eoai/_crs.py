"""Validation of the CRS arguments of eoai functions (private; raises eoai.errors.CRSError).

Examples
--------
>>> check_crs("EPSG:32633").epsg
32633
>>> check_crs(4326, projected=True)
Traceback (most recent call last):
...
eoai.errors.CRSError: crs=4326 is a geographic CRS (WGS 84, degrees) but a projected one is needed here (units of metres); pass a projected CRS such as the UTM zone of the area, e.g. crs='EPSG:32633'
"""

from __future__ import annotations

from typing import Any

from .errors import CRSError

__all__ = ["check_crs"]

_FIX = (
    "pass an EPSG code such as 'EPSG:32633' (UTM 33N) or 32633, a WKT or PROJ string, or a "
    "pyproj.CRS; look codes up at https://epsg.io"
)


def check_crs(crs: Any, what: str = "crs", *, projected: bool = False) -> Any:
    """``crs`` as an :class:`odc.geo.geom.CRS`, or a CRSError naming the value and the fix.

    Parameters
    ----------
    crs : str, int, pyproj.CRS or odc.geo CRS
        The value given by the user.
    what : str
        How the argument is named in the message (``"crs"``, ``"load: crs"``...).
    projected : bool
        Also require a projected CRS (pixel sizes in metres).

    Returns
    -------
    odc.geo.geom.CRS

    Raises
    ------
    eoai.errors.CRSError
        PROJ does not know ``crs`` (e.g. ``"EPSG:99999"``), or it is geographic while a projected
        CRS is needed.

    Examples
    --------
    >>> check_crs("EPSG:99999")
    Traceback (most recent call last):
    ...
    eoai.errors.CRSError: crs='EPSG:99999' is not a CRS that PROJ knows (crs not found: EPSG:99999); pass an EPSG code such as 'EPSG:32633' (UTM 33N) or 32633, a WKT or PROJ string, or a pyproj.CRS; look codes up at https://epsg.io
    """
    from odc.geo.geom import CRS

    if crs is None or isinstance(crs, bool):
        raise CRSError(f"{what} is {crs!r}; {_FIX}")
    if isinstance(crs, str) and not crs.strip():
        raise CRSError(f"{what} is an empty string; {_FIX}")
    try:
        out = crs if isinstance(crs, CRS) else CRS(crs)
    except Exception as err:  # noqa: BLE001 - pyproj raises CRSError, odc-geo ValueError/TypeError
        reason = str(err).split("proj_create: ")[-1].rstrip(")")
        raise CRSError(f"{what}={crs!r} is not a CRS that PROJ knows ({reason}); {_FIX}") from None
    if projected and out.geographic:
        name = out.to_wkt().split('"')[1] if '"' in out.to_wkt() else str(out)
        raise CRSError(
            f"{what}={crs!r} is a geographic CRS ({name}, degrees) but a projected one is needed "
            "here (units of metres); pass a projected CRS such as the UTM zone of the area, e.g. "
            f"{what.split(': ')[-1]}='EPSG:32633'"
        )
    return out
