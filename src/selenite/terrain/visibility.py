"""Sun and Earth visibility of every DEM pixel over a period, from its horizon and the ephemeris.

For each instant the body's elevation and *grid* azimuth are computed exactly (parallax and the local vertical
of the sphere included) at the centre and at four offsets of every block of at most ``block`` pixels, and
linearised across the block: the second-order residual over a block of half-width L is ≈ (L/R)²/2 rad, below
0.001° for L ≤ 10 km (tested). The horizon is interpolated between azimuth bands; the visible fraction of the
body's disk (angular radius from its distance: ≈0.27° for the Sun, ≈0.95° for the Earth) above a locally
straight horizon is the circular-segment area fraction ``(π − acos x + x√(1 − x²))/π`` with
x = (elevation − horizon)/radius.

Products per pixel: mean visible fraction (% of time) of the Sun and of the Earth; the lowest Sun visibility over
any synodic month (29.53 days) of the period; PSR (no part of the Sun ever above the horizon at the sampled
instants); longest continuous darkness and sunlight, and longest period with
both some Sun and some Earth in view (days; runs are cut at the ends of the period). Unknown horizons (no DEM
ahead) count as the flat horizon, 0°.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from selenite.geo.crs import MOON_RADIUS_M, map_to_lonlat
from selenite.geo.raster import RasterInfo
from selenite.terrain.ephemeris import BodyTrack
from selenite.terrain.horizon import HORIZON_NODATA, HORIZON_SCALE

SYNODIC_MONTH_DAYS = 29.530589
AZ_SHARED_DEG = 0.002      # azimuth error allowed by sharing a row chunk's azimuth (int16 horizons round to 0.005°)


def _unit(lon_deg, lat_deg):
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def local_directions(info: RasterInfo, col, row, height_m, body_km: np.ndarray,
                     radius_m: float = MOON_RADIUS_M) -> tuple[np.ndarray, np.ndarray]:
    """Exact elevation and grid azimuth (degrees, clockwise from grid north) of a body seen from DEM pixels.

    ``col, row, height_m``: (n,) pixel positions and heights; ``body_km``: (T, 3) positions in the Moon ME
    frame. Returns two (T, n) arrays."""
    col, row, height_m = (np.atleast_1d(np.asarray(a, float)) for a in (col, row, height_m))
    x, y = info.pixel_to_map(col, row)
    lon, lat = map_to_lonlat(info.crs, x, y)
    up = _unit(lon, lat)                                           # (n, 3)
    P = up * (radius_m + height_m)[:, None]
    d = 0.5 * info.res[0]
    axes = []
    for dx, dy in ((d, 0.0), (0.0, d)):
        lp = map_to_lonlat(info.crs, x + dx, y + dy)
        lm = map_to_lonlat(info.crs, x - dx, y - dy)
        g = _unit(*lp) - _unit(*lm)
        g -= (g * up).sum(-1, keepdims=True) * up                   # into the tangent plane
        axes.append(g / np.linalg.norm(g, axis=-1, keepdims=True))
    gx, gy = axes
    v = body_km[:, None, :] * 1000.0 - P[None]                     # (T, n, 3)
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    el = np.degrees(np.arcsin(np.clip((v * up).sum(-1), -1, 1)))
    az = np.degrees(np.arctan2((v * gx).sum(-1), (v * gy).sum(-1))) % 360.0
    return el, az


def _wrap(a):
    return (a + 180.0) % 360.0 - 180.0


@dataclass
class Blocks:
    """Block layout and per-block, per-instant linear models of a body's elevation and grid azimuth."""

    size: int
    centres: np.ndarray        # (nb, 2) col, row of each block's centre
    coef: np.ndarray           # (nb, T, 6): el0, d_el/d_col, d_el/d_row, az0, d_az/d_col, d_az/d_row


def block_layout(shape: tuple[int, int], res_m: float, max_block: int = 512, max_half_m: float = 10_000.0):
    h, w = shape
    size = int(max(16, min(max_block, 2 * max_half_m / res_m)))
    rows = np.arange(0, h, size)
    cols = np.arange(0, w, size)
    centres = []
    for r0 in rows:
        for c0 in cols:
            centres.append(((c0 + min(c0 + size, w) - 1) / 2, (r0 + min(r0 + size, h) - 1) / 2))
    return size, np.array(centres, float)


