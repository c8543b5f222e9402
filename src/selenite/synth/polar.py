"""A synthetic south-polar DEM of any size, written strip by strip, with its exact crater catalogue.

The region is a square centred on the pole in the IAU 2015 south polar stereographic map. Heights are the sum of
- a smooth large-scale relief: a self-affine random field (Hurst 0.9) on nodes every ``relief_node_m``, scaled to
  ``relief_rms_m`` and interpolated by cubic splines;
- craters from ``d_min_m`` to ``d_max_m`` drawn from the Neukum (2001) production function for the oldest age of
  a smooth *surface-age field* (3.8–4.1 Ga by default) and kept with probability N1(local age) / N1(oldest), so
  older ground is more cratered; each has the degraded simple-crater profile of :mod:`selenite.synth.terrain`
  (craters degraded below depth / D = 0.01 are left out);
- small-scale roughness: two periodic fractal tiles of incommensurate periods, scaled by the local age (older
  ground rougher).
Everything is deterministic from the seed and no strip depends on another, so a 30,400² DEM (20 m, 80–90°S)
streams to disk in bounded memory. The catalogue (lon, lat, diameter_m, age) is exact: it is the truth for the
crater features and the hazards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from selenite.geo.crs import map_to_lonlat, polar_stereographic
from selenite.synth.terrain import profile_at

STAMP_DEPTH = 0.01
"""Craters degraded below this depth / D are neither stamped nor catalogued (the ``visible`` column marks
depth / D ≥ 0.02, the criterion of :func:`selenite.synth.terrain.cratered_terrain`)."""


@dataclass(frozen=True)
class PolarSpec:
    size_px: int = 30400
    pixel_m: float = 20.0
    seed: int = 0
    relief_node_m: float = 4000.0
    relief_rms_m: float = 1200.0
    age_min_ga: float = 3.8
    age_max_ga: float = 4.1
    age_scale_m: float = 60000.0           # correlation length of the surface-age field
    d_min_m: float | None = None           # default 5 pixels
    d_max_m: float = 30000.0
    small_rms_slope_deg: float = 6.0       # of the small-scale tiles at the pixel baseline, oldest ground

    @property
    def extent_m(self) -> float:
        return self.size_px * self.pixel_m

    @property
    def crater_d_min_m(self) -> float:
        return self.d_min_m if self.d_min_m is not None else 5.0 * self.pixel_m


def _smooth_field(n_nodes: int, node_m: float, hurst: float, rng) -> np.ndarray:
    from selenite.synth.terrain import fractal_surface

    z = fractal_surface((n_nodes, n_nodes), node_m, 1.0, hurst, rng)
    return (z - z.mean()) / z.std()


class PolarDEM:
    """The generator: call :meth:`strip` for rows r0:r1 of the DEM, or :func:`write_polar_dem`."""

    def __init__(self, spec: PolarSpec):
        from selenite.cratering import chronology, load_functions
        from selenite.synth.terrain import (
            degraded_profile_table,
            depth_after_diffusion,
            diffusivity_for_diameter,
            sample_crater_population,
        )

        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        ext = spec.extent_m
        self.x_left = -ext / 2.0
        self.y_top = ext / 2.0
        # large-scale relief and the surface-age field on coarse node grids (one node beyond each edge)
        n = int(math.ceil(ext / spec.relief_node_m)) + 4
        from scipy import ndimage

        self._relief = ndimage.spline_filter(_smooth_field(n, spec.relief_node_m, 0.9, rng) * spec.relief_rms_m)
        na = int(math.ceil(ext / spec.age_scale_m * 4)) + 4
        self._age_node_m = spec.age_scale_m / 4.0
        a = _smooth_field(na, self._age_node_m, 1.0, rng)
        a = (a - a.min()) / (a.max() - a.min())
        self._age_nodes = spec.age_min_ga + a * (spec.age_max_ga - spec.age_min_ga)
        self._age = ndimage.spline_filter(self._age_nodes)
        # craters: the oldest surface's population, thinned by the local age
        chron = chronology("neukum2001")
        area_km2 = (ext / 1000.0) ** 2
        diam, age_myr = sample_crater_population(area_km2, spec.age_max_ga, spec.crater_d_min_m, spec.d_max_m, rng)
        x = self.x_left + rng.random(diam.size) * ext
        y = self.y_top - rng.random(diam.size) * ext
        local = self.age_at(x, y)
        keep = rng.random(diam.size) < chron.n1(local) / chron.n1(spec.age_max_ga)
        # a crater on younger ground formed within that ground's age
        age_myr = np.minimum(age_myr, local * 1000.0)
        x, y, diam, age_myr = x[keep], y[keep], diam[keep], age_myr[keep]
        morph = load_functions()["morphology"]["fresh_simple"]
        self._table = degraded_profile_table(morph["depth_to_diameter"], morph["rim_height_to_diameter"],
                                             morph["ejecta_exponent"])
        kappa = diffusivity_for_diameter(diam, 0.02, self._table)
        s = np.sqrt(2.0 * kappa * age_myr) / (diam / 2.0)
        depth = depth_after_diffusion(s, self._table)
        order = np.argsort(-age_myr)
        visible = order[depth[order] >= STAMP_DEPTH]
        self._cx, self._cy, self._d, self._s = x[visible], y[visible], diam[visible], np.minimum(s[visible], 3.0)
        x, y, diam, age_myr, depth = x[visible], y[visible], diam[visible], age_myr[visible], depth[visible]
        lon, lat = map_to_lonlat(polar_stereographic(), x, y)
        self.craters = pd.DataFrame({"lon": lon, "lat": lat, "x_m": x, "y_m": y, "diameter_m": diam,
                                     "age_myr": age_myr, "depth_to_diameter": depth,
                                     "visible": depth >= 0.02}).sort_values(
            "diameter_m", ascending=False, kind="stable").reset_index(drop=True)
        # small-scale tiles (periods 1024 and 997 px)
        from selenite.synth.terrain import fractal_surface

        self._tile_a = fractal_surface((1024, 1024), spec.pixel_m, spec.small_rms_slope_deg, 0.8, rng)
        self._tile_b = fractal_surface((997, 997), spec.pixel_m, spec.small_rms_slope_deg / 2.0, 0.8, rng)
        # craters sorted by their top row, for quick strip selection
        # each crater's reach: where its degraded profile falls below 1e-4 D (≤ 6.2 R, against 5 R + 4σ)
        s_grid, r_grid, table = self._table
        above = np.abs(table) >= 1e-4
        r_eff = np.array([r_grid[np.flatnonzero(a)[-1]] if a.any() else 0.0 for a in above]) + 2 * r_grid[1]
        reach = np.interp(self._s, s_grid, r_eff) * self._d / 2.0
        self._top_row = np.floor((self.y_top - (self._cy + reach)) / spec.pixel_m).astype(np.int64)
        self._bottom_row = np.ceil((self.y_top - (self._cy - reach)) / spec.pixel_m).astype(np.int64)
        self._reach = reach

    def age_at(self, x, y) -> np.ndarray:
        from scipy import ndimage

        c = (np.asarray(x) - self.x_left) / self._age_node_m + 1.0
        r = (self.y_top - np.asarray(y)) / self._age_node_m + 1.0
        return ndimage.map_coordinates(self._age, [r, c], order=3, prefilter=False, mode="nearest")

    @property
    def transform(self):
        from affine import Affine

        p = self.spec.pixel_m
        return Affine(p, 0.0, self.x_left, 0.0, -p, self.y_top)

    def strip(self, r0: int, r1: int) -> np.ndarray:
        """Heights (m, float32) of rows r0:r1."""
        from scipy import ndimage

        spec = self.spec
        p = spec.pixel_m
        n = spec.size_px
        rows = np.arange(r0, r1)
        y = self.y_top - (rows + 0.5) * p
        x = self.x_left + (np.arange(n) + 0.5) * p
        rr = ((self.y_top - y) / spec.relief_node_m + 1.0)[:, None] * np.ones((1, n))
        cc = np.ones((r1 - r0, 1)) * ((x - self.x_left) / spec.relief_node_m + 1.0)[None, :]
        z = ndimage.map_coordinates(self._relief, [rr.ravel(), cc.ravel()], order=3, prefilter=False,
                                    mode="nearest").reshape(r1 - r0, n)
        # the age field varies over tens of km: bilinear between its nodes is smooth enough here
        ar = ((self.y_top - y) / self._age_node_m + 1.0)[:, None] * np.ones((1, n))
        ac = np.ones((r1 - r0, 1)) * ((x - self.x_left) / self._age_node_m + 1.0)[None, :]
        age = ndimage.map_coordinates(self._age_nodes, [ar.ravel(), ac.ravel()], order=1,
                                      mode="nearest").reshape(r1 - r0, n)
        rough = (age - spec.age_min_ga + 0.5) / (spec.age_max_ga - spec.age_min_ga + 0.5)
        _small(z, rough, self._tile_a, self._tile_b, r0)
        sel = np.flatnonzero((self._bottom_row >= r0) & (self._top_row < r1))
        s_grid, r_grid, table = self._table
        _stamp_strip(z, r0, (self._cx[sel] - self.x_left) / p - 0.5, (self.y_top - self._cy[sel]) / p - 0.5,
                     self._d[sel] / 2.0 / p, self._d[sel], self._s[sel] / (s_grid[1] - s_grid[0]), table,
                     r_grid[1] - r_grid[0], self._reach[sel] / (self._d[sel] / 2.0))
        return z.astype(np.float32)


    def patch(self, x0: float, y0: float, n: int, pixel_m: float, small_d_min_m: float | None = None,
              small_rms_slope_deg: float = 4.0) -> tuple[np.ndarray, pd.DataFrame]:
        """A high-resolution n × n DEM patch (top-left corner x0, y0; ``pixel_m``) of the same world: the same
        relief and craters, plus craters from ``small_d_min_m`` (default 4 px) up to the world's ``d_min`` (at
        most 500 m) formed within their visible lifetime (uniform flux over the recent past), and small-scale
        roughness at the patch's pixel (RMS slope ``small_rms_slope_deg`` on the oldest ground). Deterministic
        from the world's seed and the patch's place. Returns (heights float32, the small craters added)."""
        from scipy import ndimage

        from selenite.synth.terrain import (
            depth_after_diffusion,
            diffusivity_for_diameter,
            fractal_surface,
            sample_crater_population,
        )

        spec = self.spec
        d_lo = small_d_min_m if small_d_min_m is not None else 4.0 * pixel_m
        rng = np.random.default_rng([spec.seed, int(round(x0)) & 0xFFFFFFFF, int(round(y0)) & 0xFFFFFFFF, n])
        xs = x0 + (np.arange(n) + 0.5) * pixel_m
        ys = y0 - (np.arange(n) + 0.5) * pixel_m
        gx, gy = np.meshgrid(xs, ys)
        rr = (self.y_top - gy) / spec.relief_node_m + 1.0
        cc = (gx - self.x_left) / spec.relief_node_m + 1.0
        z = ndimage.map_coordinates(self._relief, [rr.ravel(), cc.ravel()], order=3, prefilter=False,
                                    mode="nearest").reshape(n, n)
        age = float(self.age_at([x0 + n * pixel_m / 2], [y0 - n * pixel_m / 2])[0])
        rough = (age - spec.age_min_ga + 0.5) / (spec.age_max_ga - spec.age_min_ga + 0.5)
        z += rough * fractal_surface((n, n), pixel_m, small_rms_slope_deg, 0.8, rng)
        s_grid, r_grid, table = self._table
        # the world's craters that reach the patch
        ext = n * pixel_m
        sel = np.flatnonzero((self._cx + self._reach > x0) & (self._cx - self._reach < x0 + ext)
                             & (self._cy + self._reach > y0 - ext) & (self._cy - self._reach < y0))
        stamps = [(self._cx[sel], self._cy[sel], self._d[sel], self._s[sel], self._reach[sel])]
        # the smaller craters of this patch (from a margin around it, so that rims reach in)
        small = pd.DataFrame(columns=["x_m", "y_m", "diameter_m", "age_myr", "depth_to_diameter"])
        # craters from d_lo up to the world's d_min (at most 500 m); only those formed within the longest small
        # crater's Basilevsky lifetime (2.5 D Myr) can still be seen, so only that recent window is drawn
        d_hi = min(spec.crater_d_min_m, 500.0)
        if d_lo < d_hi:
            margin = 3.5 * d_hi
            area = ((ext + 2 * margin) / 1000.0) ** 2
            window_ga = min(age, 2.5e-3 * d_hi)
            diam, age_myr = sample_crater_population(area, window_ga, d_lo, d_hi, rng)
            cx = x0 - margin + rng.random(diam.size) * (ext + 2 * margin)
            cy = y0 + margin - rng.random(diam.size) * (ext + 2 * margin)
            kappa = diffusivity_for_diameter(diam, 0.02, self._table)
            sc = np.sqrt(2.0 * kappa * age_myr) / (diam / 2.0)
            depth = depth_after_diffusion(sc, self._table)
            keep = depth >= STAMP_DEPTH
            cx, cy, diam, sc, age_myr, depth = (a[keep] for a in (cx, cy, diam, sc, age_myr, depth))
            sc = np.minimum(sc, 3.0)
            above = np.abs(table) >= 1e-4
            r_eff = np.array([r_grid[np.flatnonzero(a)[-1]] if a.any() else 0.0 for a in above]) + 2 * r_grid[1]
            stamps.append((cx, cy, diam, sc, np.interp(sc, s_grid, r_eff) * diam / 2.0))
            small = pd.DataFrame({"x_m": cx, "y_m": cy, "diameter_m": diam, "age_myr": age_myr,
                                  "depth_to_diameter": depth})
        for cx, cy, d, sc, reach in stamps:
            order = np.arange(len(cx))
            _stamp_strip(z, 0, (cx[order] - x0) / pixel_m - 0.5, (y0 - cy[order]) / pixel_m - 0.5,
                         d[order] / 2.0 / pixel_m, d[order], sc[order] / (s_grid[1] - s_grid[0]), table,
                         r_grid[1] - r_grid[0], reach[order] / (d[order] / 2.0))
        return z.astype(np.float32), small


@numba.njit(parallel=True, cache=True)
def _small(z, rough, ta, tb, r0):
    h, w = z.shape
    na = ta.shape[0]
    nb = tb.shape[0]
    for i in numba.prange(h):
        r = r0 + i
        for j in range(w):
            z[i, j] += rough[i, j] * (ta[r % na, j % na] + tb[(r + 311) % nb, (j + 577) % nb])


@numba.njit(cache=True)
def _stamp_strip(out, r0, cols, rows, radii_px, diam_m, s_idx, table, r_step, window_radii):
    """Add each crater's degraded profile to the strip (rows r0 … r0 + h − 1 of the DEM), no wrapping."""
    h, w = out.shape
    n_r = table.shape[1]
    for k in range(cols.shape[0]):
        R = radii_px[k]
        wr = int(math.ceil(window_radii[k] * R)) + 1
        ra = max(int(math.floor(rows[k])) - wr, r0)
        rb = min(int(math.floor(rows[k])) + wr + 1, r0 + h - 1)
        ca = max(int(math.floor(cols[k])) - wr, 0)
        cb = min(int(math.floor(cols[k])) + wr + 1, w - 1)
        si = s_idx[k]
        i0 = int(math.floor(si))
        i1 = min(i0 + 1, table.shape[0] - 1)
        fs = si - i0
        for rr in range(ra, rb + 1):
            yy = rr - rows[k]
            for cc in range(ca, cb + 1):
                xx = cc - cols[k]
                q = math.sqrt(xx * xx + yy * yy) / R / r_step
                if int(q) >= n_r - 1:
                    continue
                out[rr - r0, cc] += profile_at(table, i0, i1, fs, q) * diam_m[k]


