"""Slope, aspect, roughness, TRI and curvature of a DEM, nodata-aware, streamed in chunks (dask).

- **Slope and aspect at the DEM's own baseline**: Horn (1981)'s 3 × 3 finite differences (as GDAL, xDEM and
  ArcGIS). Aspect is the downslope direction in degrees clockwise from *true* north (the grid convergence of
  the projection removed per pixel), 0–360; NaN where the ground is flat.
- **Slope at a baseline B** (a lander footprint): the least-squares plane over the n × n window with
  n = 2·round(B / 2·res) + 1 (so the window spans ≈ B), uniform weights; separable sums.
- **Roughness**: RMS height residual to that plane (metres).
- **TRI**: Riley et al. (1999), √Σ(z_i − z_0)² over the 8 neighbours (metres).
- **Curvature**: −2(D + E) of Zevenbergen & Thorne (1987) in m⁻¹ (ArcGIS and xDEM report it ×100).
A value is NaN when any pixel of its window is nodata. Gradients are corrected by the projection's scale factor,
interpolated per pixel from a grid every 64 pixels (0.2 % at 85°S in the pole-true polar stereographic
projection), so chunk borders leave no trace.

xDEM would cover Horn slope, TRI and curvature, but its latest release on the package index (0.2.3) pins
geoutils 0.2.5, which requires pandas < 3; these few filters are written here instead (tested against closed
forms: planes, paraboloids).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from selenite.errors import InputError
from selenite.geo.crs import map_to_lonlat
from selenite.geo.raster import RasterInfo
from selenite.geo.sphere import great_circle_distance_m, initial_bearing_deg


def window_size(baseline_m: float, res_m: float) -> int:
    return int(max(3, 2 * round(baseline_m / (2 * res_m)) + 1))


def _shift(z, dr, dc):
    """z shifted so that out[r, c] = z[r + dr, c + dc] (NaN outside)."""
    out = np.full_like(z, np.nan)
    h, w = z.shape
    rs = slice(max(0, -dr), min(h, h - dr))
    cs = slice(max(0, -dc), min(w, w - dc))
    out[rs, cs] = z[rs.start + dr:rs.stop + dr, cs.start + dc:cs.stop + dc]
    return out


def horn(z: np.ndarray, res_m: float, sign_x: float = 1.0, sign_y: float = -1.0):
    """(dz/dx, dz/dy) in map axes (x east-ish, y north-ish) by Horn's 3 × 3 differences."""
    n = {(dr, dc): _shift(z, dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
    dzdc = ((n[-1, 1] + 2 * n[0, 1] + n[1, 1]) - (n[-1, -1] + 2 * n[0, -1] + n[1, -1])) / (8 * res_m)
    dzdr = ((n[1, -1] + 2 * n[1, 0] + n[1, 1]) - (n[-1, -1] + 2 * n[-1, 0] + n[-1, 1])) / (8 * res_m)
    return dzdc * sign_x, dzdr * sign_y


def slope_deg(gx, gy):
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def aspect_grid_deg(gx, gy):
    """Downslope direction, degrees clockwise from grid north (NaN on flat ground)."""
    a = np.degrees(np.arctan2(-gx, -gy)) % 360.0
    return np.where((gx == 0) & (gy == 0), np.nan, a)


def plane_fit(z: np.ndarray, res_m: float, n: int, sign_x: float = 1.0, sign_y: float = -1.0):
    """Least-squares plane over n × n windows: (dz/dx, dz/dy, RMS residual), NaN where the window has nodata."""
    valid = np.isfinite(z)
    zz = np.where(valid, z, 0.0)
    k = n // 2
    x = np.arange(-k, k + 1, dtype=float)
    ones = np.ones(n)
    box = ones / n

    def sep(a, wr, wc):
        return ndimage.correlate1d(ndimage.correlate1d(a, wr, axis=0, mode="constant"), wc, axis=1,
                                   mode="constant")

    full = sep(valid.astype(float), ones, ones) > n * n - 0.5
    mean = sep(zz, box, box)
    mean2 = sep(zz * zz, box, box)
    sxx = (x ** 2).mean()
    p = sep(zz, box, x / n) / sxx          # dz per column
    q = sep(zz, x / n, box) / sxx          # dz per row
    var_res = mean2 - mean ** 2 - (p ** 2 + q ** 2) * sxx
    rms = np.sqrt(np.clip(var_res, 0, None))
    gx, gy = p / res_m * sign_x, q / res_m * sign_y
    return tuple(np.where(full, a, np.nan) for a in (gx, gy, rms))


def tri(z: np.ndarray) -> np.ndarray:
    s = np.zeros_like(z)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                s += (_shift(z, dr, dc) - z) ** 2
    return np.sqrt(s)


def curvature(z: np.ndarray, res_m: float) -> np.ndarray:
    d = ((_shift(z, 0, -1) + _shift(z, 0, 1)) / 2 - z) / res_m ** 2
    e = ((_shift(z, -1, 0) + _shift(z, 1, 0)) / 2 - z) / res_m ** 2
    return -2 * (d + e)


def grid_convergence_deg(info: RasterInfo, col, row) -> np.ndarray:
    """True azimuth (degrees clockwise from north) of grid north at pixels."""
    x, y = info.pixel_to_map(col, row)
    d = info.res[1]
    lon0, lat0 = map_to_lonlat(info.crs, x, y)
    lon1, lat1 = map_to_lonlat(info.crs, x, y + d)
    return np.asarray(initial_bearing_deg(lon0, lat0, lon1, lat1))


def scale_factor(info: RasterInfo, col: float, row: float) -> float:
    """Map metres per true metre at a pixel (the projection's scale factor along x)."""
    x, y = info.pixel_to_map(col, row)
    d = info.res[0]
    lon0, lat0 = map_to_lonlat(info.crs, x - d / 2, y)
    lon1, lat1 = map_to_lonlat(info.crs, x + d / 2, y)
    return float(d / great_circle_distance_m(lon0, lat0, lon1, lat1))


def scale_grid(info: RasterInfo, step: int = 64):
    """The projection's scale factor on a coarse grid of pixels (every ``step``, edges included)."""
    rows = np.unique(np.r_[np.arange(0, info.height, step), info.height - 1]).astype(float)
    cols = np.unique(np.r_[np.arange(0, info.width, step), info.width - 1]).astype(float)
    cc, rr = np.meshgrid(cols, rows)
    x, y = info.pixel_to_map(cc, rr)
    d = info.res[0]
    lon0, lat0 = map_to_lonlat(info.crs, x - d / 2, y)
    lon1, lat1 = map_to_lonlat(info.crs, x + d / 2, y)
    return rows, cols, d / great_circle_distance_m(lon0, lat0, lon1, lat1)


def scale_field(grid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear scale factor at pixel rows × cols (1-D index arrays) from :func:`scale_grid`."""
    gr, gc, k = grid
    rows = np.clip(rows, gr[0], gr[-1])
    cols = np.clip(cols, gc[0], gc[-1])
    by_row = np.array([np.interp(cols, gc, k[i]) for i in range(len(gr))])   # (len(gr), len(cols))
    return np.array([np.interp(rows, gr, by_row[:, j]) for j in range(len(cols))]).T


def check_grid(info: RasterInfo) -> tuple[float, float, float]:
    """(true pixel size m, sign_x, sign_y) of a projected, north-up, square-pixel raster; InputError otherwise."""
    if info.crs is None:
        raise InputError("the DEM has no CRS")
    if info.crs.is_geographic:
        raise InputError("the DEM is in geographic coordinates (degrees); slopes and horizons need a projected "
                         "map in metres: reproject it first, e.g. `selenite terrain reproject --dem DEM.tif "
                         "--out DEM_ps.tif` (polar stereographic)")
    t = info.transform
    if abs(t.b) > 1e-9 * abs(t.a) or abs(t.d) > 1e-9 * abs(t.e):
        raise InputError("the DEM's grid is rotated; resample it to a north-up grid first")
    if abs(abs(t.a) - abs(t.e)) > 1e-6 * abs(t.a):
        raise InputError(f"the DEM's pixels are not square ({abs(t.a)} × {abs(t.e)} map units)")
    k = scale_factor(info, (info.width - 1) / 2, (info.height - 1) / 2)
    return abs(t.a) / k, float(np.sign(t.a)), float(np.sign(t.e))