def linearise(info: RasterInfo, z: np.ndarray, track: BodyTrack, size: int, centres: np.ndarray) -> Blocks:
    """Per-block linear models of the body's direction (see module doc)."""
    nb = len(centres)
    coef = np.empty((nb, len(track.times), 6))
    half = max(size / 2, 1.0)
    hmean = float(np.nanmean(z)) if np.isfinite(z).any() else 0.0
    for b, (cc, rc) in enumerate(centres):
        cols = np.array([cc, cc + half, cc - half, cc, cc])
        rows = np.array([rc, rc, rc, rc + half, rc - half])
        el, az = local_directions(info, cols, rows, np.full(5, hmean), track.position_km)
        coef[b, :, 0] = el[:, 0]
        coef[b, :, 1] = (el[:, 1] - el[:, 2]) / (2 * half)
        coef[b, :, 2] = (el[:, 3] - el[:, 4]) / (2 * half)
        coef[b, :, 3] = az[:, 0]
        coef[b, :, 4] = _wrap(az[:, 1] - az[:, 2]) / (2 * half)
        coef[b, :, 5] = _wrap(az[:, 3] - az[:, 4]) / (2 * half)
    return Blocks(size, centres, coef)


def angular_radius_deg(track: BodyTrack) -> np.ndarray:
    return np.degrees(np.arcsin(track.radius_km / np.linalg.norm(track.position_km, axis=1)))


@numba.njit(cache=True, inline="always")
def disk_fraction(d, rho):
    """Visible fraction of a disk of angular radius rho whose centre is d above a straight horizon."""
    if d >= rho:
        return 1.0
    if d <= -rho:
        return 0.0
    x = d / rho
    return (math.pi - math.acos(x) + x * math.sqrt(1.0 - x * x)) / math.pi


_SEGMENT_N = 2048
_SEGMENT = np.array([(math.pi - math.acos(x) + x * math.sqrt(1.0 - x * x)) / math.pi
                     for x in np.linspace(-1.0, 1.0, _SEGMENT_N + 1)])


@numba.njit(cache=True, inline="always")
def _fraction_lut(d, rho, lut):
    """:func:`disk_fraction` from a table (linear between 2049 nodes: error < 1e-5 of the disk, tested)."""
    if d >= rho:
        return 1.0
    if d <= -rho:
        return 0.0
    f = (d / rho + 1.0) * (0.5 * _SEGMENT_N)
    i = int(f)
    if i >= _SEGMENT_N:
        return 1.0
    w = f - i
    return lut[i] + w * (lut[i + 1] - lut[i])


@numba.njit(cache=True, inline="always")
def _horizon_at(hrow, az, k_az, n_az):
    """Horizon (degrees) at grid azimuth ``az`` from one pixel's bands (n_az + 1 values, the first repeated)."""
    fi = az * k_az
    if fi < 0.0:
        fi += n_az
    elif fi >= n_az:
        fi -= n_az
    i0 = int(fi)
    if i0 >= n_az:          # rounding at the wrap
        i0 = n_az - 1
    f = fi - i0
    return hrow[i0] + f * (hrow[i0 + 1] - hrow[i0])


