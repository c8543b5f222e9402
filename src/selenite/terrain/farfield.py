"""Far-field horizons: terrain beyond the DEM's edge, from a coarser DEM (e.g. LOLA's global LDEM_4).

At the lunar south pole the horizon that decides the light is often a massif tens of kilometres away, far outside
a high-resolution tile. The far DEM is resampled (bilinear) onto a coarse grid in the tile's projection that
extends ``far_max_km`` beyond the tile; inside the tile's footprint the grid holds the tile's own block means. For
every block of ``block`` × ``block`` tile pixels and every azimuth, a ray is marched over the coarse grid from where
it leaves the tile (plus 0.75 coarse cell, past the cells straddling the tile's edge) to ``far_max_km`` (step:
half a coarse cell), and the point of largest elevation angle seen
from the block centre is kept. Each tile pixel then sees that point from its own height and its own offset along
the ray, and its horizon is raised to it where higher (the near field, inside the tile, is the exact sweep of
:mod:`selenite.terrain.horizon`). Curvature is included as in the sweep.

Stated limits: the tangent point is chosen once per block (a pixel's true far tangent may be a neighbouring point
of the same ridge, slightly higher: the error is second order in the pixel's offset over the distance); the ray
starts where the *block centre's* ray leaves the tile, so for pixels near a block side a strip of up to half a
block at the tile edge is seen either twice (harmless) or only by the coarse grid.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject

from selenite.geo.crs import MOON_RADIUS_M
from selenite.geo.raster import RasterInfo, read_dem
from selenite.terrain.horizon import HORIZON_NODATA, HORIZON_SCALE, azimuth_grid


@numba.njit(parallel=True, cache=True)
def _far_tangents(coarse, c_x0, c_y0, c_res, obs_x, obs_y, obs_h, dirs, exit_d, max_d, step, k_map, radius, out_h,
                  out_d):
    """For each observer block b and azimuth a: march the coarse grid along the ray from where it leaves the fine
    DEM (exit_d[b, a], true metres) to max_d and keep the point of largest elevation angle seen from the block
    centre at height obs_h[b]: its height (out_h) and true distance (out_d; NaN when the ray meets no data).
    Map distances are true distances × k_map (the projection's scale factor at the tile).

    Coarse grid: heights (rows, cols), map x of column 0's centre c_x0, y of row 0's centre c_y0 (rows go down)."""
    nb = obs_x.shape[0]
    na = dirs.shape[0]
    nr, nc = coarse.shape
    for b in numba.prange(nb):
        for a in range(na):
            best = -1e30
            bh = np.nan
            bd = np.nan
            # start 1.5 steps (0.75 coarse cell) past the near field's edge: the coarse cells straddling that edge
            # carry the near field's own heights up to half a cell beyond it, which must not count twice
            d = exit_d[b, a] + 1.5 * step
            while d <= max_d:
                x = obs_x[b] + dirs[a, 0] * d * k_map
                y = obs_y[b] + dirs[a, 1] * d * k_map
                fc = (x - c_x0) / c_res
                fr = (c_y0 - y) / c_res
                c0 = int(math.floor(fc))
                r0 = int(math.floor(fr))
                if c0 < 0 or r0 < 0 or c0 + 1 >= nc or r0 + 1 >= nr:
                    break
                wc = fc - c0
                wr = fr - r0
                h = ((1 - wr) * ((1 - wc) * coarse[r0, c0] + wc * coarse[r0, c0 + 1])
                     + wr * ((1 - wc) * coarse[r0 + 1, c0] + wc * coarse[r0 + 1, c0 + 1]))
                if h == h:
                    tn = (h - obs_h[b]) / d - d / (2.0 * radius)
                    if tn > best:
                        best = tn
                        bh = h
                        bd = d
                d += step
            out_h[b, a] = bh
            out_d[b, a] = bd


@numba.njit(parallel=True, cache=True)
def _apply_far(hz_band, z, node_a, node_b, a, step, n_nc, scale, nodata):
    """Raise one azimuth band of stored horizons to the far field interpolated from the observer nodes.

    Node k (row-major on a grid every ``step`` pixels) holds, for azimuth a, A = tan_ref + h_ref/d* and
    B = 1/d* (NaN: no far terrain), so that a pixel at height h sees tan ≈ Σ w (A − h·B) over the 4 nodes around
    it: the first-order change of the tangent with the observer's height (exact to first order, envelope theorem),
    interpolated bilinearly between nodes."""
    h, w = z.shape
    for r in numba.prange(h):
        fr = r / step
        r0 = min(int(fr), node_a.shape[0] // n_nc - 2) if node_a.shape[0] // n_nc > 1 else 0
        wr = fr - r0
        for c in range(w):
            zz = z[r, c]
            if not (zz == zz):
                continue
            fc = c / step
            c0 = min(int(fc), n_nc - 2) if n_nc > 1 else 0
            wc = fc - c0
            acc = 0.0
            wsum = 0.0
            for dr in range(2):
                for dc in range(2):
                    rr = r0 + dr
                    cc = c0 + dc
                    if rr * n_nc + cc >= node_a.shape[0] or cc >= n_nc:
                        continue
                    k = rr * n_nc + cc
                    A = node_a[k, a]
                    if not (A == A):
                        continue
                    wt = (wr if dr else 1.0 - wr) * (wc if dc else 1.0 - wc)
                    acc += wt * (A - zz * node_b[k, a])
                    wsum += wt
            if wsum <= 1e-9:
                continue
            deg = math.degrees(math.atan(acc / wsum))
            q = np.int16(max(min(round(deg / scale), 32767), -32767))
            if hz_band[r, c] == nodata or q > hz_band[r, c]:
                hz_band[r, c] = q


def _exit_distance(x, y, ux, uy, bounds) -> float:
    """Map distance along (ux, uy) from (x, y) to where the ray leaves the rectangle for good (slab method);
    0 when it never crosses it. Nodes may lie just outside the rectangle (the last row and column of nodes)."""
    left, bottom, right, top = bounds
    t0, t1 = -np.inf, np.inf
    for p, u, lo, hi in ((x, ux, left, right), (y, uy, bottom, top)):
        if abs(u) < 1e-12:
            if p < lo or p > hi:
                return 0.0
            continue
        a, b = (lo - p) / u, (hi - p) / u
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
    return float(t1) if t1 >= max(t0, 0.0) else 0.0


def coarse_grid(near: list, info: RasterInfo, sources: list, res_m: float, margin_m: float):
    """Heights on a coarse grid in ``info``'s CRS reaching ``margin_m`` beyond its bounds.

    ``near``: (heights, RasterInfo) pairs block-averaged onto the grid first (the near-field DEM itself, so the
    grid agrees with it where they overlap); ``sources``: further DEMs, paths or (heights, RasterInfo) pairs,
    resampled bilinearly, each filling only what the previous ones left empty (best first)."""
    left, bottom, right, top = info.bounds
    left, bottom, right, top = left - margin_m, bottom - margin_m, right + margin_m, top + margin_m
    nc = int(np.ceil((right - left) / res_m))
    nr = int(np.ceil((top - bottom) / res_m))
    transform = rasterio.transform.from_origin(left, top, res_m, res_m)
    dst_crs = rasterio.crs.CRS.from_wkt(info.crs.to_wkt())
    grid = np.full((nr, nc), np.nan, np.float32)
    layers = [(a, i, Resampling.average) for a, i in near]
    for src in sources:
        a, i = read_dem(src) if not isinstance(src, tuple) else src
        layers.append((a, i, Resampling.bilinear))
    for a, i, how in layers:
        parts = []
        # bilinear warping spills up to a source pixel past the data's edge: keep it only where nearest-neighbour
        # resampling (which does not spill) has data
        for method in (how, Resampling.nearest):
            part = np.full((nr, nc), np.nan, np.float32)
            reproject(np.asarray(a, np.float32), part, src_transform=i.transform,
                      src_crs=rasterio.crs.CRS.from_wkt(i.crs.to_wkt()), dst_transform=transform, dst_crs=dst_crs,
                      src_nodata=np.nan, dst_nodata=np.nan, resampling=method)
            parts.append(part)
        part = np.where(np.isfinite(parts[1]), parts[0], np.nan)
        grid = np.where(np.isfinite(grid), grid, part)
    return grid, left + res_m / 2, top - res_m / 2


def apply_far_field(hz: np.ndarray, z: np.ndarray, info: RasterInfo, res_true: float, sign_x: float,
                    sign_y: float, far_dem, *, far_res_m: float = 250.0, far_max_km: float = 150.0,
                    node_m: float = 160.0, radius_m: float = MOON_RADIUS_M, near=None) -> dict:
    """Raise the stored horizons ``hz`` (int16 centidegrees, (n_az, rows, cols) over ``z``) in place to the far
    field. ``far_dem``: a path, a (heights, RasterInfo) pair or a list of them (best first). ``near``: the
    (heights, RasterInfo) of the near field the horizons were swept over when it is larger than ``z`` (a tile
    with its halo); rays start where they leave it."""
    k_map = abs(info.transform.a) / res_true
    max_d = far_max_km * 1000.0
    near = near or (z, info)
    sources = far_dem if isinstance(far_dem, list) else [far_dem]
    grid, gx0, gy0 = coarse_grid([near], near[1], sources, far_res_m, max_d * k_map + 2 * far_res_m)
    h, w = z.shape
    step = max(int(round(node_m / res_true)), 2)
    n_nr, n_nc = (h - 1) // step + 2, (w - 1) // step + 2          # nodes every `step` px, beyond the last pixel
    rr, cc = np.meshgrid(np.arange(n_nr) * step, np.arange(n_nc) * step, indexing="ij")
    nx, ny = info.pixel_to_map(cc.ravel().astype(float), rr.ravel().astype(float))
    filled = np.where(np.isfinite(z), z, np.nanmean(z))
    href = filled[np.clip(rr.ravel(), 0, h - 1), np.clip(cc.ravel(), 0, w - 1)].astype(float)
    n_az = hz.shape[0]
    az = azimuth_grid(n_az)
    dirs = np.column_stack([np.sin(np.radians(az)), np.cos(np.radians(az))])
    bounds = near[1].bounds
    exit_d = np.array([[_exit_distance(x, y, ux, uy, bounds) / k_map for ux, uy in dirs]
                       for x, y in zip(nx, ny, strict=True)])
    far_h = np.empty((len(nx), n_az))
    far_d = np.empty((len(nx), n_az))
    _far_tangents(grid.astype(np.float64), gx0, gy0, far_res_m, nx, ny, href, dirs, exit_d, max_d,
                  far_res_m / 2 / k_map, k_map, radius_m, far_h, far_d)
    tan_ref = (far_h - href[:, None]) / far_d - far_d / (2 * radius_m)
    node_a = tan_ref + href[:, None] / far_d
    node_b = 1.0 / far_d
    zz = np.ascontiguousarray(z, dtype=np.float64)
    for a in range(n_az):
        _apply_far(hz[a], zz, node_a, node_b, a, float(step), n_nc, HORIZON_SCALE, HORIZON_NODATA)
    return {"coarse_grid_px": list(grid.shape), "coarse_m": far_res_m, "max_km": far_max_km,
            "node_px": step, "rays_with_terrain": float(np.isfinite(far_d).mean())}
