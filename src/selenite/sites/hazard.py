"""Lander-scale hazard: Monte-Carlo touchdowns on a high-resolution DEM.

For each cell covered by the DEM, ``aims`` × ``aims`` aim points on a regular grid inside the cell are each
displaced by the landing dispersion (Gaussian, σ per axis) and given a random heading; the lander touches down
with its legs on a circle of radius ``leg_radius_m``. A touchdown fails when
- the least-squares plane through the leg contact heights tilts more than ``tilt_max_deg``, or
- the terrain inside the leg circle (sampled on a 5 × 5 grid) rises more than ``clearance_m`` above that plane.
The cell's hazard probability is the failed fraction of touchdowns with heights everywhere they were needed
(a cell is labelled only when at least ``min_valid`` of them had). Heights are bilinear in the DEM, so hazards
smaller than about two DEM pixels are not seen: with a 5 m DEM the clearance test sees mounds and crater rims,
not boulders.

Every number of the lander is an assumption (defaults: 4 legs on a 4 m radius, 8° tilt, 0.5 m clearance, 50 m
dispersion), printed in the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from selenite.geo.crs import transformer
from selenite.geo.raster import read_dem
from selenite.sites.grid import CellGrid


@dataclass(frozen=True)
class Lander:
    legs: int = 4
    leg_radius_m: float = 4.0
    tilt_max_deg: float = 8.0
    clearance_m: float = 0.5
    dispersion_m: float = 50.0
    aims: int = 8
    min_valid: float = 0.9


@numba.njit(cache=True)
def _bilinear(z, c, r):
    h, w = z.shape
    if not (0.0 <= c <= w - 1.0 and 0.0 <= r <= h - 1.0):
        return np.nan
    c0 = min(int(c), w - 2)
    r0 = min(int(r), h - 2)
    fc = c - c0
    fr = r - r0
    return ((1 - fr) * ((1 - fc) * z[r0, c0] + fc * z[r0, c0 + 1])
            + fr * ((1 - fc) * z[r0 + 1, c0] + fc * z[r0 + 1, c0 + 1]))


@numba.njit(parallel=True, cache=True)
def _touchdowns(z, cols, rows, headings, px_per_m_x, px_per_m_y, legs, leg_r, tan_tilt, clearance, out):
    """``out[i]``: 1 failed, 0 safe, −1 unknown (a needed height missing) for touchdown i at pixel (col, row)."""
    n = cols.shape[0]
    for i in numba.prange(n):
        # leg contacts: (dx, dy) metres east / north of the centre
        sx = 0.0
        sy = 0.0
        sz = 0.0
        sxx = 0.0
        syy = 0.0
        sxy = 0.0
        sxz = 0.0
        syz = 0.0
        bad = False
        for k in range(legs):
            a = headings[i] + 2 * math.pi * k / legs
            dx = leg_r * math.sin(a)
            dy = leg_r * math.cos(a)
            h = _bilinear(z, cols[i] + dx * px_per_m_x, rows[i] - dy * px_per_m_y)
            if h != h:
                bad = True
                break
            sx += dx
            sy += dy
            sz += h
            sxx += dx * dx
            syy += dy * dy
            sxy += dx * dy
            sxz += dx * h
            syz += dy * h
        if bad:
            out[i] = -1
            continue
        # plane h = c + gx·dx + gy·dy through the legs (least squares; legs symmetric about the centre)
        m = float(legs)
        mx, my, mz = sx / m, sy / m, sz / m
        cxx = sxx / m - mx * mx
        cyy = syy / m - my * my
        cxy = sxy / m - mx * my
        cxz = sxz / m - mx * mz
        cyz = syz / m - my * mz
        det = cxx * cyy - cxy * cxy
        gx = (cxz * cyy - cyz * cxy) / det
        gy = (cyz * cxx - cxz * cxy) / det
        c0 = mz - gx * mx - gy * my
        if gx * gx + gy * gy > tan_tilt * tan_tilt:
            out[i] = 1
            continue
        fail = False
        for a in range(5):
            for b in range(5):
                dx = (a - 2) * leg_r / 2.0
                dy = (b - 2) * leg_r / 2.0
                if dx * dx + dy * dy > leg_r * leg_r:
                    continue
                h = _bilinear(z, cols[i] + dx * px_per_m_x, rows[i] - dy * px_per_m_y)
                if h != h:
                    bad = True
                elif h - (c0 + gx * dx + gy * dy) > clearance:
                    fail = True
        out[i] = -1 if bad else (1 if fail else 0)


def hazard_probability(dem_path, grid: CellGrid, lander: Lander, seed: int = 0):
    """Per-cell hazard probability from Monte-Carlo touchdowns on ``dem_path`` (any projected lunar CRS).
    Returns (prob, valid_fraction), each (nrows, ncols) float32, NaN where the DEM does not cover the cell."""
    z, info = read_dem(dem_path)
    rng = np.random.default_rng(seed)
    # cells whose square lies within the DEM's extent (tested on the cell corners, in the DEM's CRS)
    t = transformer(grid.crs, info.crs)
    rows_c, cols_c = np.mgrid[0:grid.nrows + 1, 0:grid.ncols + 1]
    cx = grid.x0 + cols_c * grid.cell_m
    cy = grid.y0 - rows_c * grid.cell_m
    ex, ey = t.transform(cx.ravel(), cy.ravel())
    pc, pr = info.map_to_pixel(np.asarray(ex), np.asarray(ey))
    inside = ((pc >= 0) & (pc <= info.width - 1) & (pr >= 0) & (pr <= info.height - 1)).reshape(cx.shape)
    covered = inside[:-1, :-1] & inside[1:, :-1] & inside[:-1, 1:] & inside[1:, 1:]
    prob = np.full(grid.shape, np.nan, np.float32)
    valid = np.full(grid.shape, np.nan, np.float32)
    cells = np.argwhere(covered)
    if len(cells) == 0:
        return prob, valid
    a = lander.aims
    u = (np.arange(a) + 0.5) / a
    ax, ay = np.meshgrid(u, u)
    n_per = a * a
    # aim points in the grid's map → touchdowns displaced on the ground (map ≈ ground × k: negligible here)
    x = (grid.x0 + (cells[:, 1, None] + ax.ravel()[None]) * grid.cell_m).ravel()
    y = (grid.y0 - (cells[:, 0, None] + ay.ravel()[None]) * grid.cell_m).ravel()
    x = x + rng.normal(0.0, lander.dispersion_m, x.size)
    y = y + rng.normal(0.0, lander.dispersion_m, y.size)
    tx, ty = t.transform(x, y)
    pcol, prow = info.map_to_pixel(np.asarray(tx), np.asarray(ty))
    res_x, res_y = abs(info.transform.a), abs(info.transform.e)
    out = np.empty(x.size, np.int8)
    _touchdowns(z, np.asarray(pcol, float), np.asarray(prow, float), rng.uniform(0, 2 * np.pi, x.size),
                1.0 / res_x, 1.0 / res_y, lander.legs, lander.leg_radius_m,
                math.tan(math.radians(lander.tilt_max_deg)), lander.clearance_m, out)
    out = out.reshape(len(cells), n_per)
    known = (out >= 0).sum(axis=1)
    failed = (out == 1).sum(axis=1)
    frac = known / n_per
    ok = frac >= lander.min_valid
    p = np.where(ok, failed / np.maximum(known, 1), np.nan)
    prob[cells[:, 0], cells[:, 1]] = p
    valid[cells[:, 0], cells[:, 1]] = frac
    return prob, valid
