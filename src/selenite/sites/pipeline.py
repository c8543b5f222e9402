"""``selenite sites rank``: rasters and catalogues → cell features → labels → scorer → ranked sites → checks.

Steps of the run folder (each skipped when its outputs exist and verify):
``light`` (only without illumination / Earth rasters: computed from the DEM with ``selenite terrain``),
``features`` → ``features.parquet``; ``model`` → ``cells.gpkg``, ``cells.parquet``, ``score.tif``,
``model.json``, ``model_card.md``, ``evaluation.json``; ``rank`` → ``top_sites.csv``, ``top_sites.geojson``;
``validate`` (with regions or reference sites) → ``validation.json``; ``report`` → figures and ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from selenite.errors import InputError
from selenite.geo.raster import raster_info
from selenite.runs import Run, canonical_json
from selenite.sites import features as F
from selenite.sites.config import ASSUMPTIONS, SitesConfig
from selenite.sites.grid import CellGrid, region_grid

LIGHT_FILES = {"illumination": "sun_visibility.tif", "worst_month": "sun_min_month.tif",
               "earth": "earth_visibility.tif", "psr": "psr.tif", "sun_earth": "sun_earth_longest_days.tif",
               "dark": "longest_dark_days.tif", "sun_stay": "sun_stay.tif", "sun_earth_stay": "sun_earth_stay.tif"}


# the settings that decide the score (the model step, and the steps after it, rerun when one changes)
MODEL_PARAMS = ("scorer", "label", "slope_max_deg", "sun_min_pct", "earth_min_pct", "n_trees", "max_depth",
                "learning_rate", "cv_block_km", "cv_folds", "seed", "min_positives", "hazard_max_prob",
                "mission_pole_deg", "mission_psr_km", "tilt_max_deg")


def light_run_files(folder) -> dict[str, Path]:
    """The light products of a ``selenite terrain visibility`` run folder, by option name."""
    folder = Path(folder).resolve()
    if not (folder / "visibility.json").is_file():
        raise InputError(f"{folder} is not a terrain visibility run (no visibility.json)")
    found = {name: folder / f for name, f in LIGHT_FILES.items() if (folder / f).is_file()}
    if "illumination" not in found:
        raise InputError(f"the terrain run {folder} has no sun_visibility.tif")
    return found


def _expand_rasters(items) -> list[Path]:
    """Files as given; a folder → its GeoTIFFs, sorted."""
    out: list[Path] = []
    for it in items or []:
        p = Path(it).resolve()
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in (".tif", ".tiff"))
            if not found:
                raise InputError(f"no GeoTIFF in the folder {p}")
            out.extend(found)
        else:
            out.append(p)
    return out


def _grid_for(cfg: SitesConfig, anchor: Path) -> CellGrid:
    info = raster_info(anchor)
    grid = region_grid(cfg.cell_m, cfg.region_lat, info.bounds, info.crs)
    if grid.nrows == 0 or grid.ncols == 0:
        raise InputError(f"{anchor} does not overlap the region poleward of {cfg.region_lat}°")
    return grid


def compute_light(dem: Path, grid: CellGrid, cfg: SitesConfig, out: dict[str, Path], notify) -> dict:
    """Sun / Earth visibility products of the region from the DEM resampled (block average) to about
    ``terrain_res_m``, written as COGs on a grid aligned to the cells."""
    from selenite.geo.raster import RasterInfo, write_cog
    from selenite.terrain.ephemeris import body_tracks, parse_step_hours, parse_time, time_grid
    from selenite.terrain.horizon import horizons
    from selenite.terrain.visibility import STAY_DAYS, visibility

    k = int(max(1, round(grid.cell_m / cfg.terrain_res_m)))
    frame = F.PixelFrame(k, False)
    z = F.read_on_grid(dem, grid, frame, 0, grid.nrows, 0, grid.ncols, resampling="average", heights=True)
    if not np.isfinite(z).any():
        raise InputError(f"the DEM {dem} holds no valid heights in the region")
    info = RasterInfo(grid.crs, grid.pixel_transform(k), z.shape[1], z.shape[0], np.nan)
    res = grid.cell_m / k
    notify("light: horizons", 0.0)
    hz = horizons(z, cfg.terrain_azimuths, res, observer_m=cfg.terrain_height_m)
    step_h = parse_step_hours(cfg.terrain_step)
    times = time_grid(parse_time(cfg.terrain_start), parse_time(cfg.terrain_end), step_h)
    sun, earth = body_tracks(times)
    notify("light: visibility", 0.5)
    vp = visibility(hz, z, info, sun, earth, step_h)
    kw = dict(crs=grid.crs, transform=info.transform)
    arrays = {"illumination": vp.sun_pct, "worst_month": vp.sun_min_month_pct, "earth": vp.earth_pct,
              "sun_earth": vp.sun_earth_longest_days, "dark": vp.longest_dark_days, "sun_stay": vp.sun_stay_pct,
              "sun_earth_stay": vp.sun_earth_stay_pct}
    for name, arr in arrays.items():
        write_cog(out[f"light/{LIGHT_FILES[name]}"], arr, nodata=np.nan, **kw)
    write_cog(out["light/psr.tif"], vp.psr, nodata=255, dtype="uint8", **kw)
    return {"pixel_m": res, "shape": list(z.shape), "azimuths": cfg.terrain_azimuths, "instants": len(times),
            "observer_height_m": cfg.terrain_height_m, "stay_days": STAY_DAYS,
            "start": cfg.terrain_start, "end": cfg.terrain_end, "step": cfg.terrain_step,
            "note": "horizons within the resampled DEM only: terrain beyond its edge is taken as flat"}


def lander_of(cfg: SitesConfig):
    from selenite.sites.hazard import Lander

    return Lander(legs=cfg.lander_legs, leg_radius_m=cfg.leg_radius_m, tilt_max_deg=cfg.tilt_max_deg,
                  clearance_m=cfg.clearance_m, dispersion_m=cfg.dispersion_m, aims=cfg.hazard_aims)


def hazard_grid(grid: CellGrid, cfg: SitesConfig, dems: list[Path], notify) -> np.ndarray:
    """Monte-Carlo hazard probability of every cell covered by one of ``dems`` (the first that covers it)."""
    from selenite.sites.hazard import hazard_probability

    out = np.full(grid.shape, np.nan, np.float32)
    for i, d in enumerate(dems):
        notify("hazard", i / len(dems))
        p, _ = hazard_probability(d, grid, lander_of(cfg), seed=cfg.seed + i)
        out = np.where(np.isnan(out), p, out)
    return out


def build_features(grid: CellGrid, cfg: SitesConfig, dem: Path | None, light: dict[str, Path],
                   craters: Path | None, scheduler: str | None, notify,
                   hazard: np.ndarray | None = None) -> tuple[pd.DataFrame, dict]:
    cols: dict[str, np.ndarray] = {}
    meta: dict = {"grid": {"cell_m": grid.cell_m, "x0": grid.x0, "y0": grid.y0, "nrows": grid.nrows,
                           "ncols": grid.ncols, "region_lat": grid.region_lat, "crs": "IAU_2015:30135"
                           if grid.south else "IAU_2015:30130"}}
    if dem is not None:
        notify("features: DEM", 0.0)
        arr, frame = F.dem_features(dem, grid, max_k=cfg.max_k, block_cells=cfg.block_cells, scheduler=scheduler)
        cols.update({n: arr[i] for i, n in enumerate(F.DEM_FEATURES)})
        meta["dem"] = {"pixels_per_cell": frame.k, "read": "direct" if frame.direct else "warped (bilinear)"}
    if light:
        notify("features: light", 0.4)
        cols.update(F.raster_features(light, grid))
        meta["light"] = {name: str(p) for name, p in light.items()}
    if craters is not None:
        from selenite.sites.inputs import read_craters

        notify("features: craters", 0.7)
        cat = read_craters(craters)
        arr = F.crater_features(cat, grid, cfg.crater_min_m, cfg.large_crater_m)
        cols.update({n: arr[i] for i, n in enumerate(F.CRATER_FEATURES)})
        meta["craters"] = {"catalogue": str(craters), "rows": len(cat), "min_diameter_m": cfg.crater_min_m,
                           "large_m": cfg.large_crater_m}
    if hazard is not None:
        cols["hazard_prob"] = hazard
        meta["hazard"] = {"cells": int(np.isfinite(hazard).sum()), "lander": lander_of(cfg).__dict__}
    x, y = grid.centres()
    lon, lat = grid.lonlat()
    rows, cc = np.mgrid[0:grid.nrows, 0:grid.ncols]
    keep = grid.in_region()
    if dem is not None:
        keep &= np.nan_to_num(cols["dem_valid_frac"]) >= cfg.min_valid
    elif light:
        first = next(iter(cols.values()))
        keep &= np.isfinite(first)
    if not keep.any():
        raise InputError("no cell of the region has data (do the rasters overlap the region?)")
    df = pd.DataFrame({"cell_id": grid.cell_ids()[keep], "row": rows[keep], "col": cc[keep],
                       "lon": lon[keep], "lat": lat[keep], "x_m": x[keep], "y_m": y[keep]})
    for name, a in cols.items():
        df[name] = np.asarray(a)[keep].astype(np.float32)
    model_features = [c for c in cols if c not in F.NOT_MODEL_FEATURES
                      and not (c == "hazard_prob" and cfg.label == "hazard")]   # never the label itself
    allnan = [c for c in model_features if not np.isfinite(df[c]).any()]
    if allnan and len(allnan) == len(model_features):
        raise InputError(f"every feature is NaN over the region ({', '.join(allnan[:5])} …)")
    meta["features"] = [c for c in model_features if c not in allnan]
    meta["all_nan_features"] = allnan
    meta["cells"] = int(len(df))
    return df, meta


def run_rank(out, cfg: SitesConfig, *, dem=None, illumination=None, earth=None, psr=None, worst_month=None,
             sun_earth=None, dark=None, slope=None, roughness=None, light=None, craters=None, regions=None,
             reference_sites=None, hazard_dems=None, scheduler=None, force: bool = False, progress=None):
    """``light``: a terrain visibility run folder whose products are taken (files given one by one win)."""
    notify = progress or (lambda s, f: None)
    out = Path(out).resolve()                         # step reads inside the run are absolute paths
    dem = None if dem is None else Path(dem).resolve()
    light_dir = None if light is None else Path(light).resolve()
    given = light_run_files(light_dir) if light_dir is not None else {}
    given.update({k: Path(v).resolve() for k, v in (("illumination", illumination), ("earth", earth), ("psr", psr),
                                                    ("worst_month", worst_month), ("sun_earth", sun_earth),
                                                    ("dark", dark), ("slope", slope), ("roughness", roughness))
                  if v is not None})
    craters = None if craters is None else Path(craters).resolve()
    regions = None if regions is None else Path(regions).resolve()
    reference_sites = None if reference_sites is None else Path(reference_sites).resolve()
    hazard_dems = _expand_rasters(hazard_dems)
    if cfg.label == "hazard" and not hazard_dems:
        raise InputError("the hazard label needs lander-scale DEMs (--hazard-dem FILE or FOLDER)")
    if dem is None and not given:
        raise InputError("give a DEM (--dem) or light / Earth rasters: there is nothing to compute features from")
    light_from_dem = dem is not None and not ({"illumination", "earth"} <= set(given))
    if cfg.scorer == "mission" and light_dir is None and not light_from_dem:
        raise InputError("the mission scorer needs the stay products: give a terrain visibility run (--light RUN) "
                         "or a DEM without --illumination/--earth (the light is then computed from it); or use "
                         "--scorer learned")
    if cfg.scorer == "mission" and "psr" not in given and not light_from_dem:
        raise InputError("the mission scorer needs a PSR mask (psr.tif of the --light run, or --psr)")
    for p in [dem, *given.values(), *hazard_dems]:
        if p is not None:
            raster_info(p)                            # readable and lunar: fail before anything is written
    region_gdf = None
    if regions is not None:
        from selenite.sites.inputs import read_regions

        region_gdf = read_regions(regions)
    if craters is not None:
        from selenite.sites.inputs import read_craters

        read_craters(craters)
    grid = _grid_for(cfg, dem if dem is not None else next(iter(given.values())))
    for p in given.values():
        _grid_for(cfg, p)                              # every raster overlaps the region
    params = {"config": cfg.model_dump(mode="json"), "dem": str(dem) if dem else None,
              "light": {k: str(v) for k, v in given.items()}, "craters": str(craters) if craters else None,
              "regions": str(regions) if regions else None,
              "reference_sites": str(reference_sites) if reference_sites else None,
              "hazard_dems": [str(p) for p in hazard_dems]}
    with Run(out, command="sites rank", params=params, force=force) as run:
        for role, p in [("dem", dem), ("craters", craters), ("regions", regions), *given.items()]:
            if p is not None:
                run.add_input(p, role)
        light = dict(given)
        light_meta = None
        if light_dir is not None:
            vis = json.loads((light_dir / "visibility.json").read_text())
            light_meta = {"run": str(light_dir), "pixel_m": vis["pixel_m"], "azimuths": vis["azimuths"],
                          "instants": vis["period"]["instants"], "start": vis["period"]["start"],
                          "end": vis["period"]["end"], "step": f"{vis['period']['step_hours']:g}h",
                          "observer_height_m": vis.get("observer_height_m", 0.0),
                          "stay_days": vis.get("stay_days"), "far_field": bool(vis.get("far_field")),
                          "note": "from the terrain visibility run given"}
        if light_from_dem:
            names = [f"light/{f}" for f in LIGHT_FILES.values()] + ["light/light.json"]

            def make_light(tmp):
                meta = compute_light(dem, grid, cfg, tmp, notify)
                tmp["light/light.json"].write_text(canonical_json(meta) + "\n")

            run.step("light", names, make_light, reads=[dem],
                     params={k: getattr(cfg, k) for k in ("cell_m", "region_lat", "terrain_res_m",
                                                          "terrain_azimuths", "terrain_start", "terrain_end",
                                                          "terrain_step", "terrain_height_m")})
            for name, f in LIGHT_FILES.items():
                light.setdefault(name, run.path(f"light/{f}"))
            light_meta = json.loads(run.path("light/light.json").read_text())

        hazard = None
        if hazard_dems:
            def make_hazard(tmp):
                np.save(tmp["hazard.npy"], hazard_grid(grid, cfg, hazard_dems, notify))

            run.step("hazard", ["hazard.npy"], make_hazard, reads=hazard_dems,
                     params={k: getattr(cfg, k) for k in ("cell_m", "region_lat", "lander_legs", "leg_radius_m",
                                                          "tilt_max_deg", "clearance_m", "dispersion_m",
                                                          "hazard_aims", "seed")})
            hazard = np.load(run.path("hazard.npy"))

        def make_features(tmp):
            df, meta = build_features(grid, cfg, dem, light, craters, scheduler, notify, hazard)
            df.to_parquet(tmp["features.parquet"], index=False)
            meta["light_computed"] = light_meta
            tmp["features.json"].write_text(canonical_json(meta) + "\n")

        reads = [p for p in [dem, craters, *light.values()] if p is not None]
        if hazard is not None:
            reads.append(run.path("hazard.npy"))
        run.step("features", ["features.parquet", "features.json"], make_features, reads=reads,
                 params={k: getattr(cfg, k) for k in ("cell_m", "region_lat", "max_k", "min_valid",
                                                      "crater_min_m", "large_crater_m", "label")})

        def make_model(tmp):
            from selenite.sites.outputs import write_model_outputs

            df = pd.read_parquet(run.path("features.parquet"))
            meta = json.loads(run.path("features.json").read_text())
            write_model_outputs(tmp, df, meta, grid, cfg)

        run.step("model", ["cells.parquet", "cells.gpkg", "score.tif", "model.json", "model_card.md",
                           "evaluation.json"], make_model, reads=["features.parquet", "features.json"],
                 params={k: getattr(cfg, k) for k in MODEL_PARAMS})

        def make_rank(tmp):
            from selenite.sites.outputs import write_top_sites

            write_top_sites(tmp, pd.read_parquet(run.path("cells.parquet")), cfg)

        run.step("rank", ["top_sites.csv", "top_sites.geojson"], make_rank, reads=["cells.parquet"],
                 params={k: getattr(cfg, k) for k in ("top", "min_separation_km", *MODEL_PARAMS)})

        if region_gdf is not None or reference_sites is not None:
            def make_validation(tmp):
                from selenite.sites.outputs import validation

                v = validation(pd.read_parquet(run.path("cells.parquet")), cfg, region_gdf, reference_sites)
                tmp["validation.json"].write_text(canonical_json(v) + "\n")

            run.step("validate", ["validation.json"], make_validation,
                     reads=["cells.parquet"] + [p for p in (regions, reference_sites) if p is not None],
                     params={k: getattr(cfg, k) for k in ("validate_top", "match_km", "n_random",
                                                          "min_separation_km", *MODEL_PARAMS)})

        def make_report(tmp):
            from selenite.sites.report import write_sites_report

            write_sites_report(tmp, run.root, grid, cfg, region_gdf)

        run.step("report", ["report.html", "figures/map.png", "figures/shap_summary.png"], make_report,
                 reads=["cells.parquet", "evaluation.json", "top_sites.csv"]
                 + (["validation.json"] if run.path("validation.json").exists() else []),
                 params={"assumptions": ASSUMPTIONS})
    return run.root


def features_table(out_parquet, cfg: SitesConfig, *, dem, craters=None, rasters: dict | None = None,
                   scheduler=None, progress=None) -> Path:
    """Only the cell features (no light computation, no model): ``out_parquet`` and a JSON beside it with the
    grid, the columns and the seconds each part took. The streaming core of ``sites rank``, timed by
    ``selenite bench sites``."""
    import time

    from selenite.runs import atomic_path

    notify = progress or (lambda s, f: None)
    dem = Path(dem).resolve()
    given = {k: Path(v).resolve() for k, v in (rasters or {}).items()}
    for p in [dem, *given.values()]:
        raster_info(p)
    if craters is not None:
        from selenite.sites.inputs import read_craters

        read_craters(craters)
    grid = _grid_for(cfg, dem)
    t0 = time.perf_counter()
    df, meta = build_features(grid, cfg, dem, given, craters, scheduler, notify)
    meta["seconds"] = {"dem": round(time.perf_counter() - t0, 3)}
    out_parquet = Path(out_parquet)
    with atomic_path(out_parquet) as tmp:
        df.to_parquet(tmp, index=False)
    with atomic_path(out_parquet.with_suffix(".json")) as tmp:
        tmp.write_text(canonical_json(meta) + "\n")
    return out_parquet
