"""``selenite bench sites``: DEM → 1 km cell features over 80–90°S, timed by DEM size.

The DEMs are synthetic south poles (:mod:`selenite.synth.polar`) of the full 608 km square at 80, 40 and 20 m
(7,600², 15,200², 30,400² px); each case is one ``selenite sites features`` process (the DEM features of every
cell, streamed), timed with its peak RSS.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from selenite.bench.locate import _run_child

EXTENT_M = 608_000.0


def polar_case_dem(work: Path, size: int, notify=lambda s, f: None) -> Path:
    from selenite.synth.polar import PolarSpec, write_polar_dem

    path = work / f"polar_{size}.tif"
    if not path.exists():
        pixel = EXTENT_M / size
        write_polar_dem(path, PolarSpec(size_px=size, pixel_m=pixel, seed=11, d_min_m=max(200.0, 5 * pixel)),
                        notify=notify)
    return path


def run_features_case(work: Path, size: int) -> dict:
    dem = polar_case_dem(work, size)
    out = work / f"features_{size}.parquet"
    craters = dem.with_name(dem.stem + "_craters.csv")
    args = [sys.executable, "-m", "selenite", "sites", "features", "--dem", str(dem), "--craters", str(craters),
            "--cell-m", "1000", "--out", str(out)]
    code, wall, rss, tail = _run_child(args)
    if code != 0:
        return {"size": size, "error": tail, "wall_s": wall}
    meta = json.loads(out.with_suffix(".json").read_text())
    return {"size": size, "pixel_m": EXTENT_M / size, "wall_s": wall, "peak_rss_mib": rss, "cells": meta["cells"],
            "features": len(meta["features"]), "seconds": meta["seconds"],
            "dem_gib": dem.stat().st_size / 2**30, "craters": meta["craters"]["rows"]}


def sites_markdown(rows: list[dict], machine: str) -> str:
    lines = ["## Sites: DEM → 1 km cell features over 80–90°S (`selenite bench sites`)", "",
             f"Machine: {machine}. Each row is one `selenite sites features --dem DEM --craters CATALOGUE "
             "--cell-m 1000` process on a synthetic south pole (608 km square in polar stereographic: relief, "
             "craters from 5 px or 200 m, small-scale roughness; float32 GeoTIFF, ZSTD) and its crater catalogue: "
             "every DEM and crater feature of every cell poleward of 80°S, the DEM streamed block by block through "
             "dask (2 threads); wall time includes start-up, reading the catalogue and writing the table; peak RSS "
             "of the process. The light features come from rasters at their own (coarser) resolution and are not "
             "part of this timing.", "",
             "| DEM px | pixel m | DEM on disk GiB | craters | cells | features | wall s | features s | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    target = None
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']:,}² | | | | | | failed: {r['error']} | | |")
            continue
        lines.append(f"| {r['size']:,}² | {r['pixel_m']:.0f} | {r['dem_gib']:.2f} | {r['craters']:,} | "
                     f"{r['cells']:,} | "
                     f"{r['features']} | {r['wall_s']:.1f} | {r['seconds']['dem']:.1f} | {r['peak_rss_mib']:.0f} |")
        if r["size"] == 30400:
            target = r
    if target:
        ok = target["wall_s"] <= 180 and target["peak_rss_mib"] <= 2048
        lines += ["", f"Target (30,400² px at 20 m → 1 km features in ≤ 3 min with peak RSS ≤ 2 GB on 2 cores): "
                      f"{'met' if ok else 'not met'} ({target['wall_s']:.0f} s, {target['peak_rss_mib']:.0f} MiB)."]
    return "\n".join(lines)


def run_hazard_case(work: Path, size: int = 7600, n_patches: int = 300, patch_px: int = 300,
                    patch_pixel_m: float = 4.0) -> dict:
    """The non-circular label measured: lander-scale patches (1.2 km at 4 m) of the synthetic south pole label
    ``n_patches`` random 1 km cells by Monte-Carlo touchdowns; the scorer sees only the cell features of the
    ``size``² DEM. Returns the run's evaluation (spatial CV, calibration, random CV, baselines)."""
    import numpy as np

    from selenite.sites.grid import region_grid
    from selenite.synth.polar import PolarDEM, PolarSpec, write_patch

    dem = polar_case_dem(work, size)
    pixel = EXTENT_M / size
    patches = work / f"patches_{size}"
    if not patches.exists() or len(list(patches.glob("*.tif"))) < n_patches:
        patches.mkdir(exist_ok=True)
        world = PolarDEM(PolarSpec(size_px=size, pixel_m=pixel, seed=11, d_min_m=max(200.0, 5 * pixel)))
        grid = region_grid(1000.0, -80.0)
        cells = np.argwhere(grid.in_region())
        rng = np.random.default_rng(5)
        margin = (patch_px * patch_pixel_m - 1000.0) / 2
        for i, (r, c) in enumerate(cells[rng.choice(len(cells), n_patches, replace=False)]):
            write_patch(patches / f"p{i:03d}.tif", world, grid.x0 + c * 1000.0 - margin,
                        grid.y0 - r * 1000.0 + margin, patch_px, patch_pixel_m)
    out = work / f"hazard_run_{size}"
    args = [sys.executable, "-m", "selenite", "sites", "rank", "--dem", str(dem), "--craters",
            str(dem.with_name(dem.stem + "_craters.csv")), "--hazard-dem", str(patches), "--label", "hazard",
            "--preset", "quick", "--out", str(out), "--force"]
    code, wall, rss, tail = _run_child(args)
    if code != 0:
        return {"error": tail}
    ev = json.loads((out / "evaluation.json").read_text())
    return {"size": size, "patches": n_patches, "patch_m": patch_px * patch_pixel_m, "patch_pixel_m": patch_pixel_m,
            "wall_s": wall, "peak_rss_mib": rss, "evaluation": ev}


def hazard_markdown(r: dict) -> str:
    if "error" in r:
        return f"Hazard-label case: failed ({r['error']})."
    ev = r["evaluation"]

    def row(name, m):
        return (f"| {name} | {m.get('auc', float('nan')):.3f} | {m.get('average_precision', float('nan')):.3f} | "
                f"{m.get('brier', float('nan')):.3f} | {m.get('ece', float('nan')):.3f} |")

    lines = ["### The non-circular label: lander-scale hazard", "",
             f"{r['patches']} random 1 km cells of the {r['size']:,}² synthetic south pole, each covered by a "
             f"{r['patch_m']:.0f} m patch of the same world at {r['patch_pixel_m']:g} m (its relief and craters, "
             "plus the small craters and roughness the coarse DEM lacks), labelled safe when at most 10 % of 64 "
             "Monte-Carlo touchdowns fail (4 legs on 4 m, 8° tilt, 0.5 m clearance, 50 m dispersion): "
             f"{ev['positives']} safe of {ev['labelled_cells']}. The scorer sees only the cell features of the coarse "
             f"DEM (`--preset quick`; whole run {r['wall_s']:.0f} s, {r['peak_rss_mib']:.0f} MiB).", "",
             "| scores | AUC | average precision | Brier | ECE |", "|---|---|---|---|---|",
             row("XGBoost, spatial block CV (20 km blocks, 5 folds)", ev["spatial_cv"]),
             row("the same, calibrated (cross-fitted isotonic)", ev["spatial_cv_calibrated"]),
             row("XGBoost, random CV (leaky)", ev["random_cv"])]
    lines += [row(f"baseline: {k}", v) for k, v in ev["baselines"].items()]
    return "\n".join(lines)
