"""Spatial randomness of a crater count (Michael et al. 2012): are the craters of each size randomly placed, or
clustered (secondaries, chains) or more evenly spaced than random (a saturated or obliterated population)?

For each root-2 diameter bin with at least 3 craters two measures are taken on the crater centres and compared
with the same measures for the same number of points placed uniformly at random in the counted area
(Monte-Carlo, ``trials`` configurations):

- **M2CND**, the mean distance from each crater to its second-closest neighbour. Clustering lowers it.
- **SDAA**, the standard deviation of the adjacent areas: the Voronoi cells of the centres clipped to the
  counted area. Clustering raises it; ordering lowers it.

The deviation is expressed as n_σ = (measure − Monte-Carlo mean) / Monte-Carlo standard deviation, with the
Monte-Carlo 2.5–97.5 % envelope. |n_σ| < 2 for both measures: consistent with a random population, the
precondition for dating with those craters.

Geometry: centres and the area polygon (exterior rings minus ``int`` holes) are projected to a Lambert azimuthal
equal-area plane at the polygon's centre on the 1737.4 km sphere, so areas are exact and distances within
0.1 % over a few hundred kilometres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from selenite.errors import InputError
from selenite.geology.csfd import CraterCount, bin_edges

MOON_RADIUS_M = 1737400.0
MIN_PER_BIN = 3


@dataclass
class BinResult:
    d_min_km: float
    d_max_km: float
    n: int
    measure: str
    value: float
    mc_mean: float
    mc_sd: float
    mc_lo: float        # 2.5 % of the Monte-Carlo values
    mc_hi: float        # 97.5 %
    n_sigma: float

    @property
    def verdict(self) -> str:
        if abs(self.n_sigma) < 2.0:
            return "random"
        clustered = self.n_sigma < 0 if self.measure == "m2cnd" else self.n_sigma > 0
        return "clustered" if clustered else "ordered"


def area_geometry(count: CraterCount):
    """(polygon in metres, lon/lat → metres transformer) for a count with an outline and crater positions."""
    if count.lon is None or count.lat is None:
        raise InputError(f"{count.source}: the count has no crater positions (lon, lat); randomness needs them")
    ext = [r for r in count.rings if r["tag"] == "ext"]
    if not ext:
        raise InputError(f"{count.source}: the count has no area outline (unit_boundary with 'ext' rings); "
                         "randomness needs the counted area's polygon")
    allpts = np.concatenate([r["lonlat"] for r in ext])
    lon0 = float(np.degrees(np.arctan2(np.sin(np.radians(allpts[:, 0])).mean(),
                                       np.cos(np.radians(allpts[:, 0])).mean())))
    lat0 = float(allpts[:, 1].mean())
    tr = Transformer.from_crs("+proj=longlat +R=1737400 +no_defs",
                              f"+proj=laea +lat_0={lat0} +lon_0={lon0} +R={MOON_RADIUS_M} +units=m +no_defs",
                              always_xy=True)

    def ring(r):
        x, y = tr.transform(r["lonlat"][:, 0], r["lonlat"][:, 1])
        return shapely.Polygon(np.column_stack([x, y])).buffer(0)

    poly = shapely.union_all([ring(r) for r in ext])
    holes = [ring(r) for r in count.rings if r["tag"] != "ext"]
    if holes:
        poly = shapely.difference(poly, shapely.union_all(holes))
    if poly.is_empty or poly.area <= 0:
        raise InputError(f"{count.source}: the area outline encloses no area")
    return poly, tr


def m2cnd(xy: np.ndarray) -> float:
    """Mean distance to the second-closest neighbour."""
    dist, _ = cKDTree(xy).query(xy, k=3)
    return float(dist[:, 2].mean())


def sdaa(xy: np.ndarray, poly) -> float:
    """Standard deviation of the Voronoi cell areas clipped to the area polygon."""
    pts = shapely.multipoints(xy)
    cells = shapely.voronoi_polygons(pts, extend_to=poly.envelope.buffer(poly.length))
    clipped = shapely.intersection(np.asarray(cells.geoms), poly)
    return float(np.std(shapely.area(clipped)))


def random_points(poly, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniform in the polygon (rejection from its bounding box)."""
    x0, y0, x1, y1 = poly.bounds
    out = np.empty((0, 2))
    prepared = poly
    shapely.prepare(prepared)
    while len(out) < n:
        m = max(64, int(1.5 * (n - len(out)) * (x1 - x0) * (y1 - y0) / poly.area))
        cand = np.column_stack([rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)])
        out = np.vstack([out, cand[shapely.contains_xy(prepared, cand[:, 0], cand[:, 1])]])
    return out[:n]


def randomness(count: CraterCount, trials: int = 300, seed: int = 0, measures=("m2cnd", "sdaa"),
               notify=None) -> tuple[list[BinResult], dict]:
    """Both measures per root-2 bin with ≥ 3 craters inside the area; returns results and geometry for plots."""
    if trials < 20:
        raise InputError(f"--trials must be at least 20 for a usable envelope (got {trials})")
    poly, tr = area_geometry(count)
    x, y = tr.transform(count.lon, count.lat)
    xy = np.column_stack([x, y])
    inside = shapely.contains_xy(poly, xy[:, 0], xy[:, 1])
    d = count.diameters_km
    edges = bin_edges("root-2", d.min(), d.max() * 1.000001)
    rng = np.random.default_rng(seed)
    bins = [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)
            if ((d >= lo) & (d < hi) & inside).sum() >= MIN_PER_BIN]
    results: list[BinResult] = []
    for i, (lo, hi) in enumerate(bins):
        sel = (d >= lo) & (d < hi) & inside
        pts = xy[sel]
        n = len(pts)
        for meas in measures:
            f = m2cnd if meas == "m2cnd" else (lambda p: sdaa(p, poly))
            value = f(pts)
            sims = np.array([f(random_points(poly, n, rng)) for _ in range(trials)])
            sd = float(sims.std())
            results.append(BinResult(float(lo), float(hi), n, meas, value, float(sims.mean()), sd,
                                     float(np.percentile(sims, 2.5)), float(np.percentile(sims, 97.5)),
                                     float((value - sims.mean()) / sd) if sd > 0 else math.nan))
        if notify:
            notify("randomness", (i + 1) / len(bins))
    geo = {"polygon": poly, "xy": xy, "inside": inside, "area_km2_polygon": poly.area / 1e6}
    return results, geo
