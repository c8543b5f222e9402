"""Far-field horizons: terrain beyond the DEM's edge, from a coarser DEM (e.g. LOLA's 1.8 km polar cap or LDEM_4).

At the lunar south pole the horizon that decides the light is often a massif tens of kilometres away, far outside
a high-resolution tile. The far DEM is resampled (bilinear) onto a coarse grid in the tile's projection that
extends ``far_max_km`` beyond the tile; inside the tile's footprint the grid holds the tile's own block means. The
grid's cell is ``far_res_m`` or the far DEM's own pixel, whichever is larger. Observer nodes stand on a regular
grid over the tile, spaced by ``node_m`` or one coarse cell, whichever is larger (two observers closer than a cell
see the far terrain through the same cells). For every node and azimuth, a ray is marched over the coarse grid
from where it leaves the tile (plus 0.75 coarse cell, past the cells straddling the tile's edge) to
``far_max_km`` (step: half a coarse cell), and the point of largest elevation angle seen from the node is kept.
Each tile pixel then sees the points of its four nodes from its own eye height (ground + observer height),
interpolated bilinearly, and its horizon is raised to that where higher (the near field, inside the tile, is the
exact sweep of :mod:`selenite.terrain.horizon`). Curvature is included as in the sweep. Azimuth by azimuth, so
memory holds one value per node, whatever the number of azimuths.

Stated limits: the tangent point is chosen per node (a pixel's true far tangent may be a neighbouring point of
the same ridge, slightly higher: the error is second order in the pixel's offset over the distance); the ray
starts where the *node's* ray leaves the tile, so for pixels between nodes a strip of up to half a node spacing
at the tile edge is seen either twice (harmless) or only by the coarse grid.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject

from selenite.geo.crs import MOON_RADIUS_M
from selenite.geo.raster import RasterInfo, raster_info, read_dem
from selenite.terrain.horizon import HORIZON_NODATA, HORIZON_SCALE, _atan_deg, azimuth_grid


@numba.njit(cache=True, inline="always")
def _exit_distance(x, y, ux, uy, left, bottom, right, top):
    """Map distance along (ux, uy) from (x, y) to where the ray leaves the rectangle for good (slab method);
    0 when it never crosses it. Nodes may lie just outside the rectangle (the last row and column of nodes)."""
    t0 = -1e300
    t1 = 1e300
    for axis in range(2):
        p = x if axis == 0 else y
        u = ux if axis == 0 else uy
        lo = left if axis == 0 else bottom
        hi = right if axis == 0 else top
        if abs(u) < 1e-12:
            if p < lo or p > hi:
                return 0.0
            continue
        a = (lo - p) / u
        b = (hi - p) / u
        t0 = max(t0, min(a, b))
        t1 = min(t1, max(a, b))
    return t1 if t1 >= max(t0, 0.0) else 0.0


@numba.njit(parallel=True, cache=True)
def _node_tangents(coarse, c_x0, c_y0, c_res, obs_x, obs_y, obs_h, ux, uy, bounds, max_d, step, k_map, radius,
                   node_a, node_b):
    """One azimuth (unit map direction ux, uy): for each observer node, march the coarse grid along the ray from
    where it leaves the near field (true metres) to max_d and keep the point of largest elevation angle seen
    from the node at height obs_h. The node stores A = H/d − d/2R and B = 1/d of that point (NaN: the ray meets
    no terrain), so that an observer at height h near the node sees tan ≈ A − h·B.
    Map distances are true distances × k_map (the projection's scale factor at the tile).

    Coarse grid: heights (rows, cols), map x of column 0's centre c_x0, y of row 0's centre c_y0 (rows go down)."""
    nr, nc = coarse.shape
    left, bottom, right, top = bounds[0], bounds[1], bounds[2], bounds[3]
    inv_2r = 0.5 / radius
    for b in numba.prange(obs_x.shape[0]):
        # the best point so far, kept as (rise, distance) with rise = h − eye − d²/2R: a new point is higher in
        # the view when rise/d > best_rise/best_d, compared without dividing
        br = -1.0
        bd = 0.0
        bh = np.nan
        # start 1.5 steps (0.75 coarse cell) past the near field's edge: the coarse cells straddling that edge
        # carry the near field's own heights up to half a cell beyond it, which must not count twice
        d = _exit_distance(obs_x[b], obs_y[b], ux, uy, left, bottom, right, top) / k_map + 1.5 * step
        while d <= max_d:
            x = obs_x[b] + ux * d * k_map
            y = obs_y[b] + uy * d * k_map
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
                rise = h - obs_h[b] - d * d * inv_2r
                if rise * bd > br * d or bd == 0.0:
                    br = rise
                    bh = h
                    bd = d
            d += step
        if bd == 0.0:
            node_a[b] = np.nan
            node_b[b] = np.nan
        else:
            node_a[b] = bh / bd - bd * inv_2r
            node_b[b] = 1.0 / bd


# tan of every stored horizon value (int16 centidegrees, offset by 32768), so that a pixel's far-field tangent is
# compared with its horizon without an arctangent per pixel
_TAN_OF_STORED = np.tan(np.radians(np.clip(np.arange(-32768, 32768) * HORIZON_SCALE, -89.99, 89.99)))


@numba.njit(parallel=True, cache=True)
def _apply_far(hz_band, z_eye, node_a, node_b, step, n_nr, n_nc, scale, nodata, tan_of):
    """Raise one azimuth band of stored horizons to the far field interpolated from the observer nodes.

    Node k = row-major on a grid every ``step`` pixels (n_nr × n_nc, one row and column beyond the last pixel);
    a pixel whose eye is at height h sees tan ≈ Σ w (A − h·B) over the 4 nodes around it (NaN nodes left out,
    the weights renormalised): the first-order change of the tangent with the observer's height (exact to first
    order, envelope theorem), interpolated bilinearly between nodes. Node cells with no far terrain are skipped."""
    h, w = z_eye.shape
    for r in numba.prange(h):
        r0 = min(r // step, n_nr - 2)
        wr = (r - r0 * step) / step
        for c0 in range(n_nc - 1):
            k = r0 * n_nc + c0
            a00, a01, a10, a11 = node_a[k], node_a[k + 1], node_a[k + n_nc], node_a[k + n_nc + 1]
            v00, v01, v10, v11 = a00 == a00, a01 == a01, a10 == a10, a11 == a11
            if not (v00 or v01 or v10 or v11):
                continue
            b00, b01, b10, b11 = node_b[k], node_b[k + 1], node_b[k + n_nc], node_b[k + n_nc + 1]
            # rows interpolated once per cell; a NaN corner gets no weight
            u00 = (1.0 - wr) if v00 else 0.0
            u01 = (1.0 - wr) if v01 else 0.0
            u10 = wr if v10 else 0.0
            u11 = wr if v11 else 0.0
            a00, a01, a10, a11 = (a00 if v00 else 0.0), (a01 if v01 else 0.0), (a10 if v10 else 0.0), (a11 if v11
                                                                                                        else 0.0)
            b00, b01, b10, b11 = (b00 if v00 else 0.0), (b01 if v01 else 0.0), (b10 if v10 else 0.0), (b11 if v11
                                                                                                        else 0.0)
            c_lo = c0 * step
            c_hi = w if c0 == n_nc - 2 else min(c_lo + step, w)
            for c in range(c_lo, c_hi):
                zz = z_eye[r, c]
                if not (zz == zz):
                    continue
                wc = (c - c_lo) / step
                w0 = 1.0 - wc
                wsum = (u00 + u10) * w0 + (u01 + u11) * wc
                if wsum <= 1e-9:
                    continue
                acc = ((u00 * a00 + u10 * a10) * w0 + (u01 * a01 + u11 * a11) * wc
                       - zz * ((u00 * b00 + u10 * b10) * w0 + (u01 * b01 + u11 * b11) * wc))
                tn = acc / wsum
                cur = hz_band[r, c]
                if cur != nodata and tn <= tan_of[cur + 32768]:
                    continue
                q = np.int16(max(min(math.floor(_atan_deg(tn) / scale + 0.5), 32767), -32767))
                if cur == nodata or q > cur:
                    hz_band[r, c] = q


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


def _source_res_m(src) -> float:
    """Ground pixel size of a far-field source (path or (heights, RasterInfo))."""
    info = src[1] if isinstance(src, tuple) else raster_info(src)
    return info.ground_res_m


def apply_far_field(hz: np.ndarray, z: np.ndarray, info: RasterInfo, res_true: float, sign_x: float,
                    sign_y: float, far_dem, *, far_res_m: float = 250.0, far_max_km: float = 150.0,
                    node_m: float = 160.0, radius_m: float = MOON_RADIUS_M, near=None,
                    observer_m: float = 0.0) -> dict:
    """Raise the stored horizons ``hz`` (int16 centidegrees, (n_az, rows, cols) over ``z``) in place to the far
    field seen from ``observer_m`` above the ground. ``far_dem``: a path, a (heights, RasterInfo) pair or a list
    of them (best first). ``near``: the (heights, RasterInfo) of the near field the horizons were swept over when
    it is larger than ``z`` (a tile with its halo); rays start where they leave it.

    The coarse grid's cell is ``far_res_m`` or the finest source's pixel, whichever is larger (resampling a
    1.8 km DEM onto 250 m cells adds nothing but work), and the observer nodes are spaced by ``node_m`` or that
    cell, whichever is larger: observers closer than a cell see the far terrain through the same cells."""
    k_map = abs(info.transform.a) / res_true
    max_d = far_max_km * 1000.0
    near = near or (z, info)
    sources = far_dem if isinstance(far_dem, list) else [far_dem]
    cell_m = max(far_res_m, min(_source_res_m(s) for s in sources) * k_map)
    grid, gx0, gy0 = coarse_grid([near], near[1], sources, cell_m, max_d * k_map + 2 * cell_m)
    grid = grid.astype(np.float64)
    h, w = z.shape
    spacing_m = max(node_m, cell_m / k_map)
    step = max(int(round(spacing_m / res_true)), 2)
    n_nr, n_nc = (h - 1) // step + 2, (w - 1) // step + 2          # nodes every `step` px, beyond the last pixel
    rr, cc = np.meshgrid(np.arange(n_nr) * step, np.arange(n_nc) * step, indexing="ij")
    nx, ny = info.pixel_to_map(cc.ravel().astype(float), rr.ravel().astype(float))
    filled = np.where(np.isfinite(z), z, np.nanmean(z))
    eye_nodes = filled[np.clip(rr.ravel(), 0, h - 1), np.clip(cc.ravel(), 0, w - 1)].astype(float) + observer_m
    z_eye = np.ascontiguousarray(z, dtype=np.float64) + observer_m
    bounds = np.asarray(near[1].bounds, float)
    node_a = np.empty(len(nx))
    node_b = np.empty(len(nx))
    with_terrain = 0
    for a, az in enumerate(azimuth_grid(hz.shape[0])):
        ux, uy = math.sin(math.radians(az)), math.cos(math.radians(az))
        _node_tangents(grid, gx0, gy0, cell_m, nx, ny, eye_nodes, ux, uy, bounds, max_d, cell_m / 2 / k_map,
                       k_map, radius_m, node_a, node_b)
        with_terrain += int(np.isfinite(node_a).sum())
        _apply_far(hz[a], z_eye, node_a, node_b, step, n_nr, n_nc, HORIZON_SCALE, HORIZON_NODATA, _TAN_OF_STORED)
    return {"coarse_grid_px": list(grid.shape), "coarse_m": cell_m, "max_km": far_max_km, "node_px": step,
            "node_m": step * res_true, "rays_with_terrain": with_terrain / max(len(nx) * hz.shape[0], 1)}