def write_patch(path, world: PolarDEM, x0: float, y0: float, n: int, pixel_m: float) -> Path:
    """A high-resolution patch of ``world`` as a GeoTIFF in the world's polar stereographic map."""
    from affine import Affine

    from selenite.geo.raster import write_cog

    z, _ = world.patch(x0, y0, n, pixel_m)
    write_cog(path, z, crs=polar_stereographic(), transform=Affine(pixel_m, 0, x0, 0, -pixel_m, y0),
              nodata=np.nan)
    return Path(path)


def write_polar_dem(path, spec: PolarSpec, strip_rows: int = 256, notify=lambda s, f: None) -> PolarDEM:
    """Write the DEM as a tiled float32 GeoTIFF (ZSTD, floating-point predictor) strip by strip, and its crater
    catalogue beside it (``<stem>_craters.csv``). Returns the generator."""
    import rasterio

    from selenite.runs import atomic_path

    gen = PolarDEM(spec)
    n = spec.size_px
    crs = rasterio.crs.CRS.from_wkt(polar_stereographic().to_wkt())
    block = 512 if n >= 512 else 16 * max(1, n // 16)
    profile = dict(driver="GTiff", width=n, height=n, count=1, dtype="float32", crs=crs, transform=gen.transform,
                   nodata=-32768.0, tiled=n >= 256, blockxsize=block, blockysize=block, compress="ZSTD",
                   zstd_level=1, predictor=3, BIGTIFF="IF_SAFER", num_threads="ALL_CPUS")
    step = max(strip_rows, block) if n >= 256 else n
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            for r0 in range(0, n, step):
                r1 = min(r0 + step, n)
                dst.write(gen.strip(r0, r1), 1, window=rasterio.windows.Window(0, r0, n, r1 - r0))
                notify("synthetic DEM", r1 / n)
    gen.craters.to_csv(Path(path).with_name(Path(path).stem + "_craters.csv"), index=False)
    return gen
