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
