"""The cell grid of ``selenite sites``: square cells in polar stereographic, a region bounded by a latitude.

Cells are ``cell_m`` on a side in the IAU 2015 polar stereographic map that is true to scale at the pole
(IAU_2015:30135 in the south). Map metres are ground metres times the scale factor k = 2 / (1 + sin|φ|), so a
1 km cell is 1 km at the pole and 0.992 km at 80°; the features that depend on ground distance (slopes,
densities, distances) use each cell's own k. The grid is aligned to multiples of ``cell_m`` from the pole, so
runs on different DEMs share cell ids and edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine

from selenite.geo.crs import MOON_RADIUS_M, equivalent, map_to_lonlat, polar_stereographic


def pole_distance_m(lat_deg: float) -> float:
    """Map distance from the pole of a parallel in the pole-true polar stereographic projection."""
    return 2.0 * MOON_RADIUS_M * math.tan(math.radians(90.0 - abs(lat_deg)) / 2.0)


def scale_factor(lat_deg):
    """Point scale factor k (map / ground) of the pole-true polar stereographic projection."""
    return 2.0 / (1.0 + np.sin(np.radians(np.abs(lat_deg))))


@dataclass(frozen=True)
class CellGrid:
    """``nrows`` × ``ncols`` cells of ``cell_m`` map metres; (x0, y0) is the top-left corner; row 0 is north
    (largest y), as in a north-up raster. ``region_lat``: cells whose centre lies poleward of it count."""

    cell_m: float
    x0: float
    y0: float
    ncols: int
    nrows: int
    region_lat: float
    south: bool = True

    @property
    def crs(self):
        return polar_stereographic(south=self.south)

    @property
    def transform(self) -> Affine:
        return Affine(self.cell_m, 0.0, self.x0, 0.0, -self.cell_m, self.y0)

    @property
    def shape(self) -> tuple[int, int]:
        return self.nrows, self.ncols

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Map x, y of every cell centre, each (nrows, ncols)."""
        c = self.x0 + (np.arange(self.ncols) + 0.5) * self.cell_m
        r = self.y0 - (np.arange(self.nrows) + 0.5) * self.cell_m
        return np.meshgrid(c, r)

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.centres()
        return map_to_lonlat(self.crs, x, y)

    def in_region(self) -> np.ndarray:
        """Cells whose centre is poleward of ``region_lat``."""
        x, y = self.centres()
        return np.hypot(x, y) <= pole_distance_m(self.region_lat)

    def cell_ids(self) -> np.ndarray:
        """Stable ids: the cell's column and row counted from the pole, packed as (row + 2^15)·2^16 + col + 2^15,
        so the same cell has the same id in every grid of the same cell size."""
        col0 = round(self.x0 / self.cell_m)
        row0 = round(self.y0 / self.cell_m)
        cols = col0 + np.arange(self.ncols)
        rows = row0 - 1 - np.arange(self.nrows)
        return ((rows[:, None] + 2**15) * 2**16 + cols[None, :] + 2**15).astype(np.int64)

    def pixel_transform(self, k: int) -> Affine:
        """The transform of a raster with k × k pixels per cell, aligned to the grid."""
        return Affine(self.cell_m / k, 0.0, self.x0, 0.0, -self.cell_m / k, self.y0)

    def polygons(self, rows: np.ndarray, cols: np.ndarray):
        """Shapely squares of the given cells (map coordinates)."""
        import shapely

        x0 = self.x0 + cols * self.cell_m
        y1 = self.y0 - rows * self.cell_m
        return shapely.box(x0, y1 - self.cell_m, x0 + self.cell_m, y1)


def region_grid(cell_m: float, region_lat: float, bounds: tuple[float, float, float, float] | None = None,
                crs=None) -> CellGrid:
    """The grid of the polar region poleward of ``region_lat``, cut to ``bounds`` (left, bottom, right, top in
    the polar map; e.g. a DEM's extent) when given. ``crs``: the CRS the bounds are in (transformed when it is
    not the polar map)."""
    south = region_lat < 0
    rho = pole_distance_m(region_lat)
    left, bottom, right, top = -rho, -rho, rho, rho
    if bounds is not None:
        bl, bb, br, bt = bounds
        if crs is not None and not equivalent(crs, polar_stereographic(south=south)):
            from selenite.geo.crs import transformer

            t = transformer(crs, polar_stereographic(south=south))
            # the extent's image in the polar map: sample its interior too (a global lon/lat extent's edges
            # do not bound its image around the pole)
            gx, gy = np.meshgrid(np.linspace(bl, br, 129), np.linspace(bb, bt, 129))
            with np.errstate(all="ignore"):
                px, py = t.transform(gx.ravel(), gy.ravel())
            ok = np.isfinite(px) & np.isfinite(py)
            bl, br, bb, bt = px[ok].min(), px[ok].max(), py[ok].min(), py[ok].max()
        left, bottom, right, top = max(left, bl), max(bottom, bb), min(right, br), min(top, bt)
    c0 = math.floor(left / cell_m + 1e-9)
    c1 = math.ceil(right / cell_m - 1e-9)
    r0 = math.floor(bottom / cell_m + 1e-9)
    r1 = math.ceil(top / cell_m - 1e-9)
    if c1 <= c0 or r1 <= r0:
        return CellGrid(cell_m, c0 * cell_m, r1 * cell_m, 0, 0, region_lat, south)
    return CellGrid(cell_m, c0 * cell_m, r1 * cell_m, c1 - c0, r1 - r0, region_lat, south)
