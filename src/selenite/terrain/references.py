"""Light products checked against independent, published references.

- **Landing sites with days of sunlight** (Wueller et al. 2026, JGR Planets, doi:10.1029/2025JE009434; data
  doi:10.5281/zenodo.17084058): 130 sites in the Artemis regions with, per year 2025–2032, days of sunlight
  (``SunDays25``…``Sundays32``) and days of sunlight with Earth in view (``SunEarth26``…, the 2025 column
  truncated to ``Sun_Earth2`` by the shapefile's 10-character names). Their per-year window is not stated in the
  files; we compare with the mean over the years, by rank (Spearman), at the pixel holding each site.
- **Cold-trap PSRs** (Tye et al. 2015; Cannon et al. 2020; via moonpies): crater centre and diameter, and the
  centroid and area of the crater's permanently shadowed region. Our area is that of the connected PSR (pixels
  sharing a side) at their PSR centroid — the region they measured — not every PSR inside the rim circle: a large
  crater can hold several separate PSRs (Cabeus), and a PSR can spill past the rim circle (Sverdrup).
- **Resolution**: the same ground at two pixel sizes (e.g. PGDA's 10 m Connecting Ridge against the 240 m pole),
  the fine products block-averaged onto the coarse pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from selenite.errors import InputError
from selenite.geo.raster import raster_info, read_raster

SITE_PRODUCTS = {"sun_visibility": "sun_days", "longest_sun_days": "sun_days",
                 "sun_earth_longest_days": "sun_earth_days"}
"""Our product → the reference column it is ranked against."""


def read_reference_sites(path) -> pd.DataFrame:
    """Published sites (points) → name, region, lon, lat and, when present, ``sun_days`` (mean of SunDays*) and
    ``sun_earth_days`` (mean of SunEarth* and Sun_Earth2)."""
    from selenite.geo.crs import GEOGRAPHIC, as_crs
    from selenite.geo.vector import read_vector

    gdf = read_vector(path)
    if not gdf.geom_type.isin(["Point"]).all():
        raise InputError(f"the reference sites {path} must be points")
    geo = gdf.to_crs(as_crs(GEOGRAPHIC))
    cols = {c.lower(): c for c in gdf.columns}
    out = pd.DataFrame({"name": gdf[cols["name"]].astype(str) if "name" in cols else [f"site {i + 1}" for i in
                                                                                     range(len(gdf))],
                        "region": gdf[cols["landing_re"]].astype(str) if "landing_re" in cols else "",
                        "lon": geo.geometry.x.to_numpy(), "lat": geo.geometry.y.to_numpy()})
    for name, prefixes in (("sun_days", ("sundays",)), ("sun_earth_days", ("sunearth", "sun_earth"))):
        found = [cols[c] for c in cols if c.startswith(prefixes)]
        if found:
            out[name] = gdf[found].apply(pd.to_numeric, errors="coerce").mean(axis=1).to_numpy()
    return out


def sample_at(path, lon, lat) -> np.ndarray:
    """A raster's values at the pixels holding the points (NaN outside it or at nodata)."""
    a, info = read_raster(path)
    col, row = info.lonlat_to_pixel(np.asarray(lon, float), np.asarray(lat, float))
    c, r = np.round(col).astype(int), np.round(row).astype(int)
    ok = (c >= 0) & (r >= 0) & (c < info.width) & (r < info.height)
    out = np.full(len(c), np.nan)
    out[ok] = a[r[ok], c[ok]]
    return out


def site_correlations(run_dir, sites: pd.DataFrame) -> dict:
    """Spearman ρ of our products at the sites' pixels against the sites' days, per product (sites outside the
    DEM left out), with the values themselves for tables and plots."""
    from scipy.stats import spearmanr

    run_dir = Path(run_dir)
    values = {}
    out: dict = {"sites": int(len(sites))}
    for product, theirs in SITE_PRODUCTS.items():
        f = run_dir / f"{product}.tif"
        if theirs not in sites or not f.exists():
            continue
        ours = sample_at(f, sites["lon"], sites["lat"])
        values[product] = ours
        ok = np.isfinite(ours) & np.isfinite(sites[theirs].to_numpy(float))
        if ok.sum() >= 3:
            rho, p = spearmanr(ours[ok], sites[theirs].to_numpy(float)[ok])
            out[f"{product}_vs_{theirs}"] = {"rho": float(rho), "p_value": float(p), "n": int(ok.sum())}
    out["values"] = {k: [None if not np.isfinite(v) else float(v) for v in a] for k, a in values.items()}
    return out


