"""Crater catalogues rasterised: rim rings, crater disks, and the training targets of the detector.

Pixel convention: (x, y) = (col, row) with (0, 0) the centre of the top-left pixel. A crater of diameter D px
has its rim on the circle of radius D/2 around its centre; a pixel belongs to the ring when its centre lies
within ``width/2`` of that circle (``width`` 1 gives the one-pixel rings that DeepMoon and LunarSite score).

Targets (``detector_targets``) are three maps for the craters whose diameter falls in the detector's range:
- ``rim``: the ring (width 1.5 px, so small rims stay closed), 0/1;
- ``centre``: a Gaussian peak exp(-d²/2σ²) at each centre, σ = max(0.8, D/12) px, the larger of overlapping
  peaks kept;
- ``size``: log2(D) at the pixels within max(1.5, D/6) px of a centre, with ``size_weight`` 1 there, 0 elsewhere.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from selenite.errors import InputError


@numba.njit(cache=True)
def _rings(out, xs, ys, radii, width, fill):
    ny, nx = out.shape
    half = width / 2.0
    for k in range(xs.shape[0]):
        r = radii[k]
        reach = r + half + 1.0
        c0 = max(int(np.floor(xs[k] - reach)), 0)
        c1 = min(int(np.ceil(xs[k] + reach)), nx - 1)
        r0 = max(int(np.floor(ys[k] - reach)), 0)
        r1 = min(int(np.ceil(ys[k] + reach)), ny - 1)
        for row in range(r0, r1 + 1):
            dy = row - ys[k]
            for col in range(c0, c1 + 1):
                d = np.sqrt((col - xs[k]) ** 2 + dy * dy)
                if fill:
                    if d <= r:
                        out[row, col] = 1
                elif abs(d - r) <= half:
                    out[row, col] = 1


def ring_mask(shape: tuple[int, int], x, y, diameter, width: float = 1.0) -> np.ndarray:
    """uint8 mask of the rims of craters at (x, y) px with diameters in px."""
    out = np.zeros(shape, np.uint8)
    _rings(out, *_as_arrays(x, y, np.asarray(diameter, float) / 2.0), float(width), False)
    return out


def disk_mask(shape: tuple[int, int], x, y, diameter) -> np.ndarray:
    """uint8 mask of the crater interiors (disks)."""
    out = np.zeros(shape, np.uint8)
    _rings(out, *_as_arrays(x, y, np.asarray(diameter, float) / 2.0), 1.0, True)
    return out


def _as_arrays(*arrays):
    return tuple(np.ascontiguousarray(np.asarray(a, np.float64).ravel()) for a in arrays)


@numba.njit(cache=True)
def _targets(rim, centre, size, weight, xs, ys, ds, rim_width):
    ny, nx = rim.shape
    half = rim_width / 2.0
    for k in range(xs.shape[0]):
        r = ds[k] / 2.0
        sigma = max(0.8, ds[k] / 12.0)
        core = max(1.5, ds[k] / 6.0)
        reach = max(r + half, 3.0 * sigma) + 1.0
        c0 = max(int(np.floor(xs[k] - reach)), 0)
        c1 = min(int(np.ceil(xs[k] + reach)), nx - 1)
        r0 = max(int(np.floor(ys[k] - reach)), 0)
        r1 = min(int(np.ceil(ys[k] + reach)), ny - 1)
        logd = np.log2(ds[k])
        for row in range(r0, r1 + 1):
            dy = row - ys[k]
            for col in range(c0, c1 + 1):
                dx = col - xs[k]
                d = np.sqrt(dx * dx + dy * dy)
                if abs(d - r) <= half:
                    rim[row, col] = 1.0
                g = np.exp(-(d * d) / (2.0 * sigma * sigma))
                if g > centre[row, col]:
                    centre[row, col] = g
                if d <= core and (weight[row, col] == 0.0 or g >= centre[row, col]):
                    size[row, col] = logd
                    weight[row, col] = 1.0


def detector_targets(shape: tuple[int, int], x, y, diameter, d_range: tuple[float, float],
                     rim_width: float = 1.5) -> np.ndarray:
    """(4, rows, cols) float32: rim, centre, size (log2 D), size weight, for craters with D in ``d_range`` px.

    Smaller craters than the range are left out of the targets; craters larger than it too (another level of
    the detector's image pyramid finds them). Craters are drawn largest first so that a small crater's peak
    and size win inside a large one.
    """
    x, y, d = _as_arrays(x, y, diameter)
    keep = (d >= d_range[0]) & (d <= d_range[1])
    order = np.argsort(-d[keep], kind="stable")
    out = np.zeros((4, *shape), np.float32)
    _targets(out[0], out[1], out[2], out[3], x[keep][order], y[keep][order], d[keep][order], float(rim_width))
    return out


def catalogue_to_pixels(craters: pd.DataFrame, info) -> pd.DataFrame:
    """Craters given by lon/lat (degrees, east-positive, either ±180 or 0–360) and diameter (``diameter_m`` or
    ``diameter_km``) placed on a raster: adds ``x_px, y_px, diameter_px``.

    The diameter in pixels is measured in the raster's own projection: the centre and the points D/2 away to
    the north and to the east are projected and their mean pixel distance doubled, so a polar stereographic
    or any other CRS gets its local scale right.
    """
    from selenite.geo.raster import RasterInfo
    from selenite.geo.sphere import destination

    if not isinstance(info, RasterInfo):
        raise TypeError("info must be a RasterInfo")
    if info.crs is None:
        raise InputError("the raster has no CRS: craters given by lon/lat cannot be placed on it")
    if "diameter_m" in craters:
        d_m = craters["diameter_m"].to_numpy(float)
    elif "diameter_km" in craters:
        d_m = craters["diameter_km"].to_numpy(float) * 1000.0
    else:
        raise InputError("the catalogue has no diameter_m or diameter_km column")
    lon = craters["lon"].to_numpy(float)
    lat = craters["lat"].to_numpy(float)
    lon = (lon + 180.0) % 360.0 - 180.0
    col, row = info.lonlat_to_pixel(lon, lat)
    col, row = np.asarray(col, float), np.asarray(row, float)
    scale = np.zeros_like(d_m)
    for bearing in (0.0, 90.0):
        lon2, lat2 = destination(lon, lat, bearing, d_m / 2.0)
        c2, r2 = info.lonlat_to_pixel(lon2, lat2)
        scale += np.hypot(np.asarray(c2) - col, np.asarray(r2) - row)
    out = craters.copy()
    out["x_px"], out["y_px"], out["diameter_px"] = col, row, scale   # sum of two half-diameters = D
    return out
