"""Synthetic cratered terrain with an exact crater catalogue.

A fractal (power-law spectrum) background is overprinted by a crater population drawn from a lunar production
function for a chosen model age. Each crater gets a formation age drawn from the chronology's impact flux,
a fresh simple-crater profile (depth/D 0.2, rim 0.036 D, ejecta ~ (r/R)^-3 out to 5 R) and is then degraded
by linear topographic diffusion for its age (Fassett & Thomson 2014): the fresh profile convolved with a
2-D Gaussian of sigma = sqrt(2 kappa t). Its Basilevsky (1976) class follows from age / lifetime.

Coordinates: pixel (col, row) with (0, 0) the centre of the top-left pixel; x east = col * pixel_m,
y north = -row * pixel_m relative to that centre. The tile is periodic (background and craters wrap), so it
has no edge artefacts.

References: Neukum et al. (2001); Pike (1977); McGetchin et al. (1973); Fassett & Thomson (2014) JGR 119:2255;
Basilevsky (1976).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
import pandas as pd

from selenite.cratering import basilevsky_class, chronology, load_functions

_S_MAX = 3.0      # largest sigma/R tabulated; beyond it a crater is flattened to < 1e-3 D
_R_MAX = 5.0      # ejecta extent of the fresh profile, in radii
_TABLE_S = 61
_TABLE_R = 481


def fresh_profile(r_over_R: np.ndarray, depth_ratio: float, rim_ratio: float, ejecta_exponent: float) -> np.ndarray:
    """Height / D of a fresh simple crater versus r / R (0 at the pre-impact surface)."""
    r = np.asarray(r_over_R, float)
    inside = rim_ratio - depth_ratio * (1.0 - r**2)
    tail = _R_MAX**ejecta_exponent
    outside = rim_ratio * (np.maximum(r, 1.0) ** ejecta_exponent - tail) / (1.0 - tail)
    return np.where(r <= 1.0, inside, np.where(r < _R_MAX, outside, 0.0))


@lru_cache(maxsize=4)
def degraded_profile_table(depth_ratio: float, rim_ratio: float, ejecta_exponent: float):
    """Table of h/D versus (sigma/R, r/R) for the fresh profile diffused by a 2-D Gaussian of width sigma.

    The fresh profile is laid on a 2-D grid (spacing R/16), blurred in the Fourier domain with the Gaussian
    transfer function for each sigma, and read back along a radius. Returns (s_grid, r_grid, table[s, r]).
    """
    s_grid = np.linspace(0.0, _S_MAX, _TABLE_S)
    r_max = _R_MAX + 4.0 * _S_MAX
    r_grid = np.linspace(0.0, r_max, _TABLE_R)
    step = 1.0 / 16.0
    n = int(2 ** np.ceil(np.log2(2 * (r_max + 4 * _S_MAX) / step)))
    ax = (np.arange(n) - n // 2) * step
    f = fresh_profile(np.hypot(ax[None, :], ax[:, None]), depth_ratio, rim_ratio, ejecta_exponent)
    spec = np.fft.rfft2(np.fft.ifftshift(f))
    k2 = (np.fft.fftfreq(n, step)[:, None] ** 2 + np.fft.rfftfreq(n, step)[None, :] ** 2)
    table = np.empty((_TABLE_S, _TABLE_R))
    table[0] = fresh_profile(r_grid, depth_ratio, rim_ratio, ejecta_exponent)
    for i, s in enumerate(s_grid[1:], start=1):
        g = np.fft.fftshift(np.fft.irfft2(spec * np.exp(-2.0 * np.pi**2 * s * s * k2), s=(n, n)))
        table[i] = np.interp(r_grid, ax[n // 2:], g[n // 2, n // 2:])
    return s_grid, r_grid, table


def depth_after_diffusion(s_over_R, table_tuple) -> np.ndarray:
    """Rim-crest-to-floor depth / D of diffused craters (interpolated along the table's sigma axis)."""
    s_grid, _, table = table_tuple
    depth = table.max(axis=1) - table[:, 0]
    return np.interp(np.asarray(s_over_R, float), s_grid, depth, right=0.0)


def diffusivity_for_diameter(diameter_m, visible_depth_ratio: float, table_tuple) -> np.ndarray:
    """Scale-dependent topographic diffusivity (m²/Myr) used to degrade a crater of diameter D.

    Below Basilevsky's 160 m limit, kappa is set so that a crater becomes barely visible (depth/D falls to
    ``visible_depth_ratio``) exactly at the end of its Basilevsky (1976) lifetime 2.5 D Myr, which makes its
    morphology agree with its class. From 160 m to the Fassett & Thomson (2014) anchor (5.5 m²/Myr, measured
    on km-scale mare craters) kappa is interpolated log-linearly; above the anchor it is constant. The
    blending between the two published anchors is selenite's assumption.
    """
    funcs = load_functions()
    bas = funcs["degradation"]["basilevsky1976"]
    fas = funcs["diffusion"]["fassett2014"]
    s_grid = table_tuple[0]
    depth = depth_after_diffusion(s_grid, table_tuple)
    s_end = float(np.interp(-visible_depth_ratio, -depth, s_grid))  # depth decreases with s
    d = np.asarray(diameter_m, float)
    d_b, d_f = bas["valid_below_m"], fas["anchor_diameter_m"]

    def basilevsky_kappa(dd):
        return s_end**2 * (dd / 2.0) ** 2 / (2.0 * bas["lifetime_myr_per_m"] * dd)

    k_b, k_f = basilevsky_kappa(d_b), fas["kappa_m2_per_myr"]
    frac = np.clip(np.log(np.maximum(d, 1e-9) / d_b) / np.log(d_f / d_b), 0.0, 1.0)
    blended = np.exp(np.log(k_b) + frac * (np.log(k_f) - np.log(k_b)))
    return np.where(d <= d_b, basilevsky_kappa(d), blended)


def fractal_surface(shape: tuple[int, int], pixel_m: float, rms_slope_deg: float, hurst: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Periodic self-affine surface (PSD ~ k^-(2H+2)) scaled to a given RMS slope at the pixel baseline."""
    ny, nx = shape
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = np.inf
    amp = k ** (-(hurst + 1.0))
    noise = rng.standard_normal((ny, nx // 2 + 1)) + 1j * rng.standard_normal((ny, nx // 2 + 1))
    z = np.fft.irfft2(noise * amp, s=shape)
    gy, gx = np.gradient(z, pixel_m)
    rms = np.sqrt(np.mean(gx**2 + gy**2))
    return z * (np.tan(np.radians(rms_slope_deg)) / rms) if rms > 0 else z


def sample_crater_population(
    area_km2: float, age_ga: float, d_min_m: float, d_max_m: float, rng: np.random.Generator,
    chronology_key: str = "neukum2001",
) -> tuple[np.ndarray, np.ndarray]:
    """Diameters (m) and formation ages (Myr) of the craters >= d_min formed on ``area_km2`` in ``age_ga``.

    The count is Poisson with mean N(>=d_min, T) · area; diameters follow the production function by inverse
    transform sampling on a fine log-D grid; ages follow the impact flux dN1/dt on [0, T].
    """
    chron = chronology(chronology_key)
    pf = chron.production
    n1 = chron.n1(age_ga)
    d_grid_km = np.geomspace(d_min_m / 1000.0, d_max_m / 1000.0, 4000)
    cum = pf.cumulative(d_grid_km, n1) - pf.cumulative(d_grid_km[-1], n1)
    expected = cum[0] * area_km2
    n = int(rng.poisson(expected))
    u = rng.random(n) * cum[0]
    d_km = np.interp(u, cum[::-1], d_grid_km[::-1])
    t_grid = np.linspace(0.0, age_ga, 4000)
    n1_grid = chron.n1(t_grid)
    ages_ga = np.interp(rng.random(n) * n1_grid[-1], n1_grid, t_grid)
    return d_km * 1000.0, ages_ga * 1000.0


@numba.njit(cache=True, inline="always")
def profile_at(table, i0, i1, fs, q):
    """h / D from the degraded-profile table: rows i0, i1 (sigma) blended by fs, column position q (r / R in
    table steps, q < n_r − 1), bilinear."""
    j = int(q)
    fq = q - j
    h0 = table[i0, j] * (1 - fq) + table[i0, j + 1] * fq
    h1 = table[i1, j] * (1 - fq) + table[i1, j + 1] * fq
    return h0 * (1 - fs) + h1 * fs


@numba.njit(cache=True)
def _stamp(out, cols, rows, radii_px, diam_m, s_idx, table, r_step, window_radii):
    ny, nx = out.shape
    n_r = table.shape[1]
    for k in range(cols.shape[0]):
        R = radii_px[k]
        w = int(np.ceil(window_radii[k] * R)) + 1
        c0 = int(np.floor(cols[k]))
        r0 = int(np.floor(rows[k]))
        si = s_idx[k]
        i0 = int(np.floor(si))
        i1 = min(i0 + 1, table.shape[0] - 1)
        fs = si - i0
        for dr in range(-w, w + 2):
            rr = r0 + dr
            yy = rr - rows[k]
            for dc in range(-w, w + 2):
                cc = c0 + dc
                xx = cc - cols[k]
                q = np.sqrt(xx * xx + yy * yy) / R / r_step
                if int(q) >= n_r - 1:
                    continue
                out[rr % ny, cc % nx] += profile_at(table, i0, i1, fs, q) * diam_m[k]


@dataclass(frozen=True)
class TerrainResult:
    dem: np.ndarray          # heights (m) above the reference sphere, float32, (rows, cols)
    craters: pd.DataFrame    # the true catalogue
    pixel_m: float


def cratered_terrain(
    shape: tuple[int, int], pixel_m: float, *, age_ga: float, seed: int, base_height_m: float = 0.0,
    d_min_m: float | None = None, d_max_m: float | None = None, rms_slope_deg: float = 3.0, hurst: float = 0.85,
    diffusivity_m2_per_myr: float | None = None, chronology_key: str = "neukum2001",
    visible_depth_ratio: float = 0.02,
) -> TerrainResult:
    """Build a periodic cratered DEM and its catalogue.

    Parameters
    ----------
    shape : (rows, cols) of the DEM.
    pixel_m : pixel size in metres.
    age_ga : model age of the surface (Ga); sets how many craters formed (Neukum 2001 chronology by default).
    seed : everything is deterministic from it.
    d_min_m, d_max_m : diameter range drawn (default: max(10 m, 4 px) to a third of the tile's short side).
    rms_slope_deg, hurst : the fractal background's RMS slope at the pixel baseline and Hurst exponent.
    diffusivity_m2_per_myr : a constant topographic diffusivity (0 keeps every crater fresh); default None
        uses the scale-dependent model of ``diffusivity_for_diameter``.
    visible_depth_ratio : catalogue flag ``visible`` for craters with degraded depth/D at least this
        (an assumption: 0.02, about a tenth of a fresh crater's depth).

    Returns
    -------
    TerrainResult with the DEM and a catalogue: ``crater_id, col, row, x_m, y_m, diameter_m, age_myr,
    sigma_m, depth_to_diameter, class, visible``.
    """
    funcs = load_functions()
    morph = funcs["morphology"]["fresh_simple"]
    rng = np.random.default_rng(seed)
    ny, nx = shape
    d_min = max(10.0, 4.0 * pixel_m) if d_min_m is None else d_min_m
    d_max = min(ny, nx) * pixel_m / 3.0 if d_max_m is None else d_max_m
    background = fractal_surface(shape, pixel_m, rms_slope_deg, hurst, rng)
    area_km2 = ny * nx * (pixel_m / 1000.0) ** 2
    diam, age = sample_crater_population(area_km2, age_ga, d_min, d_max, rng, chronology_key)
    cols = rng.random(diam.size) * nx
    rows = rng.random(diam.size) * ny
    table_tuple = degraded_profile_table(morph["depth_to_diameter"], morph["rim_height_to_diameter"],
                                         morph["ejecta_exponent"])
    if diffusivity_m2_per_myr is None:
        kappa = diffusivity_for_diameter(diam, visible_depth_ratio, table_tuple)
    else:
        kappa = np.full(diam.shape, float(diffusivity_m2_per_myr))
    sigma = np.sqrt(2.0 * kappa * age)
    s = sigma / (diam / 2.0)
    s_grid, r_grid, table = table_tuple
    depth = depth_after_diffusion(s, table_tuple)
    depth[s > _S_MAX] = 0.0
    order = np.argsort(-age)  # oldest first
    stamp = order[(depth[order] >= 1e-3) & (diam[order] / 2.0 / pixel_m >= 0.5)]
    layer = np.zeros(shape, dtype=np.float64)
    window = _R_MAX + 4.0 * np.minimum(s[stamp], _S_MAX)
    _stamp(layer, cols[stamp], rows[stamp], diam[stamp] / 2.0 / pixel_m, diam[stamp],
           s[stamp] / (s_grid[1] - s_grid[0]), table, r_grid[1] - r_grid[0], window)
    dem = (base_height_m + background + layer).astype(np.float32)
    cat = pd.DataFrame({
        "col": cols, "row": rows, "x_m": cols * pixel_m, "y_m": -rows * pixel_m, "diameter_m": diam,
        "age_myr": age, "sigma_m": sigma, "depth_to_diameter": depth,
    })
    cat["class"] = basilevsky_class(age, diam)
    cat["visible"] = depth >= visible_depth_ratio
    cat = cat.sort_values("diameter_m", ascending=False, kind="stable").reset_index(drop=True)
    cat.insert(0, "crater_id", np.arange(len(cat)))
    return TerrainResult(dem, cat, pixel_m)