def yearly_columns(path) -> dict[int, str]:
    """Year → the reference sites' column of days of sunlight for that year (``SunDays25`` … ``Sundays32``)."""
    from selenite.geo.vector import read_vector

    cols = read_vector(path).columns
    out = {}
    for c in cols:
        low = c.lower()
        if low.startswith("sundays") and low[7:].isdigit():
            out[2000 + int(low[7:])] = c
    return dict(sorted(out.items()))


def yearly_site_correlations(run_dir, sites_path, step_hours: float = 12.0) -> list[dict]:
    """Year by year: our longest sunlit period and Sun visibility within each calendar year at the sites' pixels
    (from the run's horizon.tif, its eye height and DEM heights, every ``step_hours``) against the sites' days of
    sunlight of that year (Spearman ρ). Shows whether their yearly window is the calendar year."""
    import json

    import rasterio
    from scipy.stats import spearmanr

    from selenite.geo.vector import read_vector
    from selenite.terrain.ephemeris import body_tracks, parse_time, time_grid
    from selenite.terrain.horizon import HORIZON_NODATA, HORIZON_SCALE
    from selenite.terrain.visibility import angular_radius_deg, local_directions

    run_dir = Path(run_dir)
    sites = read_reference_sites(sites_path)
    raw = read_vector(sites_path)
    meta = json.loads((run_dir / "visibility.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    hpath = run_dir / "horizon.tif"
    if not hpath.exists():
        raise InputError(f"{run_dir} has no horizon.tif (run terrain visibility without --no-horizon-file)")
    info = raster_info(hpath)
    col, row = info.lonlat_to_pixel(sites["lon"].to_numpy(), sites["lat"].to_numpy())
    c, r = np.round(col).astype(int), np.round(row).astype(int)
    ok = (c >= 0) & (r >= 0) & (c < info.width) & (r < info.height)
    c, r = c[ok], r[ok]
    with rasterio.open(hpath) as ds:
        hz = np.stack([ds.read(window=rasterio.windows.Window(int(ci), int(ri), 1, 1))[:, 0, 0]
                       for ci, ri in zip(c, r, strict=True)]).astype(float)
    hz = np.where(hz == HORIZON_NODATA, 0.0, hz * HORIZON_SCALE)                 # (sites, azimuths)
    z = np.array([read_raster(manifest["params"]["dem"], window=rasterio.windows.Window(int(ci), int(ri), 1,
                                                                                         1))[0][0, 0]
                  for ci, ri in zip(c, r, strict=True)])
    eye = np.nan_to_num(z) + float(meta.get("observer_height_m", 0.0))
    out = []
    n_az = hz.shape[1]
    az_nodes = np.arange(n_az + 1) * 360.0 / n_az
    for year, column in yearly_columns(sites_path).items():
        times = time_grid(parse_time(f"{year}-01-01"), parse_time(f"{year + 1}-01-01"), step_hours)
        sun, _ = body_tracks(times)
        el, az = local_directions(info, c.astype(float), r.astype(float), eye, sun.position_km)
        horizon = np.stack([np.interp(az[:, j], az_nodes, np.r_[hz[j], hz[j, 0]]) for j in range(len(c))], 1)
        lit = el - horizon > -angular_radius_deg(sun)[:, None]                  # some of the disk in view
        run = np.zeros(len(c))
        longest = np.zeros(len(c))
        for t in range(len(times)):
            run = (run + 1) * lit[t]
            longest = np.maximum(longest, run)
        theirs = pd.to_numeric(raw.loc[ok, column], errors="coerce").to_numpy(float)
        good = np.isfinite(theirs)
        out.append({"year": year, "column": column, "n": int(good.sum()),
                    "longest_sunlit_rho": float(spearmanr(longest[good], theirs[good])[0]),
                    "sunlit_share_rho": float(spearmanr(lit.mean(0)[good], theirs[good])[0]),
                    "their_max_days": float(np.nanmax(theirs)),
                    "our_max_longest_days": float(longest.max() * step_hours / 24.0)})
    return out


def read_cold_traps(path) -> pd.DataFrame:
    """moonpies' south-polar cold-trap table → name, lon, lat, diameter_km, psr_lon, psr_lat, psr_area_km2 (rows
    without a PSR area left out)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"cold-trap table not found: {p}")
    df = pd.read_csv(p)
    need = ["Crater Name", "Lat (deg)", "Lon (deg)", "PSR centroid Lat (deg)", "PSR centroid Lon (deg)",
            "Diam (km)", "PSR Area (km^2)"]
    missing = [c for c in need if c not in df]
    if missing:
        raise InputError(f"the cold-trap table {p} lacks {', '.join(missing)}")
    df = df[np.isfinite(df["PSR Area (km^2)"]) & np.isfinite(df["PSR centroid Lat (deg)"])]
    wrap = lambda v: (np.asarray(v, float) + 180.0) % 360.0 - 180.0   # noqa: E731
    return pd.DataFrame({"name": df["Crater Name"].to_numpy(), "lon": wrap(df["Lon (deg)"]),
                         "lat": df["Lat (deg)"].to_numpy(float), "diameter_km": df["Diam (km)"].to_numpy(float),
                         "psr_lon": wrap(df["PSR centroid Lon (deg)"]),
                         "psr_lat": df["PSR centroid Lat (deg)"].to_numpy(float),
                         "psr_area_km2": df["PSR Area (km^2)"].to_numpy(float)})


def pixel_areas_km2(info, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """True (sphere) area of pixels of a projected raster: map area over the projection's areal scale."""
    from pyproj import Proj

    from selenite.geo.crs import as_crs

    lon, lat = info.pixel_to_lonlat(cols.astype(float), rows.astype(float))
    scale = Proj(as_crs(info.crs)).get_factors(lon, lat).areal_scale
    return abs(info.transform.a * info.transform.e) / np.asarray(scale) / 1e6


def psr_areas(psr_path, traps: pd.DataFrame, search_km: float = 1.0) -> list[dict]:
    """Per cold trap whose rim circle lies inside the PSR raster: their PSR area, ours (the connected PSR at
    their PSR centroid, or the nearest PSR pixel within ``search_km`` of it) and every PSR pixel inside the rim
    circle, in km² on the sphere."""
    from scipy import ndimage

    from selenite.geo.sphere import destination, great_circle_distance_m

    a, info = read_raster(psr_path)
    psr = a == 1
    labels, _ = ndimage.label(psr)
    res_km = abs(info.transform.a) / 1000.0
    out = []
    for t in traps.itertuples():
        ring = [destination(t.lon, t.lat, b, t.diameter_km * 500.0) for b in range(0, 360, 5)]
        rc, rr = info.lonlat_to_pixel(np.array([p[0] for p in ring]), np.array([p[1] for p in ring]))
        if not ((rc >= 0) & (rr >= 0) & (rc <= info.width - 1) & (rr <= info.height - 1)).all():
            continue
        # pixels within the rim circle (a bounding window first)
        c0, c1 = int(max(rc.min() - 1, 0)), int(min(rc.max() + 2, info.width))
        r0, r1 = int(max(rr.min() - 1, 0)), int(min(rr.max() + 2, info.height))
        rows, cols = np.mgrid[r0:r1, c0:c1]
        lon, lat = info.pixel_to_lonlat(cols.ravel().astype(float), rows.ravel().astype(float))
        inside = (great_circle_distance_m(t.lon, t.lat, lon, lat) <= t.diameter_km * 500.0).reshape(rows.shape)
        win = psr[r0:r1, c0:c1] & inside
        in_rim = float(pixel_areas_km2(info, rows[win], cols[win]).sum())
        pc, pr = info.lonlat_to_pixel(np.array([t.psr_lon]), np.array([t.psr_lat]))
        label = 0
        k = int(np.ceil(search_km / res_km))
        ci, ri = int(round(pc[0])), int(round(pr[0]))
        if 0 <= ci < info.width and 0 <= ri < info.height:
            ys, xs = np.nonzero(labels[max(ri - k, 0):ri + k + 1, max(ci - k, 0):ci + k + 1])
            if len(ys):
                d = np.hypot(ys + max(ri - k, 0) - ri, xs + max(ci - k, 0) - ci)
                j = int(np.argmin(d))
                if d[j] * res_km <= search_km:
                    label = labels[ys[j] + max(ri - k, 0), xs[j] + max(ci - k, 0)]
        comp = 0.0
        if label:
            rr_, cc_ = np.nonzero(labels == label)
            comp = float(pixel_areas_km2(info, rr_, cc_).sum())
        out.append({"crater": t.name, "diameter_km": float(t.diameter_km), "theirs_km2": float(t.psr_area_km2),
                    "ours_km2": comp, "ratio": comp / t.psr_area_km2, "in_rim_km2": in_rim,
                    "in_rim_ratio": in_rim / t.psr_area_km2})
    return out


def resolution_comparison(fine_dir, coarse_dir, products=("sun_visibility", "earth_visibility",
                                                           "longest_sun_days", "sun_earth_stay")) -> dict:
    """The fine run's products block-averaged onto the coarse run's pixels over the fine run's footprint (only
    coarse pixels wholly covered), against the coarse run's own values: bias, mean absolute difference, r; and the
    footprint's PSR share and best-lit pixel at each resolution."""
    from rasterio.warp import Resampling, reproject

    fine_dir, coarse_dir = Path(fine_dir), Path(coarse_dir)
    fi = raster_info(fine_dir / "psr.tif")
    ci = raster_info(coarse_dir / "psr.tif")
    left, bottom, right, top = fi.bounds
    c_left, c_top = ci.transform.c, ci.transform.f
    res = abs(ci.transform.a)
    col0 = int(np.ceil((left - c_left) / res))
    col1 = int(np.floor((right - c_left) / res))
    row0 = int(np.ceil((c_top - top) / res))
    row1 = int(np.floor((c_top - bottom) / res))
    if col1 <= col0 or row1 <= row0:
        raise InputError(f"{fine_dir} covers no whole pixel of {coarse_dir}")
    out: dict = {"fine_m": fi.ground_res_m, "coarse_m": ci.ground_res_m,
                 "coarse_pixels": int((col1 - col0) * (row1 - row0)), "products": {}}
    from affine import Affine

    dst_t = Affine(res, 0, c_left + col0 * res, 0, -res, c_top - row0 * res)
    for name in products + ("psr",):
        fp, cp = fine_dir / f"{name}.tif", coarse_dir / f"{name}.tif"
        if not (fp.exists() and cp.exists()):
            continue
        fa, _ = read_raster(fp)                       # nodata (the PSR mask's 255 too) → NaN
        ca, _ = read_raster(cp)
        block = np.full((row1 - row0, col1 - col0), np.nan)
        reproject(fa.astype(np.float64), block, src_transform=fi.transform, dst_transform=dst_t,
                  src_crs=fi.crs.to_wkt(), dst_crs=ci.crs.to_wkt(), src_nodata=np.nan, dst_nodata=np.nan,
                  resampling=Resampling.average)
        coarse = ca[row0:row1, col0:col1].astype(float)
        ok = np.isfinite(block) & np.isfinite(coarse)
        d = coarse[ok] - block[ok]
        entry = {"fine_mean": float(block[ok].mean()), "coarse_mean": float(coarse[ok].mean()),
                 "fine_max": float(np.nanmax(fa)), "coarse_max": float(coarse[ok].max()),
                 "bias_coarse_minus_fine": float(d.mean()), "mad": float(np.abs(d).mean()),
                 "r": float(np.corrcoef(block[ok], coarse[ok])[0, 1]) if ok.sum() > 2 else float("nan")}
        out["products"][name] = entry
    return out
