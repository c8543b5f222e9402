"""``selenite bench terrain``: horizons + a year of Sun/Earth visibility on synthetic polar DEMs, timed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from affine import Affine

from selenite.bench.locate import _run_child
from selenite.geo.crs import as_crs, lonlat_to_map
from selenite.geo.raster import write_cog
from selenite.synth.terrain import cratered_terrain

PIXEL_M = 5.0


def polar_dem(path: Path, n: int, seed: int = 7, lon: float = 45.0, lat: float = -89.2) -> Path:
    """A cratered synthetic DEM of n × n pixels of 5 m, placed near the south pole (south polar stereographic),
    with a 400 m hill-and-basin swell so that horizons reach a few degrees."""
    import numpy as np

    t = cratered_terrain((n, n), PIXEL_M, age_ga=3.8, seed=seed, rms_slope_deg=4.0)
    r, c = np.mgrid[0:n, 0:n] / n
    z = t.dem + 400.0 * np.sin(2 * np.pi * (c + 0.3)) * np.cos(2 * np.pi * (r - 0.1))
    crs = as_crs("IAU_2015:30135")
    x0, y0 = lonlat_to_map(crs, lon, lat)
    write_cog(path, z.astype("float32"), crs=crs, nodata=-32768.0,
              transform=Affine(PIXEL_M, 0, x0 - n * PIXEL_M / 2, 0, -PIXEL_M, y0 + n * PIXEL_M / 2))
    return path


def wavy_dem(path: Path, n: int, lon: float = 45.0, lat: float = -87.0) -> Path:
    """A large smooth DEM (sum of sines, written in row blocks) for the streaming benchmark of the attributes."""
    import numpy as np
    import rasterio

    crs = as_crs("IAU_2015:30135")
    x0, y0 = lonlat_to_map(crs, lon, lat)
    profile = dict(driver="GTiff", width=n, height=n, count=1, dtype="float32", tiled=True, blockxsize=512,
                   blockysize=512, compress="DEFLATE", crs=rasterio.crs.CRS.from_wkt(crs.to_wkt()), nodata=-32768.0,
                   transform=Affine(PIXEL_M, 0, x0 - n * PIXEL_M / 2, 0, -PIXEL_M, y0 + n * PIXEL_M / 2),
                   BIGTIFF="IF_SAFER")
    cols = np.arange(n) * PIXEL_M
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, n, 512):
            rows = (np.arange(r0, min(r0 + 512, n)) * PIXEL_M)[:, None]
            z = (300 * np.sin(cols / 3000.0) * np.cos(rows / 4100.0) + 20 * np.sin(cols / 170.0 + rows / 230.0))
            dst.write(z.astype("float32"), 1, window=rasterio.windows.Window(0, r0, n, z.shape[0]))
    return path


def run_attributes_case(work: Path, n: int) -> dict:
    dem = work / f"wavy_{n}.tif"
    if not dem.exists():
        wavy_dem(dem, n)
    out = work / f"attr_{n}"
    args = [sys.executable, "-m", "selenite", "terrain", "attributes", "--dem", str(dem), "--out", str(out),
            "--force"]
    code, wall, rss, tail = _run_child(args)
    return {"size": n, "wall_s": wall, "peak_rss_mib": rss, "dem_mib": n * n * 4 / 2**20,
            **({"error": tail} if code else {})}


def run_terrain_case(work: Path, n: int, azimuths: int) -> dict:
    dem = work / f"dem_{n}.tif"
    if not dem.exists():
        polar_dem(dem, n)
    out = work / f"vis_{n}_{azimuths}"
    args = [sys.executable, "-m", "selenite", "terrain", "visibility", "--dem", str(dem), "--preset", "year",
            "--azimuths", str(azimuths), "--out", str(out), "--force"]
    code, wall, rss, tail = _run_child(args)
    if code != 0:
        return {"size": n, "azimuths": azimuths, "error": tail, "wall_s": wall}
    meta = json.loads((out / "visibility.json").read_text())
    return {"size": n, "azimuths": azimuths, "wall_s": wall, "peak_rss_mib": rss,
            "instants": meta["period"]["instants"],
            **{f"{k}_s": v for k, v in meta["seconds"].items()},
            "psr_pct": 100 * meta["psr_fraction"], "sun_pct": meta["sun_visibility_mean_pct"]}


def attributes_markdown(r: dict) -> str:
    if "error" in r:
        return f"Attributes of a {r['size']}² DEM: failed ({r['error']})."
    return (f"**Attributes streamed** (`selenite terrain attributes`, chunks of 1024² with halo streamed row by "
            f"row, six COGs): a {r['size']:,} × {r['size']:,} px float32 DEM ({r['dem_mib']:,.0f} MiB) took "
            f"{r['wall_s']:.0f} s with a peak RSS of {r['peak_rss_mib']:,.0f} MiB.")


def _computed(r: dict) -> float:
    return r["horizons_s"] + r["ephemeris_s"] + r["visibility_s"]


def terrain_markdown(rows: list[dict], machine: str, repeats: list[dict] | None = None) -> str:
    """The table, and the target verdict over every run of the 2048² × 360 case (``rows``' one and ``repeats``)."""
    lines = ["## Terrain: horizons and a year of Sun/Earth visibility (`selenite bench terrain`)", "",
             f"Machine: {machine}. Each row is one `selenite terrain visibility --preset year` process (2026, 6 h "
             "steps: 1460 instants) on a synthetic cratered DEM of 5 m pixels near 89.2°S; wall time includes "
             "start-up, writing every product (the int16 `horizon.tif`, one band per azimuth, too), checksums and "
             "the report; peak RSS of the process. Horizons grow with pixels × azimuths, visibility with pixels × "
             "instants.",
             "", "| DEM | azimuths | wall s | horizons s | ephemeris s | visibility s | computed s | write s "
             "| peak RSS MiB | PSR % | mean Sun % |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    target = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']}² | {r['azimuths']} | failed: {r['error']} | | | | | | | | |")
            continue
        if r["size"] == 2048 and r["azimuths"] == 360:
            target.append(r)
        lines.append(f"| {r['size']}² | {r['azimuths']} | {r['wall_s']:.1f} | {r['horizons_s']:.1f} | "
                     f"{r['ephemeris_s']:.1f} | {r['visibility_s']:.1f} | {_computed(r):.1f} | {r['write_s']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} | {r['psr_pct']:.2f} | {r['sun_pct']:.1f} |")
    failed = [r for r in repeats or [] if "error" in r]
    target += [r for r in repeats or [] if "error" not in r]
    if target:
        comp = [_computed(r) for r in target]
        walls = [r["wall_s"] for r in target]
        verdict = "met in every run" if max(comp) <= 60 and not failed else "not met in every run"
        lines += ["", f"Target (2048², 360 azimuths, horizons + a year of Sun/Earth visibility ≤ 60 s on 2 cores): "
                      f"{verdict} for the computation: {len(comp)} runs took "
                      f"{', '.join(f'{c:.1f}' for c in comp)} s (horizons and visibility; the table's row is the "
                      f"first). The whole command, also writing `horizon.tif` (3 GB of int16 before compression) "
                      f"and every product, took {', '.join(f'{w:.1f}' for w in walls)} s."
                      + (f" {len(failed)} repeat(s) failed." if failed else "")]
    return "\n".join(lines)
