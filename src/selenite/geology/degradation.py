"""Degradation state of single craters (Basilevsky 1976) measured on a DEM: depth/diameter, inner-wall slope and
rim sharpness from radial profiles → class A, AB, B, BC, C and an age bracket.

Basilevsky (1976): craters smaller than 160 m live T ≈ 2.5 D(m) Myr; a crater moves AB → B → BC → C at 3 %,
20 % and 50 % of its lifetime. Classes are defined morphologically; to turn a measured profile into a lifetime
fraction selenite uses linear topographic diffusion of the fresh simple-crater profile (Pike 1977;
Fassett & Thomson 2014) with the diffusivity chosen so that a crater's depth/D reaches the visibility limit
(0.02) exactly at the end of its lifetime: then depth/D falls monotonically with the lifetime fraction f,
depth/D = g(s_end √f), and inverting g gives f, the class and the age f · 2.5 D Myr. That calibration is
selenite's assumption (the same one its synthetic world uses), stated in the outputs and the docs.

The class A / AB boundary is not published; selenite takes 1 % of the lifetime (the data file's
``fresh_fraction``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from selenite.cratering import basilevsky_class, load_functions

N_AZIMUTHS = 24
MIN_DIAMETER_PX = 6.0


@dataclass
class Profile:
    depth_to_diameter: float
    wall_slope_deg: float
    rim_sharpness: float       # −d²h/dr² at the rim crest × R² / D (dimensionless; large = sharp)
    rim_r_over_R: float


def _model():
    from selenite.synth.terrain import degraded_profile_table, depth_after_diffusion

    funcs = load_functions()
    morph = funcs["morphology"]["fresh_simple"]
    table = degraded_profile_table(morph["depth_to_diameter"], morph["rim_height_to_diameter"],
                                   morph["ejecta_exponent"])
    s_grid = table[0]
    depth = depth_after_diffusion(s_grid, table)
    return s_grid, depth


def lifetime_fraction(depth_to_diameter, visible_depth_ratio: float = 0.02) -> np.ndarray:
    """Lifetime fraction f from depth/D under the diffusion calibration (f = 0 for a fresh crater)."""
    s_grid, depth = _model()
    s_end = float(np.interp(-visible_depth_ratio, -depth, s_grid))
    s = np.interp(-np.asarray(depth_to_diameter, float), -depth, s_grid)
    return (s / s_end) ** 2


def class_bounds_fraction() -> dict[str, tuple[float, float]]:
    rec = load_functions()["degradation"]["basilevsky1976"]
    b = [0.0, rec["fresh_fraction"], *rec["class_bounds"], 1.0]
    names = [rec["fresh_class"], *rec["classes"]]
    return {n: (b[i], b[i + 1]) for i, n in enumerate(names)}


def measure_profile(dem: np.ndarray, col: float, row: float, radius_px: float, px_m: float) -> Profile | None:
    """Azimuthally averaged radial profile of a crater centred at (col, row) (pixel centres at integers)."""
    if radius_px * 2 < MIN_DIAMETER_PX:
        return None
    r = np.linspace(0.0, 1.6, 65)
    az = np.linspace(0, 2 * np.pi, N_AZIMUTHS, endpoint=False)
    cc = col + np.outer(np.cos(az), r * radius_px)
    rr = row + np.outer(np.sin(az), r * radius_px)
    if cc.min() < 0 or rr.min() < 0 or cc.max() > dem.shape[1] - 1 or rr.max() > dem.shape[0] - 1:
        return None
    prof = map_coordinates(dem, [rr.ravel(), cc.ravel()], order=1, mode="nearest").reshape(cc.shape)
    if not np.isfinite(prof).all():
        return None
    h = np.median(prof, axis=0)
    D = 2 * radius_px * px_m
    band = (r >= 0.7) & (r <= 1.35)
    i_rim = np.flatnonzero(band)[np.argmax(h[band])]
    floor = h[r <= 0.5].min()
    depth = float(h[i_rim] - floor)
    dr_m = (r[1] - r[0]) * radius_px * px_m
    slope = np.degrees(np.arctan(np.abs(np.gradient(h, dr_m))))
    wall = float(slope[(r >= 0.3) & (r <= r[i_rim])].max()) if i_rim > 0 else 0.0
    i = int(np.clip(i_rim, 2, len(h) - 3))
    d2 = (h[i - 2] - 2 * h[i] + h[i + 2]) / (2 * dr_m) ** 2
    R = D / 2
    return Profile(depth / D, wall, float(-d2 * R * R / D), float(r[i_rim]))


def classify(diameter_m: np.ndarray, depth_to_diameter: np.ndarray) -> dict[str, np.ndarray]:
    """Class, lifetime fraction, model age and the class's age bracket (Myr) per crater."""
    rec = load_functions()["degradation"]["basilevsky1976"]
    d = np.asarray(diameter_m, float)
    # a mapped crater exists: a profile shallower than the visibility limit is a C crater at the end of its
    # lifetime (f capped at 1), not "gone"
    f = np.minimum(lifetime_fraction(np.clip(depth_to_diameter, 0, None)), 1.0 - 1e-9)
    life = rec["lifetime_myr_per_m"] * d
    cls = basilevsky_class(f * life, d)
    bounds = class_bounds_fraction()
    lo = np.array([bounds.get(c, (1.0, np.inf))[0] for c in cls]) * life
    hi = np.array([bounds.get(c, (1.0, np.inf))[1] for c in cls]) * life
    valid = d < rec["valid_below_m"]
    return {"class": np.where(valid, cls, "n/a"), "lifetime_fraction": f, "age_myr": np.where(valid, f * life,
                                                                                               np.nan),
            "age_min_myr": np.where(valid, lo, np.nan), "age_max_myr": np.where(valid, hi, np.nan)}