@numba.njit(parallel=True, cache=True)
def _visibility(hz, valid, size, centres, sun, sun_rho, earth, earth_rho, out_f, out_i, lut, window, chunk):
    """Per pixel, over all instants: out_f[0] mean Sun fraction, out_f[1] mean Earth fraction, out_f[2] lowest
    mean Sun fraction over any ``window`` consecutive instants (a synodic month); out_i (steps):
    0 longest dark, 1 longest lit, 2 longest Sun+Earth, 3 ever lit (0/1)."""
    n_az, h, w = hz.shape
    T = sun.shape[1]
    nbc = (w + size - 1) // size
    k_az = n_az / 360.0
    n_ch = (w + chunk - 1) // chunk
    for task in numba.prange(h * n_ch):
        r = task // n_ch
        c_lo = (task % n_ch) * chunk
        c_hi = min(c_lo + chunk, w)
        # gather the chunk's horizons band by band (contiguous reads), pixel-major for the time loop
        hbuf = np.empty((c_hi - c_lo, n_az + 1), np.float32)
        for a in range(n_az):
            for c in range(c_lo, c_hi):
                v = hz[a, r, c]
                hbuf[c - c_lo, a] = 0.0 if v == HORIZON_NODATA else v * HORIZON_SCALE
        for c in range(c_lo, c_hi):
            hbuf[c - c_lo, n_az] = hbuf[c - c_lo, 0]
        cum = np.empty(T + 1)
        # the chunk shares each instant's azimuth band and weight, taken at its middle: the grid azimuth of the Sun
        # or the Earth moves by at most AZ_SHARED_DEG from there (the chunk is sized for it in visibility())
        b0 = (r // size) * nbc + c_lo // size
        dxm = (c_lo + c_hi - 1) / 2.0 - centres[b0, 0]
        dy0 = r - centres[b0, 1]
        s_i = np.empty(T, np.int64)
        s_f = np.empty(T)
        e_i = np.empty(T, np.int64)
        e_f = np.empty(T)
        for t in range(T):
            for which in range(2):
                cb = sun[b0] if which == 0 else earth[b0]
                fi = (cb[t, 3] + cb[t, 4] * dxm + cb[t, 5] * dy0) * k_az
                if fi < 0.0:
                    fi += n_az
                elif fi >= n_az:
                    fi -= n_az
                i0 = min(int(fi), n_az - 1)
                if which == 0:
                    s_i[t] = i0
                    s_f[t] = fi - i0
                else:
                    e_i[t] = i0
                    e_f[t] = fi - i0
        for c in range(c_lo, c_hi):
            if not valid[r, c]:
                continue
            hrow = hbuf[c - c_lo]
            cum[0] = 0.0
            b = (r // size) * nbc + c // size
            dx = c - centres[b, 0]
            dy = r - centres[b, 1]
            sb = sun[b]
            eb = earth[b]
            s_sum = 0.0
            e_sum = 0.0
            dark = 0
            lit = 0
            se = 0
            l_dark = 0
            l_lit = 0
            l_se = 0
            ever = 0
            for t in range(T):
                el = sb[t, 0] + sb[t, 1] * dx + sb[t, 2] * dy
                i0 = s_i[t]
                hs = hrow[i0] + s_f[t] * (hrow[i0 + 1] - hrow[i0])
                fs = _fraction_lut(el - hs, sun_rho[t], lut)
                el = eb[t, 0] + eb[t, 1] * dx + eb[t, 2] * dy
                i0 = e_i[t]
                he = hrow[i0] + e_f[t] * (hrow[i0 + 1] - hrow[i0])
                fe = _fraction_lut(el - he, earth_rho[t], lut)
                s_sum += fs
                e_sum += fe
                cum[t + 1] = s_sum
                if fs > 0.0:
                    ever = 1
                    lit += 1
                    dark = 0
                    l_lit = max(l_lit, lit)
                    if fe > 0.0:
                        se += 1
                        l_se = max(l_se, se)
                    else:
                        se = 0
                else:
                    dark += 1
                    lit = 0
                    se = 0
                    l_dark = max(l_dark, dark)
            out_f[0, r, c] = s_sum / T
            out_f[1, r, c] = e_sum / T
            w_min = 1e30                                   # lowest sum over `window` consecutive instants
            for t in range(window, T + 1):
                w_min = min(w_min, cum[t] - cum[t - window])
            out_f[2, r, c] = w_min / window
            out_i[0, r, c] = l_dark
            out_i[1, r, c] = l_lit
            out_i[2, r, c] = l_se
            out_i[3, r, c] = ever


@dataclass
class VisibilityProducts:
    sun_pct: np.ndarray                 # float32, NaN outside the DEM
    earth_pct: np.ndarray
    sun_min_month_pct: np.ndarray       # lowest Sun visibility over any synodic month of the period
    psr: np.ndarray                     # uint8: 1 never lit, 0 lit at some instant, 255 nodata
    longest_dark_days: np.ndarray
    longest_sun_days: np.ndarray
    sun_earth_longest_days: np.ndarray


def visibility(hz: np.ndarray, z: np.ndarray, info: RasterInfo, sun: BodyTrack, earth: BodyTrack,
               step_hours: float, *, max_block: int = 512) -> VisibilityProducts:
    """Sun/Earth visibility products from horizons ``hz`` (int16 centidegrees, (n_az, rows, cols))."""
    size, centres = block_layout(z.shape, info.res[0], max_block)
    bs = linearise(info, z, sun, size, centres)
    be = linearise(info, z, earth, size, centres)
    valid = np.isfinite(z)
    out_f = np.zeros((3, *z.shape), np.float64)
    window = int(max(1, min(len(sun.times), round(SYNODIC_MONTH_DAYS * 24.0 / step_hours))))
    # pixels of a chunk share the bodies' azimuth at its middle: at most AZ_SHARED_DEG off at its ends
    rate = max(float(np.abs(bs.coef[:, :, 4]).max()), float(np.abs(be.coef[:, :, 4]).max()), 1e-12)
    chunk = int(min(128, max(1, 2 * AZ_SHARED_DEG / rate)))
    out_i = np.zeros((4, *z.shape), np.int32)
    _visibility(hz, valid, size, centres, bs.coef, angular_radius_deg(sun), be.coef, angular_radius_deg(earth),
                out_f, out_i, _SEGMENT, window, chunk)
    days = step_hours / 24.0

    def f32(a, scale):
        o = (a * scale).astype(np.float32)
        o[~valid] = np.nan
        return o

    psr = np.where(valid, 1 - out_i[3], 255).astype(np.uint8)
    return VisibilityProducts(f32(out_f[0], 100.0), f32(out_f[1], 100.0), f32(out_f[2], 100.0), psr,
                              f32(out_i[0], days),
                              f32(out_i[1], days), f32(out_i[2], days))
