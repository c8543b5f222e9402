"""Sun and Earth visibility of every DEM pixel over a period, from its horizon and the ephemeris.

For each instant the body's elevation and *grid* azimuth are computed exactly (parallax and the local vertical
of the sphere included) at the centre and at four offsets of every block of at most ``block`` pixels, and
linearised across the block: the second-order residual over a block of half-width L is ≈ (L/R)²/2 rad, below
0.003° for L ≤ 16 km (tested; the stored horizons are rounded to 0.005°). The horizon is interpolated between
azimuth bands at each pixel's own azimuth; the visible fraction of the body's disk (angular radius from its
distance: ≈0.27° for the Sun, ≈0.95° for the Earth) above a locally straight horizon is the circular-segment area
fraction ``(π − acos x + x√(1 − x²))/π`` with x = (elevation − horizon)/radius.

Products per pixel: mean visible fraction (% of time) of the Sun and of the Earth; the lowest Sun visibility over
any synodic month (29.53 days) of the period; PSR (no part of the Sun ever above the horizon at the sampled
instants); longest continuous darkness and sunlight, and longest period with
both some Sun and some Earth in view (days; runs are cut at the ends of the period); the share of start times from
which a surface stay (default 6.5 days, Artemis III's) keeps some Sun, and some Sun and some Earth, in view
throughout — NASA's "continuous access to sunlight during the stay", counted over every possible landing time.
Unknown horizons (no DEM ahead) count as the flat horizon, 0°.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from selenite.geo.crs import MOON_RADIUS_M, map_to_lonlat
from selenite.geo.raster import RasterInfo
from selenite.terrain.ephemeris import BodyTrack
from selenite.terrain.horizon import FAST, HORIZON_NODATA, HORIZON_SCALE

SYNODIC_MONTH_DAYS = 29.530589
STAY_DAYS = 6.5           # NASA: Artemis III's surface stay needs continuous sunlight for 6.5 days
SEGMENT_PX = 128           # pixels of a row advanced through time together (see _visibility)


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


def block_layout(shape: tuple[int, int], res_m: float, max_block: int = 512, max_half_m: float = 16_000.0):
    """Blocks of pixels sharing one linear model of each body's direction: at most ``max_block`` pixels and
    2·``max_half_m`` metres a side, in whole multiples of 32 pixels (the vector loops of _visibility)."""
    h, w = shape
    size = int(max(32, min(max_block, 2 * max_half_m / res_m))) // 32 * 32    # whole vector loops of pixels
    rows = np.arange(0, h, size)
    cols = np.arange(0, w, size)
    centres = []
    for r0 in rows:
        for c0 in cols:
            centres.append(((c0 + min(c0 + size, w) - 1) / 2, (r0 + min(r0 + size, h) - 1) / 2))
    return size, np.array(centres, float)


def linearise(info: RasterInfo, z: np.ndarray, track: BodyTrack, size: int, centres: np.ndarray) -> Blocks:
    """Per-block linear models of the body's direction (see module doc), float32 (5e-6° at 90°; 18.6 years at
    12 h over 576 blocks of a 1536² DEM are 190 MB a body)."""
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
    return Blocks(size, centres, coef.astype(np.float32))


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


def _arcsin_series(degree: int = 6) -> tuple:
    """Coefficients of arcsin(y) ≈ y·P(y²) on 0 ≤ y ≤ √½ (Chebyshev least squares; |error| < 3e-7 rad at
    degree 6, tested), in float32 for :func:`disk_fraction_scaled`."""
    y = np.linspace(0.0, math.sqrt(0.5) + 1e-3, 4001)[1:]
    fit = np.polynomial.chebyshev.Chebyshev.fit(y * y, np.arcsin(y) / y, degree)
    return tuple(np.float32(c) for c in fit.convert(kind=np.polynomial.Polynomial).coef)


_ASIN = _arcsin_series()
_F1 = np.float32(1.0)
_F0 = np.float32(0.0)
_HALF = np.float32(0.5)
_HALF_PI = np.float32(math.pi / 2)
_INV_PI = np.float32(1.0 / math.pi)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def disk_fraction_scaled(x):
    """:func:`disk_fraction` of x = d/ρ in float32 without branches or tables, so that loops over pixels
    vectorise: ½ + (x·s + arcsin x)/π with s = √(1 − x²), and arcsin|x| from the series of the smaller of |x| and
    s (≤ √½: arcsin|x| = π/2 − arcsin s when s is smaller), one square root in all; exactly 0 for x ≤ −1 and 1 for
    x ≥ 1 (|error| < 1e-6 between, tested)."""
    c = min(max(x, -_F1), _F1)
    a = abs(c)
    s = math.sqrt(_F1 - a * a)
    y = min(a, s)
    u = y * y
    p = _ASIN[6]
    p = p * u + _ASIN[5]
    p = p * u + _ASIN[4]
    p = p * u + _ASIN[3]
    p = p * u + _ASIN[2]
    p = p * u + _ASIN[1]
    p = p * u + _ASIN[0]
    asn = y * p
    asn = asn if a <= s else _HALF_PI - asn
    asn = asn if c >= _F0 else -asn
    f = _HALF + (c * s + asn) * _INV_PI
    f = min(max(f, _F0), _F1)
    return _F0 if x <= -_F1 else (_F1 if x >= _F1 else f)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _margins(out, h0, h1, h2, f0, f_dx, el0, el_dx, dx, inv_rho):
    """(elevation − horizon)/ρ of a segment's pixels at one instant (float32). Pixel j looks at azimuth position
    f0 + f_dx·dx[j] ∈ [0, 2) band widths past the band of ``h0`` (bands h0, h1, h2 in a row): its horizon is
    interpolated in the band it falls in, with a select rather than a gather so that the loop vectorises."""
    for j in range(out.shape[0]):
        f = f0 + f_dx * dx[j]
        lo = h0[j] + f * (h1[j] - h0[j])
        hi = h1[j] + (f - _F1) * (h2[j] - h1[j])
        out[j] = (el0 + el_dx * dx[j] - (lo if f < _F1 else hi)) * inv_rho


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _any_partial(x):
    """Whether some pixel has the disk's margin x = d/ρ strictly between −1 and 1 (the disk on its horizon)."""
    n = 0
    for j in range(x.shape[0]):
        n += 1 if abs(x[j]) < _F1 else 0
    return n > 0


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _visibility(hz, valid, size, centres, sun, sun_rho, earth, earth_rho, out_f, out_i, window, chunk, stay):
    """Per pixel, over all instants: out_f[0] mean Sun fraction, out_f[1] mean Earth fraction, out_f[2] lowest
    mean Sun fraction over any ``window`` consecutive instants (a synodic month), out_f[3] and out_f[4] the
    fraction of the instants that start ``stay`` consecutive instants with some Sun, and with some Sun and some
    Earth (a surface stay that can begin then); out_i (steps): 0 longest dark, 1 longest lit, 2 longest
    Sun+Earth, 3 ever lit (0/1).

    Work is split into row segments of at most ``chunk`` pixels inside one linearisation block. A segment
    advances through time with its pixels side by side in small arrays: each instant's coefficients, azimuth band
    and weight are read once per segment, and every step is a short loop over the pixels that writes one array
    (so that the compiler vectorises it: it gives up on loops that might write overlapping arrays)."""
    n_az, h, w = hz.shape
    T = sun.shape[1]
    nbc = (w + size - 1) // size
    k_az = n_az / 360.0
    per_block = (min(size, w) + chunk - 1) // chunk
    n_seg = nbc * per_block
    for task in numba.prange(h * n_seg):
        r = task // n_seg
        bc = (task % n_seg) // per_block
        c_lo = bc * size + ((task % n_seg) % per_block) * chunk
        c_hi = min(c_lo + chunk, (bc + 1) * size, w)
        if c_lo >= c_hi:
            continue
        n = c_hi - c_lo
        n_valid = 0
        for j in range(n):
            if valid[r, c_lo + j]:
                n_valid += 1
        if n_valid == 0:
            continue
        m = (n + 31) // 32 * 32        # whole vector loops: the pixels past n are padding, computed and dropped
        # the segment's horizons (degrees), azimuth-major, the first two bands repeated after the last
        hb = np.full((n_az + 2, m), np.float32(1000.0))      # padding: a wall no body clears
        for a in range(n_az):
            for j in range(n):
                v = hz[a, r, c_lo + j]
                hb[a, j] = _F0 if v == HORIZON_NODATA else np.float32(v * HORIZON_SCALE)
        for j in range(m):
            hb[n_az, j] = hb[0, j]
            hb[n_az + 1, j] = hb[1, j]
        b = (r // size) * nbc + bc
        dy = r - centres[b, 1]
        dx0 = c_lo - centres[b, 0]
        dx = np.arange(m).astype(np.float32)
        xs = np.empty(m, np.float32)
        xe = np.empty(m, np.float32)
        fs = np.empty(m, np.float32)
        s_sum = np.zeros(m)
        e_sum = np.zeros(m)
        w_sum = np.zeros(m)
        w_min = np.full(m, 1e30)
        ring = np.zeros((window, m), np.float32)
        lit = np.zeros(m, np.int32)
        dark = np.zeros(m, np.int32)
        se = np.zeros(m, np.int32)
        l_lit = np.zeros(m, np.int32)
        l_dark = np.zeros(m, np.int32)
        l_se = np.zeros(m, np.int32)
        n_stay = np.zeros(m, np.int32)          # instants that start a stay: a run of L gives max(L − stay + 1, 0)
        n_stay_se = np.zeros(m, np.int32)
        sb = sun[b]
        eb = earth[b]
        for t in range(T):
            for which in range(2):
                cb = sb if which == 0 else eb
                # azimuth (band units) at the segment's first and last pixel: the segment spans less than one band
                # (sized so in visibility()), so every pixel lies within two bands of the lower end's band
                fa = (cb[t, 3] + cb[t, 4] * dx0 + cb[t, 5] * dy) * k_az
                rate = cb[t, 4] * k_az
                lo = fa + min(rate * (n - 1), 0.0)
                k = int(math.floor(lo))
                fa -= k
                k %= n_az
                rho = sun_rho[t] if which == 0 else earth_rho[t]
                _margins(xs if which == 0 else xe, hb[k], hb[k + 1], hb[k + 2], np.float32(fa), np.float32(rate),
                         np.float32(cb[t, 0] + cb[t, 1] * dx0 + cb[t, 2] * dy), np.float32(cb[t, 1]), dx,
                         np.float32(1.0 / rho))
            ring_t = ring[t % window]
            pad = 0.0 if t + 1 >= window else 1e30          # the window counts once it is full
            # the disk fraction only where some pixel of the segment has the disk on its horizon (a third of the
            # Sun's instants, half of the Earth's at the pole); elsewhere each pixel sees all or nothing
            if _any_partial(xs):
                for j in range(m):
                    fs[j] = disk_fraction_scaled(xs[j])
            else:
                for j in range(m):
                    fs[j] = _F1 if xs[j] >= _F1 else _F0
            for j in range(m):
                s_sum[j] += fs[j]
            if _any_partial(xe):
                for j in range(m):
                    e_sum[j] += disk_fraction_scaled(xe[j])
            else:
                for j in range(m):
                    e_sum[j] += 1.0 if xe[j] >= _F1 else 0.0
            # the running sum of the last `window` Sun fractions (kept in a ring) and its lowest value
            for j in range(m):
                v = w_sum[j] + fs[j] - ring_t[j]
                w_sum[j] = v
                w_min[j] = min(w_min[j], v + pad)
            for j in range(m):
                ring_t[j] = fs[j]
            # runs: some of the Sun's disk above the horizon ⇔ x > −1
            for j in range(m):
                on = xs[j] > -_F1
                v = lit[j] + 1 if on else 0
                n_stay[j] += 0 if on else max(lit[j] - stay + 1, 0)
                lit[j] = v
                l_lit[j] = max(l_lit[j], v)
            for j in range(m):
                v = 0 if xs[j] > -_F1 else dark[j] + 1
                dark[j] = v
                l_dark[j] = max(l_dark[j], v)
            for j in range(m):
                on = (xs[j] > -_F1) & (xe[j] > -_F1)
                v = se[j] + 1 if on else 0
                n_stay_se[j] += 0 if on else max(se[j] - stay + 1, 0)
                se[j] = v
                l_se[j] = max(l_se[j], v)
        for j in range(n):
            c = c_lo + j
            if not valid[r, c]:
                continue
            out_f[0, r, c] = s_sum[j] / T
            out_f[1, r, c] = e_sum[j] / T
            out_f[2, r, c] = max(w_min[j], 0.0) / window
            starts = max(T - stay + 1, 1)                       # runs still open at the end count too
            out_f[3, r, c] = (n_stay[j] + max(lit[j] - stay + 1, 0)) / starts
            out_f[4, r, c] = (n_stay_se[j] + max(se[j] - stay + 1, 0)) / starts
            out_i[0, r, c] = l_dark[j]
            out_i[1, r, c] = l_lit[j]
            out_i[2, r, c] = l_se[j]
            out_i[3, r, c] = 1 if l_lit[j] > 0 else 0


@dataclass
class VisibilityProducts:
    sun_pct: np.ndarray                 # float32, NaN outside the DEM
    earth_pct: np.ndarray
    sun_min_month_pct: np.ndarray       # lowest Sun visibility over any synodic month of the period
    psr: np.ndarray                     # uint8: 1 never lit, 0 lit at some instant, 255 nodata
    longest_dark_days: np.ndarray
    longest_sun_days: np.ndarray
    sun_earth_longest_days: np.ndarray
    sun_stay_pct: np.ndarray            # % of start times from which a stay of stay_days has some Sun throughout
    sun_earth_stay_pct: np.ndarray      # ... and some Earth throughout (direct-to-Earth communication)


def visibility(hz: np.ndarray, z: np.ndarray, info: RasterInfo, sun: BodyTrack, earth: BodyTrack,
               step_hours: float, *, max_block: int = 512, stay_days: float = STAY_DAYS) -> VisibilityProducts:
    """Sun/Earth visibility products from horizons ``hz`` (int16 centidegrees, (n_az, rows, cols)).
    ``stay_days``: the surface stay of the stay products (Artemis III: 6.5 days of continuous sunlight)."""
    size, centres = block_layout(z.shape, info.res[0], max_block)
    bs = linearise(info, z, sun, size, centres)
    be = linearise(info, z, earth, size, centres)
    valid = np.isfinite(z)
    out_f = np.zeros((5, *z.shape), np.float64)
    stay = int(round(stay_days * 24.0 / step_hours)) + 1          # instants from the start to the end of a stay
    window = int(max(1, min(len(sun.times), round(SYNODIC_MONTH_DAYS * 24.0 / step_hours))))
    # a segment's pixels see each body within less than one azimuth band of each other
    rate = max(float(np.abs(bs.coef[:, :, 4]).max()), float(np.abs(be.coef[:, :, 4]).max()), 1e-12)
    chunk = int(min(SEGMENT_PX, max(1, 0.9 * (360.0 / hz.shape[0]) / rate)))
    out_i = np.zeros((4, *z.shape), np.int32)
    _visibility(hz, valid, size, centres, bs.coef, angular_radius_deg(sun), be.coef, angular_radius_deg(earth),
                out_f, out_i, window, chunk, stay)
    days = step_hours / 24.0

    def f32(a, scale):
        o = (a * scale).astype(np.float32)
        o[~valid] = np.nan
        return o

    psr = np.where(valid, 1 - out_i[3], 255).astype(np.uint8)
    return VisibilityProducts(f32(out_f[0], 100.0), f32(out_f[1], 100.0), f32(out_f[2], 100.0), psr,
                              f32(out_i[0], days),
                              f32(out_i[1], days), f32(out_i[2], days), f32(out_f[3], 100.0), f32(out_f[4], 100.0))
