"""Lunar coordinate reference systems (IAU 2015 Moon, through pyproj).

The IAU 2015 codes used here: ``IAU_2015:30100`` (planetocentric longitude/latitude on the 1737.4 km sphere),
``IAU_2015:30135`` / ``30130`` (south / north polar stereographic, true scale at the pole),
``IAU_2015:30110`` (equirectangular, centre longitude 0). Local maps (the synthetic world, a landing site)
use a stereographic projection centred on the site, built on the same sphere, whose scale error within 5 km
of the centre is below 2e-6.

Longitudes are planetocentric, positive east, in [-180, 180) unless a function says otherwise.

References: Archinal et al. (2018) Celest. Mech. Dyn. Astr. 130:22 (IAU WGCCRE 2015); PROJ's IAU_2015
authority (Hare et al. 2022).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import PolarStereographicBConversion, StereographicConversion

from selenite.errors import RasterError

MOON_RADIUS_M = 1737400.0
"""Mean radius of the Moon's reference sphere (IAU 2015; LOLA's height reference), metres."""

GEOGRAPHIC = "IAU_2015:30100"
SOUTH_POLAR_STEREOGRAPHIC = "IAU_2015:30135"
NORTH_POLAR_STEREOGRAPHIC = "IAU_2015:30130"
EQUIRECTANGULAR = "IAU_2015:30110"


@lru_cache(maxsize=64)
def _crs_from_string(text: str) -> CRS:
    return CRS.from_user_input(text)


def as_crs(crs: object) -> CRS:
    """A pyproj CRS from a pyproj/rasterio CRS, an authority code or WKT."""
    if isinstance(crs, CRS):
        return crs
    if hasattr(crs, "to_wkt"):  # rasterio.crs.CRS
        return _crs_from_string(crs.to_wkt())
    return _crs_from_string(str(crs))


def moon_geographic() -> CRS:
    return as_crs(GEOGRAPHIC)


def polar_stereographic(south: bool = True, standard_parallel_deg: float | None = None) -> CRS:
    """Polar stereographic map of the Moon sphere.

    Without ``standard_parallel_deg`` the IAU 2015 code (true scale at the pole) is returned; with it, a
    variant B projection true at that latitude (e.g. -70 as used by Wueller et al. 2026).
    """
    if standard_parallel_deg is None:
        return as_crs(SOUTH_POLAR_STEREOGRAPHIC if south else NORTH_POLAR_STEREOGRAPHIC)
    conv = PolarStereographicBConversion(
        latitude_standard_parallel=standard_parallel_deg, longitude_origin=0.0
    )
    return ProjectedCRS(conv, name="Moon 2015 polar stereographic", geodetic_crs=moon_geographic())


def local_stereographic(lon_deg: float, lat_deg: float) -> CRS:
    """A stereographic map centred on (lon, lat): metres, east/north axes, scale 1 at the centre."""
    conv = StereographicConversion(latitude_natural_origin=lat_deg, longitude_natural_origin=lon_deg)
    return ProjectedCRS(conv, name=f"Moon 2015 local stereographic {lat_deg:.4f} {lon_deg:.4f}",
                        geodetic_crs=moon_geographic())


def radius_of(crs: object) -> float | None:
    """Semi-major axis of a CRS's ellipsoid in metres, or None when it has none."""
    ell = as_crs(crs).ellipsoid
    return None if ell is None else float(ell.semi_major_metre)


def is_lunar(crs: object) -> bool:
    """True when the CRS is defined on a Moon-sized body (1.72e6 m < a < 1.75e6 m)."""
    if crs is None:
        return False
    try:
        a = radius_of(crs)
    except Exception:  # noqa: BLE001 - anything unparsable is not a lunar CRS
        return False
    return a is not None and 1.72e6 < a < 1.75e6


def require_lunar(crs: object, what: str) -> CRS:
    """Return the CRS as pyproj, or raise RasterError saying the raster has none or a non-lunar one."""
    if crs is None:
        raise RasterError(f"{what} has no CRS (georeference it in a lunar CRS, e.g. IAU_2015:30135)")
    if not is_lunar(crs):
        name = as_crs(crs).name if crs is not None else "none"
        raise RasterError(f"{what} is not in a lunar CRS (found '{name}'); selenite needs Moon coordinates")
    return as_crs(crs)


@lru_cache(maxsize=128)
def _transformer(src_wkt: str, dst_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt), always_xy=True)


def transformer(src: object, dst: object) -> Transformer:
    """Cached transformer with x/east first, y/north second on both sides."""
    return _transformer(as_crs(src).to_wkt(), as_crs(dst).to_wkt())


def lonlat_to_map(crs: object, lon, lat):
    """Planetocentric lon/lat (degrees) → map x, y (metres) of a projected lunar CRS."""
    c = as_crs(crs)
    return transformer(c.geodetic_crs, c).transform(np.asarray(lon, float), np.asarray(lat, float))


def map_to_lonlat(crs: object, x, y):
    """Map x, y of a projected lunar CRS → planetocentric lon in [-180, 180) and lat, degrees."""
    c = as_crs(crs)
    lon, lat = transformer(c, c.geodetic_crs).transform(np.asarray(x, float), np.asarray(y, float))
    return normalize_lon(lon), lat


def equivalent(a: object, b: object, extent_m: float = 500_000.0, tol_m: float = 1e-4) -> bool:
    """True when two projected lunar CRSs map points identically (e.g. polar stereographic variant A with
    k = 1 and variant B true at the pole), probed on a grid of points within ``extent_m`` of the origin."""
    ca, cb = as_crs(a), as_crs(b)
    if ca.equals(cb):
        return True
    if ca.is_geographic != cb.is_geographic:
        return False
    v = np.linspace(-extent_m, extent_m, 7) if not ca.is_geographic else np.linspace(-80, 80, 7)
    x, y = np.meshgrid(v, v)
    with np.errstate(all="ignore"):
        u, w = transformer(ca, cb).transform(x.ravel(), y.ravel())
    ok = np.isfinite(u) & np.isfinite(w)
    tol = tol_m if not ca.is_geographic else 1e-9
    return bool(ok.all() and np.abs(u - x.ravel()).max() < tol and np.abs(w - y.ravel()).max() < tol)


def normalize_lon(lon, east_360: bool = False):
    """Wrap longitudes to [-180, 180) or, with ``east_360``, to [0, 360)."""
    lon = np.asarray(lon, dtype=float)
    out = np.mod(lon, 360.0) if east_360 else np.mod(lon + 180.0, 360.0) - 180.0
    return out if out.ndim else float(out)