def craters_on_raster(craters, info, gsd_m: float | None = None, require_lonlat: bool = False):
    """(col, row, diameter_m) of the craters of a file on a raster grid (pixel centres at integers).

    Accepts a ``selenite craters`` CSV (pixels of this raster, or lon/lat + diameter) or a craterstats .scc/.diam
    with positions (lon, lat, diameters in km); only positions matter, so a count's area is not needed.
    ``require_lonlat`` refuses pixel tables (their pixels are of another image)."""
    from pathlib import Path

    import pandas as pd

    from selenite.errors import InputError
    from selenite.geo.crs import lonlat_to_map

    path = Path(craters)
    px = abs(info.transform.a)
    inv = ~info.transform
    if path.suffix.lower() in (".scc", ".diam"):
        from selenite.geology.csfd import read_count

        c = read_count(path, area_km2=1.0)      # positions only: the counted area plays no part
        if c.lon is None:
            raise InputError(f"{path}: the count has no crater positions (lon, lat)")
        lon, lat, d_m = c.lon, c.lat, c.diameters_km * 1000.0
        ids = np.arange(c.n)
    else:
        from selenite.craters.catalog import read_craters

        df = read_craters(path)
        ids = np.arange(len(df))
        if {"lon", "lat", "diameter_m"} <= set(df.columns):
            lon, lat, d_m = (df[k].to_numpy(float) for k in ("lon", "lat", "diameter_m"))
        elif require_lonlat:
            raise InputError(f"{path}: needs lon, lat and a diameter in m or km (positions on the map)")
        else:
            col = df["x_px"].to_numpy(float)
            row = df["y_px"].to_numpy(float)
            return pd.DataFrame({"id": ids, "col": col, "row": row,
                                 "diameter_m": df["diameter_px"].to_numpy(float) * (gsd_m or px)})
    if info.crs is None:
        raise InputError("the raster has no CRS, so lon/lat craters cannot be placed on it")
    x, y = lonlat_to_map(info.crs, lon, lat)
    col, row = inv * (np.asarray(x), np.asarray(y))
    return pd.DataFrame({"id": ids, "col": np.asarray(col) - 0.5, "row": np.asarray(row) - 0.5, "diameter_m": d_m})


