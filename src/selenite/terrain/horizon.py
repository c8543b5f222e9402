"""Horizon elevation angles of every DEM pixel in N azimuths, with lunar curvature.

Method: for one azimuth the raster is swept along parallel straight lines one pixel apart (one sample per pixel along
axis, the pixel nearest the ideal line on the minor axis), so every pixel is an observer exactly once, at its own
height and position. Walking a line from its far end towards the observer side, the points already passed form
an upper convex hull; the horizon of the next point is its tangent to that hull (Dozier et al. 1981's sweep,
amortised O(1) per pixel and azimuth). Curvature: with distance u along the line, the elevation angle of a point
seen from u0 is ``tan e = (h − h0 − (u − u0)²/2R)/(u − u0) = (g − g0)/(u − u0) + u0/R`` where ``g = h − u²/2R``,
so the hull is built on g and the curvature drop is exact to the parabolic approximation (error ≲ h/R ≈ 0.3 %
of tan e for heights within 5 km of the sphere).

Observer height: an observer ``observer_m`` above the ground (a lander's solar array or antenna; PGDA and the
literature use 0, 2 and 10 m) looks from (u0, g0 + observer_m) while the terrain stays where it is. The hull is
still built on the ground points; the elevated observer's tangent vertex lies at or beyond the ground observer's
(raising the eye lowers near obstacles faster than far ones), and the slope to the hull's vertices seen from a
point above it is unimodal, so it is found by bisection over the remaining hull (O(log n) more per pixel).

Azimuths are measured clockwise from *grid* north (the raster's up direction); at the pole grid north and true
north differ by the longitude, which :mod:`selenite.terrain.visibility` accounts for per pixel.

Limits (stated, not hidden): near-field azimuths are quantised by the digital line (a neighbour one pixel away
is ≤ 27° off the nominal azimuth; at ten pixels ≤ 3°); terrain outside the DEM is unknown: a pixel with no DEM
ahead in an azimuth gets NaN there (treated as the flat horizon, 0°, by the visibility step).

Reference: Dozier, Bruno & Downey (1981) Computers & Geosciences 7:145 (fast horizon algorithm).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from selenite.geo.crs import MOON_RADIUS_M

# fast-math without the no-NaN / no-infinity assumptions (NaN marks unknown heights and horizons)
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}
HORIZON_SCALE = 0.01        # degrees per stored unit (int16 centidegrees)
HORIZON_NODATA = -32768


@numba.njit(cache=True, inline="always")
def _atan_deg(x):
    """atan in degrees, |error| < 2e-4° (a minimax polynomial on [0, 1] with the usual range reduction)."""
    ax = abs(x)
    inv = ax > 1.0
    a = 1.0 / ax if inv else ax
    a2 = a * a
    r = a * (0.99997726 + a2 * (-0.33262347 + a2 * (0.19354346 + a2 * (-0.11643287
                                                                       + a2 * (0.05265332 + a2 * -0.01172120)))))
    if inv:
        r = 1.5707963267948966 - r
    r = r * 57.29577951308232
    return -r if x < 0 else r


LINE_BLOCK = 16     # adjacent lines swept in lockstep (contiguous reads and writes)


@numba.njit(cache=True, inline="always")
def _elevated_tangent(hu, hg, kk, tp, u, g_eye):
    """Largest slope (hg − g_eye)/(hu − u) over hull vertices 0..tp of line kk (0 = farthest), by bisection:
    seen from a point above the hull the slope rises, then falls, towards the far end. Most often a low eye
    keeps the ground observer's vertex (one comparison); else the best lies in 0..tp−1."""
    if tp == 0 or (hg[kk, tp - 1] - g_eye) * (hu[kk, tp] - u) < (hg[kk, tp] - g_eye) * (hu[kk, tp - 1] - u):
        return (hg[kk, tp] - g_eye) / (hu[kk, tp] - u)
    lo = 0
    hi = tp - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        # is the next farther vertex at least as high in the view? then the best lies beyond mid
        if (hg[kk, mid - 1] - g_eye) * (hu[kk, mid] - u) >= (hg[kk, mid] - g_eye) * (hu[kk, mid - 1] - u):
            hi = mid - 1
        else:
            lo = mid
    return (hg[kk, lo] - g_eye) / (hu[kk, lo] - u)


