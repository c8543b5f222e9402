"""``selenite bench locate-drape``: descents from the second, independent generator (:mod:`selenite.synth.drape`).

Each case drapes a real LROC NAC crop (ones no other locate benchmark uses) on smooth relief and ray-casts a
descent through its own lens, with its own photometric gap between the frames and the map; one case's map is a
plain image without georeference. Two cases fly over real relief (8 km crops of the 10 m Connecting Ridge DEM, the
NAC crop a faint albedo) under a low Sun: one is given the DEM as its map (another modality: the run renders it
and finds the Sun's azimuth), one an image of the same ground under a Sun 90° away. Every case's frames are
also run against the next case's map — a mismatched pair that must end with exit 2, never a fix. The runs are given
the start height (the altitude search without it is covered by `bench locate`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from selenite.bench.locate import locate_child
from selenite.geo.camera import FisheyeCamera, PinholeCamera

NAC_DIR = Path("images/nac_change4_crops/train")


@dataclass(frozen=True)
class DrapeCase:
    name: str
    nac: str
    what: str
    lens: str = "fisheye"                 # fisheye | pinhole
    camera_file: str = "full"             # full | fov (self-calibrated)
    k: tuple[float, float] = (0.0, 0.0)   # the true lens's k1, k2 (fish-eye) or k1, k2 (pinhole)
    focal_scale: float = 1.0              # true focal length / nominal of the field of view
    relief_m: float = 4.0
    plan: dict = field(default_factory=dict)
    photometry: dict = field(default_factory=dict)
    jpeg: int | None = None
    dom_factor: int = 1
    map_kind: str = "image"               # image | hillshade | dem | other_sun
    plain_map: bool = False
    sun: tuple[float, float] = (135.0, 12.0)   # the frames' Sun (azimuth, elevation), map_kind dem
    sun_given: bool = True                # dem: the run is told the Sun (else it searches the azimuth)
    dem_window: tuple[int, int] = (800, 800)   # dem, other_sun: the 800² crop of the ridge DEM (col, row)


CASES = [
    DrapeCase("fov-fisheye", "M1266003170", "fish-eye known only as 90° (self-calibrated), gamma 1.2",
              camera_file="fov", k=(0.03, -0.01), focal_scale=1.03, photometry={"gamma": 1.2, "noise": 1.5}),
    DrapeCase("pinhole-jpeg", "M1275410097", "pinhole 60°, JPEG q70, gamma 0.8, heading turn 90°",
              lens="pinhole", plan={"heading_turn_deg": 90.0}, jpeg=70, photometry={"gamma": 0.8, "noise": 1.0}),
    DrapeCase("fisheye-blur", "M161142858", "known fish-eye (k1 -0.04), blur 1 px, swing 10°",
              k=(-0.04, 0.01), plan={"swing_deg": 10.0}, photometry={"blur_px": 1.0, "gain": 0.8, "noise": 2.0}),
    DrapeCase("plain-map", "M161149639", "map a plain PNG (--dom-gsd), relief 8 m, drift 60 m",
              relief_m=8.0, plan={"drift_m": 60.0}, plain_map=True, photometry={"gamma": 1.1, "noise": 1.5}),
    DrapeCase("coarse-map", "M180000082", "map decimated ×2 (1 m/px), start 220 m",
              dom_factor=2, plan={"start_m": 220.0, "end_m": 30.0}, photometry={"gamma": 0.9, "noise": 1.5}),
    DrapeCase("dem-map", "M180007222", "cross-modal: the map is a DEM (real 10 m Connecting Ridge relief), Sun "
              "not given; frames see it under a 12° Sun with albedo, from 3 km", map_kind="dem", sun_given=False,
              plan={"start_m": 3000.0, "end_m": 300.0, "drift_m": 400.0, "vertical_from_m": 600.0},
              photometry={"gamma": 0.9, "noise": 1.5}),
    DrapeCase("other-sun-map", "M180007222", "another Sun: the map an image of the same relief lit from 90° away "
              "(25° high), no DEM; frames as dem-map", map_kind="other_sun", dem_window=(0, 0),
              plan={"start_m": 3000.0, "end_m": 300.0, "drift_m": 400.0, "vertical_from_m": 600.0, "seed": 3},
              photometry={"gamma": 1.1, "noise": 1.5}),
]
RIDGE_DEM = Path("dem/pgda_site01_connecting_ridge_10m.tif")


def build_case(case: DrapeCase, data: Path, out: Path, seed: int = 0) -> dict:
    from selenite.synth.drape import DrapeDescent, DrapedWorld, hillshade, sunlit_relief, write_case

    img = cv2.imread(str(data / NAC_DIR / f"{case.nac}_mosaic_train_small.png"), cv2.IMREAD_GRAYSCALE)
    img = img.astype(np.float32) / 255
    rng = np.random.default_rng(seed + 11)
    z = ndimage.gaussian_filter(rng.normal(0, 1, img.shape), 30)
    z = z / z.std() * case.relief_m
    gsd = 0.5
    if case.map_kind in ("dem", "other_sun"):
        # real relief: an 8 km crop of the Connecting Ridge DEM (10 m); the albedo a faint NAC pattern
        import rasterio

        with rasterio.open(data / RIDGE_DEM) as ds:
            z = ds.read(1, window=rasterio.windows.Window(*case.dem_window, 800, 800)).astype(np.float64)
        z -= z[400, 400]
        gsd = 10.0
        shade = sunlit_relief(z, gsd, *case.sun)
        albedo = 0.85 + 0.3 * (cv2.resize(img, z.shape[::-1], interpolation=cv2.INTER_AREA) - 0.5)
        seen = DrapedWorld(shade * albedo, gsd, z, detail=0.06, detail_seed=seed)
        dom_image = z if case.map_kind == "dem" else sunlit_relief(z, gsd, case.sun[0] - 90.0, 25.0) * albedo
    elif case.map_kind == "hillshade":
        # the frames see albedo × shading under one Sun; the map is shading alone under another
        seen = DrapedWorld(img * (0.35 + 0.65 * hillshade(z, gsd, 200.0, 25.0)), gsd, z)
        dom_image = hillshade(z, gsd, 290.0, 30.0)
    else:
        seen, dom_image = DrapedWorld(img, gsd, z, detail=0.06, detail_seed=seed), img
    if case.lens == "fisheye":
        f0 = FisheyeCamera.from_fov(384, 384, 90).fx * case.focal_scale
        lens = FisheyeCamera(384, 384, f0, f0, 191.5, 191.5, k1=case.k[0], k2=case.k[1])
    else:
        p = PinholeCamera.from_fov(384, 384, 60)
        lens = PinholeCamera(384, 384, p.fx * case.focal_scale, p.fy * case.focal_scale, p.cx, p.cy,
                             k1=case.k[0], k2=case.k[1])
    plan = DrapeDescent(**{"start_m": 140.0, "end_m": 20.0, "frames": 18, "drift_m": 40.0, "swing_deg": 6.0,
                           "swing_period": 7.0, "seed": seed, **case.plan})
    truth = write_case(out, seen, lens, plan, dom_image=dom_image, dom_factor=case.dom_factor,
                       frame_photometry=case.photometry, jpeg_quality=case.jpeg,
                       georeferenced=not case.plain_map, map_is_dem=case.map_kind == "dem")
    if case.camera_file == "fov":
        (out / "camera.json").write_text(json.dumps({"model": lens.model, "fov_deg": 90 if case.lens == "fisheye"
                                                     else 60}) + "\n")
    return {"truth": truth, "lens": lens.to_dict(), "start_m": plan.start_m,
            "dom": out / ("dom.png" if case.plain_map else "dem.tif" if case.map_kind == "dem" else "dom.tif"),
            "px_m": gsd * case.dom_factor}


def sun_row(landing: dict, case: DrapeCase) -> dict:
    """The Sun a DEM-map run used against the frames' true Sun, and every trial azimuth's map support."""
    m = landing.get("map_from_dem")
    if not m:
        return {}
    return {"sun": {"true_azimuth_deg": case.sun[0], "azimuth_deg": m["sun_azimuth_deg"],
                    "estimated": m["azimuth_estimated"],
                    "support": {f"{t['azimuth_deg']:.0f}": t["support"] for t in m["candidates"]}}}


def _map_flag(case: DrapeCase) -> str:
    return "--dem" if case.map_kind == "dem" else "--dom"


def _map_args(case: DrapeCase, built: dict) -> list[str]:
    """The options that describe a case's map to ``locate run``."""
    if case.plain_map:
        return ["--dom-gsd", f"{built['px_m']}"]
    if case.map_kind == "dem" and case.sun_given:
        return ["--sun-az", f"{case.sun[0]}", "--sun-el", f"{case.sun[1]}"]
    return []