def degradation_file(craters, dem, out, plot=None) -> dict:
    """Classes of the craters of a file measured on a DEM → CSV (and a class map)."""
    from pathlib import Path

    import pandas as pd

    from selenite.errors import InputError
    from selenite.geo.raster import read_dem
    from selenite.runs import atomic_path

    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise InputError(f"{out}: the classes are written as CSV; give a .csv name")
    h, info = read_dem(dem)
    px = abs(info.transform.a)
    cr = craters_on_raster(craters, info)
    rows = []
    for r in cr.itertuples():
        p = measure_profile(h, r.col, r.row, r.diameter_m / 2 / px, px)
        rows.append({"id": r.id, "col": r.col, "row": r.row, "diameter_m": r.diameter_m,
                     "depth_to_diameter": p.depth_to_diameter if p else np.nan,
                     "wall_slope_deg": p.wall_slope_deg if p else np.nan,
                     "rim_sharpness": p.rim_sharpness if p else np.nan})
    df = pd.DataFrame(rows)
    ok = df["depth_to_diameter"].notna().to_numpy()
    if not ok.any():
        raise InputError(f"no crater of {craters} could be measured on {dem} (each needs ≥ {MIN_DIAMETER_PX:g} "
                         "DEM pixels across and to lie wholly on the DEM)")
    res = classify(df.loc[ok, "diameter_m"].to_numpy(), df.loc[ok, "depth_to_diameter"].to_numpy())
    for k, v in res.items():
        df[k] = np.nan if k != "class" else "unmeasured"
        df.loc[ok, k] = v
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    counts = df["class"].value_counts().to_dict()
    rec = {"craters": str(craters), "dem": str(dem), "out": str(out), "n": len(df), "measured": int(ok.sum()),
           "classes": {k: int(v) for k, v in counts.items()},
           "assumption": "lifetime fraction from depth/D by linear diffusion calibrated to reach depth/D 0.02 at "
                         "the end of the Basilevsky lifetime 2.5 D Myr; A/AB boundary at 1 % of the lifetime"}
    if plot is not None:
        from selenite.geology.plots import class_map_figure

        with atomic_path(plot) as tmp:
            class_map_figure(tmp, h, df, px)
        rec["plot"] = str(plot)
    return rec


# ---------------------------------------------------------------------------------------------------------
# from image profiles (photoclinometry along the Sun's azimuth)
# ---------------------------------------------------------------------------------------------------------
def _reflectance_table(sun_elevation_deg: float):
    """(brightness ratio ρ, tilt α) for a nadir view: ρ(α) = R(α) / R(−α), the lunar-Lambert reflectance
    (McEwen 1996) of a surface tilted α towards the Sun over that of one tilted α away (incidence i0 ∓ α,
    emission |α|). Monotone for |α| < the Sun's elevation; a shadowed away-facing point is the limit α → e."""
    from selenite.synth.render import photometry

    ll = np.array(photometry()["lunar_lambert"]["mcewen1996"]["coefficients"], float)
    i0 = 90.0 - sun_elevation_deg
    L = float(np.clip(ll[0] + ll[1] * i0 + ll[2] * i0 * i0 + ll[3] * i0**3, 0, 1))   # phase = i0 at nadir

    def R(alpha):
        ci = np.cos(np.radians(i0 - alpha))
        ce = np.cos(np.radians(np.abs(alpha)))
        return 2 * L * ci / (ci + ce) + (1 - L) * ci

    alpha = np.linspace(0.0, sun_elevation_deg * 0.995, 300)
    rho = R(alpha) / R(-alpha)
    keep = np.concatenate([[True], np.diff(rho) > 0])
    return rho[keep], alpha[keep]