@numba.njit(parallel=True, cache=True)
def _sweep_lines(z, lines, dm, dn, res, radius, o_lo, observer_m):
    """Tangent of the horizon along ideal lines j = o + i·t (o = o_lo + k, t = dn/dm, |t| ≤ 1) for the direction
    (dm, dn) in (axis 0, axis 1) pixel units; heights linearly interpolated across axis 1. ``lines[i, k]`` gets
    the tangent seen from ``observer_m`` above the ground (NaN: no height there or nothing ahead). Blocks of
    LINE_BLOCK adjacent lines advance together: they share the interpolation weight and read neighbouring
    heights."""
    n0, n1 = z.shape
    t = dn / dm
    n_lines = lines.shape[1]
    forward = dm > 0          # the direction points to growing i: far points have large i
    n_blocks = (n_lines + LINE_BLOCK - 1) // LINE_BLOCK
    for blk in numba.prange(n_blocks):
        k0 = blk * LINE_BLOCK
        nk = min(LINE_BLOCK, n_lines - k0)
        hu = np.empty((LINE_BLOCK, n0), np.float64)
        hg = np.empty((LINE_BLOCK, n0), np.float64)
        top = np.full(LINE_BLOCK, -1, np.int64)
        for step in range(n0):
            i = n0 - 1 - step if forward else step
            y = o_lo + k0 + i * t
            jb = int(math.floor(y))
            w = y - jb
            if w > 1.0 - 1e-9:        # on a pixel row up to rounding
                jb += 1
                w = 0.0
            exact = w < 1e-9
            for kk in range(nk):
                k = k0 + kk
                j0 = jb + kk
                lines[i, k] = np.nan
                if exact:
                    if j0 < 0 or j0 >= n1:
                        continue
                    h = z[i, j0]
                else:
                    if j0 < 0 or j0 + 1 >= n1:
                        continue
                    h = (1.0 - w) * z[i, j0] + w * z[i, j0 + 1]
                if not (h == h):        # NaN: no terrain here, nothing to observe or to hide behind
                    continue
                u = (i * dm + (y + kk) * dn) * res
                g = h - u * u / (2.0 * radius)
                tp = top[kk]
                while tp >= 1:
                    a = (hg[kk, tp] - g) * (hu[kk, tp - 1] - u)
                    b = (hg[kk, tp - 1] - g) * (hu[kk, tp] - u)
                    if a <= b:
                        tp -= 1
                    else:
                        break
                if tp >= 0:
                    if observer_m > 0.0:
                        lines[i, k] = _elevated_tangent(hu, hg, kk, tp, u, g + observer_m) + u / radius
                    else:
                        lines[i, k] = (hg[kk, tp] - g) / (hu[kk, tp] - u) + u / radius
                tp += 1
                hu[kk, tp] = u
                hg[kk, tp] = g
                top[kk] = tp


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _lines_to_pixels(lines, out, z, t, o_lo, scale, nodata):
    """Pixel (i, j) lies between lines floor(j − i·t) and the next: its horizon is interpolated between them and
    stored as int16 (degrees / scale). Branch-light, so that the loop over j vectorises."""
    n0, n1 = out.shape
    n_lines = lines.shape[1]
    inv = 1.0 / scale
    for i in numba.prange(n0):
        row = lines[i]
        for j in range(n1):
            o = j - i * t
            o1 = int(math.floor(o + 1e-9))
            f = max(o - o1, 0.0)
            k = min(max(o1 - o_lo, 0), n_lines - 2)
            a = row[k]
            b = row[k + 1]
            a_ok = a == a
            b_ok = b == b
            # both known: interpolate; one known: take it when the pixel is on its side of the middle
            v = (1.0 - f) * a + f * b
            if not (a_ok and b_ok):
                v = a if (a_ok and (f < 0.5 or f < 1e-9)) else (b if (b_ok and f > 0.5) else np.nan)
            if f < 1e-9:
                v = a
            if v == v and z[i, j] == z[i, j]:
                out[i, j] = np.int16(math.floor(_atan_deg(v) * inv + 0.5))
            else:
                out[i, j] = nodata


def _line_range(n0: int, n1: int, t: float) -> tuple[int, int]:
    lo = int(np.floor(min(0.0, -(n0 - 1) * t))) - 1
    hi = int(np.ceil(max(n1 - 1.0, n1 - 1 - (n0 - 1) * t))) + 1
    return lo, hi - lo + 1