def run_drape_bench(data: str | Path, work: str | Path, preset: str = "default", names: list[str] | None = None,
                    progress=None) -> list[dict]:
    say = progress or (lambda msg: None)
    data, work = Path(data), Path(work)
    cases = [c for c in CASES if not names or c.name in names]
    built = {}
    for k, c in enumerate(cases):
        say(f"building {c.name}")
        built[c.name] = build_case(c, data, work / c.name / "case", seed=k)
    rows = []
    for k, c in enumerate(cases):
        b = built[c.name]
        case_dir = work / c.name / "case"
        extra = ["--start-altitude", f"{b['start_m']:.3f}", *_map_args(c, b)]
        say(f"locating {c.name}")
        run = work / c.name / "run"
        code, wall, rss, err = locate_child(case_dir / "frames", b["dom"], case_dir / "camera.json", run, preset,
                                            extra, _map_flag(c))
        row = {"case": c.name, "what": c.what, "exit": code, "wall_s": wall, "peak_mib": rss, "error": err}
        if code == 0:
            land = json.loads((run / "landing.json").read_text())
            t = b["truth"]["landing"]
            row.update({"level": land["level"], "sigma_m": land["sigma_m"],
                        "error_px": float(np.hypot(land["dom_col"] - t["dom_col"], land["dom_row"] - t["dom_row"])),
                        "px_m": land["dom_pixel_m"]})
            row["error_m"] = row["error_px"] * row["px_m"]
            row.update(sun_row(land, c))
            cal = land.get("camera")
            if cal and cal.get("self_calibrated"):
                got, true = cal["camera"], b["lens"]
                row["focal_error"] = got["fx"] / true["fx"] - 1
        # the mismatched pair: these frames against the next case's map
        other = cases[(k + 1) % len(cases)]
        if other.name != c.name:
            ob = built[other.name]
            mextra = ["--start-altitude", f"{b['start_m']:.3f}", *_map_args(other, ob)]
            say(f"mismatched: {c.name} frames on the {other.name} map")
            mcode, mwall, _, merr = locate_child(case_dir / "frames", ob["dom"], case_dir / "camera.json",
                                                 work / c.name / "mismatched", preset, mextra, _map_flag(other))
            row["mismatched"] = {"map": other.name, "exit": mcode, "false_fix": mcode == 0, "wall_s": mwall,
                                 "message": merr}
        rows.append(row)
        (work / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def drape_markdown(rows: list[dict], machine: str) -> str:
    ok = [r for r in rows if r["exit"] == 0]
    errs = [r["error_px"] for r in ok]
    mism = [r["mismatched"] for r in rows if "mismatched" in r]
    lines = ["## Descents from the second generator (`selenite bench locate-drape`)", "",
             f"Machine: {machine}. Cases 1–5: a real LROC NAC crop (0.5 m/px, 400 m square; crops no other locate "
             "benchmark uses) draped on smooth random relief, 18 frames of 384² from 140 m to 20 m (a drift ending "
             "in a vertical terminal descent, a turning heading, a pendulum swing) ray-cast through the case's lens by "
             "`selenite.synth.drape`, which shares no code with `selenite synth`; the worlds carry texture finer than "
             "the map (σ 6 %). Cases 6–7: an 8 km crop of the real 10 m Connecting Ridge DEM lit by a 12° Sun "
             "(Lommel–Seeliger, cast shadows, a faint NAC albedo), 18 frames from 3 km to 300 m. Runs given the start "
             "height. Mismatched: the same frames against the next case's map.", "",
             "| case | what | level | error px (m) | σ (m) | focal error | s | MiB | mismatched pair |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r.get("mismatched")
        mm = "—" if m is None else ("**false fix**" if m["false_fix"] else f"refused (exit {m['exit']})")
        if r["exit"] == 0:
            fe = f"{r['focal_error']:+.2%}" if "focal_error" in r else "—"
            sig = "unknown" if r["sigma_m"] is None else f"{r['sigma_m']:.2f}"
            lines.append(f"| {r['case']} | {r['what']} | {r['level']} | {r['error_px']:.2f} ({r['error_m']:.2f}) | "
                         f"{sig} | {fe} | {r['wall_s']:.0f} | {r['peak_mib']:.0f} | {mm} |")
        else:
            lines.append(f"| {r['case']} | {r['what']} | **not located** (exit {r['exit']}: {r['error'][:90]}) | — | "
                         f"— | — | {r['wall_s']:.0f} | {r['peak_mib']:.0f} | {mm} |")
    lines.append("")
    for r in rows:
        if "sun" in r:
            sup = ", ".join(f"{a}°: {v if v is not None else '—'}" for a, v in r["sun"]["support"].items())
            lines.append(f"`{r['case']}`: Sun azimuth {'found' if r['sun']['estimated'] else 'given'} "
                         f"{r['sun']['azimuth_deg']:.0f}° (true {r['sun']['true_azimuth_deg']:.0f}°); map support "
                         f"by trial azimuth {sup}.")
            lines.append("")
    if errs:
        lines.append(f"Located {len(ok)} of {len(rows)}; median error {np.median(errs):.2f} DOM px, max "
                     f"{max(errs):.2f} px (targets: all, ≤ 0.5, ≤ 2). Errors within the stated 1-σ: "
                     f"{sum(1 for r in ok if r['sigma_m'] and r['error_m'] <= r['sigma_m'])} of {len(ok)}. "
                     f"Mismatched pairs: {sum(1 for m in mism if m['false_fix'])} false fixes in {len(mism)}.")
    return "\n".join(lines) + "\n"