def image_profile(img: np.ndarray, valid: np.ndarray, col: float, row: float, radius_px: float, px_m: float,
                  sun_azimuth_deg: float, table, directions_deg=(-30, -15, 0, 15, 30)) -> Profile | None:
    """Depth/D of a crater from image brightness (north-up, pixel centres at integers), free of albedo.

    For an axisymmetric crater the points at ±r along the Sun's azimuth have the same albedo (a halo is
    symmetric too) and opposite tilts ±α, so their brightness ratio I(−r)/I(+r) = R(α)/R(−α) depends on the
    slope alone (lunar-Lambert, nadir view). α is solved per radius in five directions within ±30° of the Sun
    (a direction at φ sees the component α = atan(tan β cos φ) of the radial slope β), the radial slope is their
    median and heights its integral. A shadowed away-facing point reads as the grazing limit β = the Sun's
    elevation, so a shadowed wall gives a lower bound on the depth. Only slopes below the Sun's elevation are
    measured."""
    if radius_px * 2 < MIN_DIAMETER_PX:
        return None
    r = np.linspace(0.0, 1.6, 65)
    rho_t, alpha_t = table
    e = float(alpha_t[-1])
    betas, ends = [], []
    for phi in directions_deg:
        az = np.radians(sun_azimuth_deg + phi)
        d = np.array([np.sin(az), -np.cos(az)])       # towards the Sun (rotated by φ) in (col, row)
        for sgn in (1, -1):
            ends.append((col + sgn * d[0] * r * radius_px, row + sgn * d[1] * r * radius_px))
    cs = np.concatenate([c for c, _ in ends])
    rs = np.concatenate([q for _, q in ends])
    if cs.min() < 0 or rs.min() < 0 or cs.max() > img.shape[1] - 1 or rs.max() > img.shape[0] - 1:
        return None
    if (map_coordinates(valid.astype(np.float32), [rs, cs], order=0) < 0.5).any():
        return None
    vals = map_coordinates(img, [rs, cs], order=1).reshape(len(ends), r.size)
    dark = 0.08 * float(np.median(vals))
    for k, phi in enumerate(directions_deg):
        sun_side, away_side = vals[2 * k], vals[2 * k + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = away_side / np.maximum(sun_side, 1e-6)
        a = np.interp(np.log(np.where(np.isfinite(rho) & (rho > 0), rho, 1.0)), np.log(rho_t), alpha_t)
        neg = rho < 1                                  # outer slopes (facing away on the anti-sun side)
        a[neg] = -np.interp(np.log(1 / np.maximum(rho[neg], 1e-6)), np.log(rho_t), alpha_t)
        a[(sun_side < dark) & (away_side >= dark)] = e  # sun-side point in shadow: the grazing limit
        a[(sun_side < dark) & (away_side < dark)] = np.nan
        betas.append(np.degrees(np.arctan(np.tan(np.radians(a)) / np.cos(np.radians(phi)))))
    beta = np.nanmedian(np.array(betas), axis=0)
    if np.isnan(beta).mean() > 0.3:
        return None
    beta = np.interp(r, r[~np.isnan(beta)], beta[~np.isnan(beta)])
    dr = (r[1] - r[0]) * radius_px * px_m
    h = np.concatenate([[0.0], np.cumsum(np.tan(np.radians(0.5 * (beta[1:] + beta[:-1]))))]) * dr
    D = 2 * radius_px * px_m
    band = (r >= 0.7) & (r <= 1.35)
    i_rim = np.flatnonzero(band)[np.argmax(h[band])]
    depth = float(h[i_rim] - h[r <= 0.5].min())
    wall = float(beta[(r >= 0.3) & (r <= r[i_rim])].max())
    return Profile(max(depth, 0.0) / D, wall, float("nan"), float(r[i_rim]))


IMAGE_ASSUMPTION = ("depth/D from image brightness: albedo-free ratio of the two walls along the Sun's azimuth, "
                    "lunar-Lambert (McEwen 1996), nadir view, axisymmetric crater; slopes steeper than the Sun's "
                    "elevation read as that elevation (a lower bound). Lifetime fraction by the same diffusion "
                    "calibration as the DEM path")


def degradation_image(ortho: np.ndarray, valid: np.ndarray, craters, gsd_m: float, sun: tuple[float, float],
                      out_csv, plot=None) -> dict:
    """Classes of craters (``x_px, y_px, diameter_m`` on a north-up ortho) from image profiles → CSV, class map,
    record."""
    import pandas as pd

    from selenite.errors import InputError

    az, el = float(sun[0]), float(sun[1])
    if not 0 < el < 90:
        raise InputError(f"the Sun's elevation must be between 0 and 90° (got {el:g})")
    from selenite.geology.frames import ortho_grey

    img = ortho_grey(ortho).astype(np.float64)
    table = _reflectance_table(el)
    rows = []
    for i, r in enumerate(craters.itertuples()):
        p = image_profile(img, valid, r.x_px, r.y_px, r.diameter_m / 2 / gsd_m, gsd_m, az, table)
        rows.append({"id": i, "col": r.x_px, "row": r.y_px, "diameter_m": r.diameter_m,
                     "depth_to_diameter": p.depth_to_diameter if p else np.nan,
                     "wall_slope_deg": p.wall_slope_deg if p else np.nan})
    df = pd.DataFrame(rows, columns=["id", "col", "row", "diameter_m", "depth_to_diameter", "wall_slope_deg"])
    ok = df["depth_to_diameter"].notna().to_numpy()
    df["class"] = "unmeasured"
    if ok.any():
        res = classify(df.loc[ok, "diameter_m"].to_numpy(), df.loc[ok, "depth_to_diameter"].to_numpy())
        for k, v in res.items():
            if k != "class":
                df[k] = np.nan
            df.loc[ok, k] = v
    df.to_csv(out_csv, index=False, float_format="%.6g")
    rec = {"n": len(df), "measured": int(ok.sum()), "classes": {k: int(v) for k, v in
                                                               df["class"].value_counts().to_dict().items()},
           "sun": {"azimuth_deg": az, "elevation_deg": el}, "assumption": IMAGE_ASSUMPTION}
    if plot is not None:
        from selenite.geology.plots import class_map_figure

        v = img[valid]
        lo, hi = (np.percentile(v, [0.5, 99.5]) if v.size else (0.0, 1.0))
        class_map_figure(plot, np.where(valid, np.clip((img - lo) / max(hi - lo, 1e-9), 0, 1), 0.2), df, gsd_m,
                         image=True)
    return rec


def degradation_image_file(craters, image, sun, out, plot=None, gsd_m: float | None = None) -> dict:
    """Classes of the craters of a file measured on a north-up image (georeferenced, or plain with ``gsd_m``)."""
    from pathlib import Path

    import cv2
    import pandas as pd

    from selenite.errors import InputError
    from selenite.geo.raster import RasterInfo, raster_info
    from selenite.runs import atomic_path

    out, image = Path(out), Path(image)
    if out.suffix.lower() != ".csv":
        raise InputError(f"{out}: the classes are written as CSV; give a .csv name")
    if not image.is_file():
        raise InputError(f"{image}: no such image")
    info = raster_info(image, require_crs=False)
    if info.crs is not None:
        import rasterio

        with rasterio.open(image) as ds:
            bands = ds.read().astype(np.float64)
        valid = np.isfinite(bands).all(axis=0)
        if info.nodata is not None:
            valid &= (bands != info.nodata).any(axis=0)
        arr = bands.mean(axis=0)
        gsd_m = gsd_m or abs(info.transform.a)
    else:
        img = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f"{image}: not a readable image")
        arr = img.astype(np.float64) if img.ndim == 2 else img[..., :3].astype(np.float64).mean(axis=2)
        valid = np.ones(arr.shape, bool)
        if gsd_m is None or not gsd_m > 0:
            raise InputError(f"{image}: not georeferenced; give its metres per pixel with --gsd")
        from affine import Affine

        info = RasterInfo(None, Affine(gsd_m, 0, 0, 0, -gsd_m, 0), arr.shape[1], arr.shape[0])
    cr = craters_on_raster(craters, info, gsd_m)
    df = pd.DataFrame({"x_px": cr["col"], "y_px": cr["row"], "diameter_m": cr["diameter_m"]})
    with atomic_path(out) as tmp_csv:
        if plot is not None:
            with atomic_path(plot) as tmp_png:
                rec = degradation_image(arr, valid, df, gsd_m, sun, tmp_csv, tmp_png)
            rec["plot"] = str(plot)
        else:
            rec = degradation_image(arr, valid, df, gsd_m, sun, tmp_csv)
    rec.update(craters=str(craters), image=str(image), out=str(out))
    return rec
