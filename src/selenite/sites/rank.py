"""Top-N sites with non-maximum suppression, and the per-region check against published regions.

Distances are geodesic on the 1737.4 km sphere: great-circle (haversine) between points; from a point to a
region polygon, 0 inside it, else the great-circle distance to the nearest point of its boundary, whose edges
are densified along great circles every ≤ 50 m (so the distance is exact to well under 1 m).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from selenite.geo.crs import MOON_RADIUS_M


@numba.njit(cache=True)
def _greedy(order, lon, lat, bx, by, nbx, nby, n, min_sep_m, radius):
    """Walk cells in ``order``; keep one when it is at least ``min_sep_m`` from every kept cell. Kept cells are
    filed by bucket (bx, by: a plane where no two points are farther apart than on the sphere, buckets of
    ``min_sep_m``), so only the 3 × 3 buckets around a cell can hold one too close: O(1) per cell."""
    kept = np.empty(n, np.int64)
    head = np.full(nbx * nby, -1, np.int64)
    nxt = np.empty(n, np.int64)
    m = 0
    rlon = np.radians(lon)
    rlat = np.radians(lat)
    for idx in order:
        ok = True
        for dx in range(-1, 2):
            cx = bx[idx] + dx
            if cx < 0 or cx >= nbx or not ok:
                continue
            for dy in range(-1, 2):
                cy = by[idx] + dy
                if cy < 0 or cy >= nby:
                    continue
                j = head[cx * nby + cy]
                while j >= 0:
                    k = kept[j]
                    a = (math.sin((rlat[k] - rlat[idx]) / 2) ** 2
                         + math.cos(rlat[idx]) * math.cos(rlat[k]) * math.sin((rlon[k] - rlon[idx]) / 2) ** 2)
                    if 2 * radius * math.asin(math.sqrt(min(a, 1.0))) < min_sep_m:
                        ok = False
                        break
                    j = nxt[j]
                if not ok:
                    break
        if ok:
            kept[m] = idx
            b = bx[idx] * nby + by[idx]
            nxt[m] = head[b]
            head[b] = m
            m += 1
            if m == n:
                break
    return kept[:m]


def _buckets(lon, lat, min_sep_m: float) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Bucket indices of the points on the plane through the sphere's centre perpendicular to their mean
    direction (an orthographic projection: it never lengthens a distance, so points closer than min_sep on the
    sphere fall in neighbouring buckets)."""
    la, lo = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    xyz = np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    c = xyz.mean(axis=0) if len(xyz) else np.array([0.0, 0.0, 1.0])
    c = c / np.linalg.norm(c) if np.linalg.norm(c) > 1e-9 else np.array([0.0, 0.0, 1.0])
    u = np.cross(c, [1.0, 0.0, 0.0] if abs(c[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(c, u)
    px, py = xyz @ u * MOON_RADIUS_M, xyz @ v * MOON_RADIUS_M
    size = max(min_sep_m, 1.0)
    if len(px):
        span = max(np.ptp(px), np.ptp(py), 1.0)
        size = max(size, span / 4000.0)          # at most 4000 × 4000 buckets
    bx = np.floor((px - (px.min() if len(px) else 0.0)) / size).astype(np.int64)
    by = np.floor((py - (py.min() if len(py) else 0.0)) / size).astype(np.int64)
    return bx, by, int(bx.max(initial=0)) + 1, int(by.max(initial=0)) + 1


def _thin(order, lon, lat, n: int, min_sep_km: float) -> np.ndarray:
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    bx, by, nbx, nby = _buckets(lon, lat, min_sep_km * 1000.0)
    return _greedy(np.asarray(order, np.int64), lon, lat, bx, by, nbx, nby, n, min_sep_km * 1000.0, MOON_RADIUS_M)


def top_sites(score: np.ndarray, lon: np.ndarray, lat: np.ndarray, n: int, min_sep_km: float,
              eligible: np.ndarray | None = None, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Indices of the top-``n`` cells by score (ties, e.g. of a calibrated score, broken by ``tiebreak``:
    the raw score), each at least ``min_sep_km`` from every better one."""
    s = np.where(np.isfinite(score), score, -np.inf)
    if eligible is not None:
        s = np.where(eligible, s, -np.inf)
    tb = np.zeros(len(s)) if tiebreak is None else np.nan_to_num(np.asarray(tiebreak, float), nan=-np.inf)
    order = np.lexsort((-tb, -s))
    order = order[np.isfinite(s[order])]
    return _thin(order, lon, lat, n, min_sep_km)


def random_sites(rng, candidates: np.ndarray, lon, lat, n: int, min_sep_km: float) -> np.ndarray:
    """A random ranking of the candidate cells, thinned by the same suppression as the real one."""
    return _thin(rng.permutation(candidates), lon, lat, n, min_sep_km)


def _densify(ring_lon, ring_lat, step_m: float = 50.0):
    from pyproj import Geod

    g = Geod(a=MOON_RADIUS_M, b=MOON_RADIUS_M)
    lons, lats = [], []
    for i in range(len(ring_lon) - 1):
        lo1, la1, lo2, la2 = ring_lon[i], ring_lat[i], ring_lon[i + 1], ring_lat[i + 1]
        _, _, d = g.inv(lo1, la1, lo2, la2)
        k = max(int(math.ceil(d / step_m)) - 1, 0)
        lons.append(lo1)
        lats.append(la1)
        if k:
            pts = np.asarray(g.npts(lo1, la1, lo2, la2, k))
            lons.extend(pts[:, 0])
            lats.extend(pts[:, 1])
    return np.asarray(lons), np.asarray(lats)


class Region:
    """A polygon on the Moon sphere: inside test and geodesic distance to it."""

    def __init__(self, name: str, geometry):
        import shapely

        from selenite.geo.crs import local_stereographic, lonlat_to_map

        self.name = name
        polys = list(geometry.geoms) if geometry.geom_type == "MultiPolygon" else [geometry]
        c = geometry.centroid
        self._crs = local_stereographic(c.x, c.y)
        bl, bt, local = [], [], []
        for poly in polys:
            lo, la = np.asarray(poly.exterior.coords).T
            dlo, dla = _densify(lo, la)
            bl.append(dlo)
            bt.append(dla)
            x, y = lonlat_to_map(self._crs, dlo, dla)
            local.append(shapely.Polygon(np.stack([x, y], 1)))
        self._blon = np.concatenate(bl)
        self._blat = np.concatenate(bt)
        self._local = shapely.union_all(local)
        self.centroid = (c.x, c.y)
        from selenite.geo.sphere import great_circle_distance_m

        self.radius_m = float(great_circle_distance_m(c.x, c.y, self._blon, self._blat).max())

    def contains(self, lon, lat) -> np.ndarray:
        import shapely

        from selenite.geo.crs import lonlat_to_map

        x, y = lonlat_to_map(self._crs, np.atleast_1d(lon), np.atleast_1d(lat))
        return shapely.contains_xy(self._local, x, y)

    def distance_m(self, lon, lat) -> np.ndarray:
        """Geodesic distance (m) from each point to the region: 0 inside."""
        from selenite.geo.sphere import great_circle_distance_m

        lon = np.atleast_1d(np.asarray(lon, float))
        lat = np.atleast_1d(np.asarray(lat, float))
        out = np.empty(len(lon))
        for i in range(0, len(lon), 256):
            sl = slice(i, i + 256)
            d = great_circle_distance_m(lon[sl, None], lat[sl, None], self._blon[None], self._blat[None])
            out[sl] = d.min(axis=1)
        out[self.contains(lon, lat)] = 0.0
        return out


def regions_from(gdf) -> list[Region]:
    return [Region(n, g) for n, g in zip(gdf["name"], gdf.geometry, strict=True)]


def random_matches(near: np.ndarray, candidates: np.ndarray, lon, lat, top_ns: tuple[int, ...], min_sep_km: float,
                   n_random: int, seed: int) -> np.ndarray:
    """(n_random, len(top_ns)) regions matched by random rankings of ``candidates`` (thinned alike)."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_random, len(top_ns)), np.int64)
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    buckets = _buckets(lon, lat, min_sep_km * 1000.0)            # once for every ranking
    for t in range(n_random):
        rs = _greedy(rng.permutation(candidates).astype(np.int64), lon, lat, *buckets, max(top_ns),
                     min_sep_km * 1000.0, MOON_RADIUS_M)
        for k, n in enumerate(top_ns):
            counts[t, k] = int(near[rs[:n]].any(axis=0).sum())
    return counts


def region_check(regions: list[Region], lon, lat, score, sites: np.ndarray, candidates: np.ndarray,
                 top_ns: tuple[int, ...], match_km: float, min_sep_km: float, n_random: int, seed: int,
                 tiebreak: np.ndarray | None = None, other_baselines: dict[str, np.ndarray] | None = None) -> dict:
    """Per region: best rank among the sites and distance to the nearest site; regions matched at each top-N
    (a site within ``match_km`` of the polygon, 0 = inside), and the same count for ``n_random`` random rankings
    of the candidate cells (mean, and the p-value P(random ≥ observed), with the +1 correction).
    ``other_baselines``: further candidate sets (name → cell indices) drawn at random the same way."""
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    # which candidate cells match which region
    near = np.zeros((len(lon), len(regions)), bool)
    per_region = []
    order_all = np.lexsort((-np.nan_to_num(np.asarray(tiebreak, float), nan=-np.inf) if tiebreak is not None
                            else np.zeros(len(score)), -np.where(np.isfinite(score), score, -np.inf)))
    rank_all = np.empty(len(lon), np.int64)
    rank_all[order_all] = np.arange(1, len(lon) + 1)
    for j, reg in enumerate(regions):
        # only cells within the cap around the centroid that holds the polygon and the match distance can match
        from selenite.geo.sphere import great_circle_distance_m

        dc = great_circle_distance_m(reg.centroid[0], reg.centroid[1], lon, lat)
        reach = np.flatnonzero(dc <= reg.radius_m + match_km * 1000.0 + 1.0)
        d = np.full(len(lon), np.inf)
        if len(reach):
            d[reach] = reg.distance_m(lon[reach], lat[reach])
        near[:, j] = d <= match_km * 1000.0
        ds = reg.distance_m(lon[sites], lat[sites]) if len(sites) else np.empty(0)
        hit = np.flatnonzero(ds <= match_km * 1000.0)
        inside = np.flatnonzero(d == 0.0)
        per_region.append({
            "region": reg.name,
            "best_site_rank": int(hit[0] + 1) if len(hit) else None,
            "nearest_site_km": float(ds.min() / 1000.0) if len(ds) else None,
            "nearest_site_rank": int(np.argmin(ds) + 1) if len(ds) else None,
            "best_cell_rank": int(rank_all[inside].min()) if len(inside) else None,
            "cells_inside": int(len(inside)),
        })
    sets = {"": candidates, **(other_baselines or {})}
    random_counts = {name: random_matches(near, c, lon, lat, top_ns, min_sep_km, n_random, seed)
                     for name, c in sets.items()}

    def compare(rc, obs):
        return {"random_mean": float(rc.mean()), "random_p95": float(np.percentile(rc, 95)),
                "p_value": float((1 + (rc >= obs).sum()) / (1 + n_random))}

    matched = {}
    for k, n in enumerate(top_ns):
        obs = int(near[sites[:n]].any(axis=0).sum())
        matched[str(n)] = {"regions_matched": obs, **compare(random_counts[""][:, k], obs),
                           "regions": [r.name for r, m in zip(regions, near[sites[:n]].any(axis=0), strict=True)
                                       if m]}
        for name in other_baselines or {}:
            matched[str(n)][f"random_{name}"] = compare(random_counts[name][:, k], obs)
    return {"match_km": match_km, "n_random": n_random, "per_region": per_region, "top_n": matched,
            "candidates": {name or "region": int(len(c)) for name, c in sets.items()}}