def horizon_direction(azimuth_deg: float, sign_x: float = 1.0, sign_y: float = -1.0) -> tuple[float, float]:
    """(d_col, d_row) pixel direction of a grid azimuth (clockwise from grid north); sign_x/sign_y are the signs
    of the transform's a and e terms (north-up rasters: +1, −1)."""
    a = math.radians(azimuth_deg)
    return math.sin(a) * sign_x, math.cos(a) * sign_y


def _horizon_into(z: np.ndarray, zt: np.ndarray, azimuth_deg: float, res_m: float, out: np.ndarray, sign_x: float,
                  sign_y: float, radius_m: float, buf: dict, observer_m: float = 0.0) -> None:
    """One azimuth into ``out`` (int16, z's shape). ``zt`` is z transposed and contiguous: directions closer to
    the rows are swept on it (contiguous memory)."""
    dc, dr = horizon_direction(azimuth_deg, sign_x, sign_y)
    if abs(dc) >= abs(dr):       # columns are the major axis: sweep the transposed DEM
        zz, dm, dn = zt, dc, dr
    else:
        zz, dm, dn = z, dr, dc
    n0, n1 = zz.shape
    t = dn / dm
    if abs(t) < 1e-12:            # an axis direction, up to the rounding of sin/cos
        t, dn = 0.0, 0.0
    o_lo, n_lines = _line_range(n0, n1, t)
    key = (n0, n_lines)
    if buf.get("key") != key:
        buf["key"], buf["lines"] = key, np.empty(key, np.float32)
    lines = buf["lines"]
    _sweep_lines(zz, lines, dm, dn, float(res_m), float(radius_m), o_lo, float(observer_m))
    # the transposed case writes through a transposed view: as fast here as a contiguous write, and no copy
    _lines_to_pixels(lines, out if zz is z else out.T, zz, t, o_lo, HORIZON_SCALE, HORIZON_NODATA)


def horizon_one(z: np.ndarray, azimuth_deg: float, res_m: float, *, sign_x: float = 1.0, sign_y: float = -1.0,
                radius_m: float = MOON_RADIUS_M, observer_m: float = 0.0) -> np.ndarray:
    """Horizon elevation (degrees, float32, NaN where unknown) of every pixel in one grid azimuth, seen from
    ``observer_m`` above the ground."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    out = np.empty(z.shape, np.int16)
    _horizon_into(z, np.ascontiguousarray(z.T), azimuth_deg, res_m, out, sign_x, sign_y, radius_m, {}, observer_m)
    return to_degrees(out)


def to_degrees(h: np.ndarray) -> np.ndarray:
    """Stored int16 horizons → float32 degrees with NaN where unknown."""
    d = h.astype(np.float32) * np.float32(HORIZON_SCALE)
    d[h == HORIZON_NODATA] = np.nan
    return d


def azimuth_grid(n: int) -> np.ndarray:
    """The n azimuths (degrees clockwise from grid north) of the horizon bands: 0, 360/n, ..."""
    return np.arange(n) * (360.0 / n)


def horizons(z: np.ndarray, n_azimuths: int, res_m: float, *, sign_x: float = 1.0, sign_y: float = -1.0,
             radius_m: float = MOON_RADIUS_M, notify=None, crop: tuple[int, int, int, int] | None = None,
             observer_m: float = 0.0) -> np.ndarray:
    """Horizons in ``n_azimuths`` bands as int16 centidegrees, shape (n, rows, cols), seen from ``observer_m``
    above the ground; HORIZON_NODATA where unknown (observer nodata, or no DEM ahead). ``crop`` = (r0, r1, c0, c1)
    keeps only that part of the DEM's horizons (a tile swept with its halo)."""
    if observer_m < 0:
        raise ValueError("the observer height must be ≥ 0 m")
    z = np.ascontiguousarray(z, dtype=np.float64)
    zt = np.ascontiguousarray(z.T)
    r0, r1, c0, c1 = crop or (0, z.shape[0], 0, z.shape[1])
    out = np.empty((n_azimuths, r1 - r0, c1 - c0), np.int16)
    full = None if crop is None else np.empty(z.shape, np.int16)
    buf: dict = {}
    for k, a in enumerate(azimuth_grid(n_azimuths)):
        if full is None:
            _horizon_into(z, zt, float(a), res_m, out[k], sign_x, sign_y, radius_m, buf, observer_m)
        else:
            _horizon_into(z, zt, float(a), res_m, full, sign_x, sign_y, radius_m, buf, observer_m)
            out[k] = full[r0:r1, c0:c1]
        if notify is not None:
            notify("horizons", (k + 1) / n_azimuths)
    return out
