"""The Chang'E-6-size localisation case, generated on the fly.

Shu et al. (2026) located CE-6 with 630 descent frames of 2352 × 1728 px on a DOM of 10,530 × 54,462 px at
1.12 m/px. This builds a case of exactly those sizes: a synthetic world (4096² DEM at 1.12 m) with a dense descent
of that camera, whose orbital map is embedded at a random place in a 10,530 × 54,462 px DOM; the rest of the DOM
is a mosaic of orbital maps of other synthetic worlds (same terrain statistics, other seeds, each block turned or
flipped), so the search must tell the landing area apart from look-alike terrain over 12 × 61 km.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from selenite.bench.locate import _pm, locate_child, score_run
from selenite.config import resolve_config
from selenite.runs import Run, canonical_json
from selenite.synth.world import WorldConfig, build_world, confs

DOM_COLS, DOM_ROWS = 10_530, 54_462
PIXEL_M = 1.12


def scale_world_config(seed: int = 7) -> WorldConfig:
    """The descent world: CE-6 camera (2352 × 1728, 60° field), dense frames with a smoothly turning attitude
    (jitter correlated over 10 frames), rendered at half size."""
    over = {"seed": seed, "size_px": 4096, "pixel_m": PIXEL_M, "orbital_gsd_m": PIXEL_M,
            "descent": {"footprint_step": 0.02, "altitude_ratio_step": 0.99, "attitude_step_deg": 0.5,
                        "jitter_frames": 10.0, "hover_frames": 13, "render_scale": 0.5}}
    return resolve_config(WorldConfig, confs, stage="synth", preset="change6", overrides=over)


def filler_config(seed: int, size_px: int = 2048) -> WorldConfig:
    over = {"seed": seed, "size_px": size_px, "pixel_m": PIXEL_M, "orbital_gsd_m": PIXEL_M,
            "descent": {"enabled": False}}
    return resolve_config(WorldConfig, confs, stage="synth", preset="change6", overrides=over)


def _dihedral(a: np.ndarray, k: int) -> np.ndarray:
    a = np.rot90(a, k % 4)
    return a[:, ::-1] if k >= 4 else a


def build_scale_case(work: str | Path, fillers: int = 6, seed: int = 7, progress=None) -> dict:
    """Build (or resume) the case under ``work``; returns paths: frames, dom, camera, truth, start_altitude."""
    say = progress or (lambda msg: None)
    work = Path(work)
    say("descent world")
    cfg = scale_world_config(seed)
    world = build_world(cfg, work / "world")
    blocks = []
    for k in range(fillers):
        say(f"filler world {k + 1}/{fillers}")
        fw = build_world(filler_config(1000 + k), work / f"filler{k}")
        with rasterio.open(fw / "orbital_map.tif") as ds:
            blocks.append(ds.read(1))
    rng = np.random.default_rng([seed, 99])
    with rasterio.open(world / "orbital_map.tif") as ds:
        site = ds.read(1)
        crs, wt = ds.crs, ds.transform
    n = site.shape[0]
    row0 = int(rng.integers(DOM_ROWS // 4, 3 * DOM_ROWS // 4))
    col0 = int(rng.integers(0, DOM_COLS - n))
    transform = Affine(wt.a, 0.0, wt.c - col0 * wt.a, 0.0, wt.e, wt.f - row0 * wt.e)
    b = blocks[0].shape[0]
    layout = rng.integers(0, len(blocks) * 8, size=(DOM_ROWS // b + 1, DOM_COLS // b + 1))

    truth = json.loads((world / "descent" / "truth.json").read_text())
    truth["landing"]["dom_col"] += col0
    truth["landing"]["dom_row"] += row0
    truth["embedding"] = {"dom_cols": DOM_COLS, "dom_rows": DOM_ROWS, "site_col0": col0, "site_row0": row0}

    def make_dom(tmp):
        profile = {"driver": "GTiff", "width": DOM_COLS, "height": DOM_ROWS, "count": 1, "dtype": "uint8",
                   "crs": crs, "transform": transform, "tiled": True, "blockxsize": 512, "blockysize": 512,
                   "BIGTIFF": "IF_SAFER"}
        with rasterio.open(tmp["dom.tif"], "w", **profile) as dst:
            for bi in range(layout.shape[0]):
                say(f"DOM strip {bi + 1}/{layout.shape[0]}")
                r0, r1 = bi * b, min((bi + 1) * b, DOM_ROWS)
                strip = np.empty((r1 - r0, DOM_COLS), np.uint8)
                for bj in range(layout.shape[1]):
                    c0, c1 = bj * b, min((bj + 1) * b, DOM_COLS)
                    code = int(layout[bi, bj])
                    strip[:, c0:c1] = _dihedral(blocks[code // 8], code % 8)[:r1 - r0, :c1 - c0]
                # the landing world's own map where it falls in this strip
                s0, s1 = max(r0, row0), min(r1, row0 + n)
                if s1 > s0:
                    strip[s0 - r0:s1 - r0, col0:col0 + n] = site[s0 - row0:s1 - row0]
                dst.write(strip, 1, window=rasterio.windows.Window(0, r0, DOM_COLS, r1 - r0))
        Path(tmp["truth.json"]).write_text(canonical_json(truth) + "\n")

    params = {"seed": seed, "fillers": fillers, "dom": [DOM_COLS, DOM_ROWS], "world": cfg.model_dump(mode="json")}
    with Run(work / "case", command="bench locate-scale", params=params) as run:
        run.step("dom", ["dom.tif", "truth.json"], make_dom, params=params)
    d = world / "descent"
    return {"frames": d / "frames", "camera": d / "camera.json", "dom": work / "case" / "dom.tif",
            "truth": work / "case" / "truth.json", "start_altitude": truth["frames"][0]["altitude_m"],
            "frame_count": len(truth["frames"])}


def run_scale_case(work: str | Path, locate_preset: str = "default", progress=None) -> dict:
    """Build (or resume) the case, then time ``selenite locate run`` on it in a child process and score it."""
    import time

    work = Path(work)
    t0 = time.perf_counter()
    case = build_scale_case(work, progress=progress)
    build_s = time.perf_counter() - t0
    run_dir = work / f"locate-{locate_preset}"
    code, wall, rss, err = locate_child(case["frames"], case["dom"], case["camera"], run_dir, locate_preset,
                                        ["--start-altitude", f"{case['start_altitude']:.3f}"])
    row = {"frames": case["frame_count"], "dom": f"{DOM_COLS} × {DOM_ROWS}", "build_s": build_s, "wall_s": wall,
           "peak_rss_mib": rss, "located": code == 0, "locate_preset": locate_preset}
    if code != 0:
        row["error"] = err
        return row
    row.update(score_run(run_dir, case["truth"]))
    return row


def scale_markdown(row: dict, machine: str) -> str:
    steps = ["frames", "features", "sfm", "geometry", "search", "coarse", "fine", "outputs"]
    head = ("## Chang'E-6-size case (`selenite bench locate-scale`)\n\n"
            f"Machine: {machine}. {row['frames']} frames of 2352 × 1728 px (rendered at half size and resampled up), "
            f"DOM {row['dom']} px at 1.12 m/px (the landing world's map embedded among maps of other synthetic "
            f"worlds), locate preset `{row['locate_preset']}`, in its own process. Target: ≤ 600 s on 2 cores.\n\n")
    if not row["located"]:
        return head + (f"**Not located**: {row['error']} (after {row['wall_s']:.0f} s, "
                       f"peak {row['peak_rss_mib']:.0f} MiB).")
    t = row["timings_s"]
    return head + ("| wall s | peak MiB | frames used | coarse px (m) | fine px (m) | σ (m) | "
                   + " | ".join(steps) + " |\n|" + "---|" * (6 + len(steps)) + "\n"
                   f"| {row['wall_s']:.0f} | {row['peak_rss_mib']:.0f} | {row['frames_used']} | "
                   f"{_pm(row['coarse_px'], row['coarse_m'])} | {row['fine_px']:.2f} ({row['fine_m']:.2f}) | "
                   f"{row['sigma_m']:.2f} | " + " | ".join(f"{t.get(s, float('nan')):.1f}" for s in steps) + " |")
