"""``selenite bench locate-real``: a real descent, Mars 2020 Perseverance's LCAM sequence, located on its map.

The product runs exactly as a user would run it: the frames, the plain (unreferenced) map and a camera file that
holds only ``{"model": "fisheye", "fov_deg": 90}``. The map's pixel of the landing point is not published, so the
checks are the published heights above the touchdown point (frame 48 ≈ 2.0 km, frame 74 ≈ 40 m; Johnson et al.
2022), their ratio (free of any scale), the divert, and the agreement of the fixes. Two baselines run on the same
inputs: the published method (the homography chain from the lowest clear frame to a map-registered keyframe; the
run's coarse fix), and plain SIFT + RANSAC from every frame straight to the map.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np

from selenite.bench.locate import locate_child

PUBLISHED_HEIGHTS_M = {48: 2000.0, 74: 40.0}      # frame number (1-based) → height above touchdown
MAP_GSD_M = 12.0                                   # the data README's "about 12 m/px (unverified)"
CAMERA = {"model": "fisheye", "fov_deg": 90}


def sift_to_map(frames: list[Path], map_path: Path, min_inliers: int = 15) -> list[dict]:
    """Plain SIFT + RANSAC homography from each frame to the map; the frame centre's map pixel when registered."""
    sift = cv2.SIFT_create(nfeatures=8000)
    m = cv2.imread(str(map_path), cv2.IMREAD_GRAYSCALE)
    km, dm = sift.detectAndCompute(m, None)
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    out = []
    for k, p in enumerate(frames):
        f = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        kf, df = sift.detectAndCompute(f, None)
        row = {"frame": k + 1, "inliers": 0, "map_col": None, "map_row": None}
        if df is not None and len(kf) >= 8:
            pairs = matcher.knnMatch(df, dm, k=2)
            good = [a for a, b in (q for q in pairs if len(q) == 2) if a.distance < 0.8 * b.distance]
            if len(good) >= 8:
                src = np.float32([kf[g.queryIdx].pt for g in good])
                dst = np.float32([km[g.trainIdx].pt for g in good])
                H, mask = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
                n_in = int(mask.sum()) if mask is not None else 0
                row["inliers"] = n_in
                if H is not None and n_in >= min_inliers:
                    c = H @ np.array([(f.shape[1] - 1) / 2, (f.shape[0] - 1) / 2, 1.0])
                    row["map_col"], row["map_row"] = float(c[0] / c[2]), float(c[1] / c[2])
        out.append(row)
    return out


def run_real(data: str | Path, work: str | Path, preset: str = "default") -> dict:
    """Run the product and both baselines on the LCAM sequence; returns the benchmark row."""
    d = Path(data) / "descent" / "mars2020_lvs"
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    cam = work / "lcam.json"
    cam.write_text(json.dumps(CAMERA) + "\n")
    run = work / "run"
    code, wall, rss, err = locate_child(d / "frames", d / "jezero_map.jpg", cam, run, preset, [])
    row: dict = {"exit": code, "wall_s": wall, "peak_rss_gb": rss / 1024.0, "preset": preset}   # rss: MiB
    if code != 0:
        row["error"] = err
    else:
        land = json.loads((run / "landing.json").read_text())
        row.update({k: land.get(k) for k in ("level", "dom_col", "dom_row", "sigma_m", "units", "frames_used",
                                             "frames_total", "frames_reconstructed", "frames_obscured",
                                             "frames_degraded", "limited_by", "divert", "phases", "lowest_frame")})
        row["coarse"] = land.get("coarse")
        row["coarse_error"] = land.get("coarse_error")
        row["camera"] = land.get("camera")
        with (run / "trajectory.csv").open() as fh:
            traj = {int(r["frame"]) + 1: float(r["z"]) for r in csv.DictReader(fh)}
        row["reconstructed_frames"] = sorted(traj)
        hts = {}
        for fno, pub in PUBLISHED_HEIGHTS_M.items():
            h = traj.get(fno)
            hts[fno] = {"published_m": pub, "height_px": h,
                        "height_m": None if h is None else h * MAP_GSD_M,
                        "ratio_error": None if h is None else h * MAP_GSD_M / pub - 1}
        row["heights"] = hts
        a, b = (hts[f]["height_px"] for f in sorted(PUBLISHED_HEIGHTS_M))
        pub_ratio = PUBLISHED_HEIGHTS_M[48] / PUBLISHED_HEIGHTS_M[74]
        row["height_ratio_48_74"] = None if a is None or b is None else {"found": a / b, "published": pub_ratio}
    t0 = time.perf_counter()
    frames = sorted((d / "frames").glob("*.jpg"))
    sift = sift_to_map(frames, d / "jezero_map.jpg")
    reg = [s for s in sift if s["map_col"] is not None]
    row["sift_baseline"] = {"frames_registered": len(reg), "frames": len(sift), "seconds": time.perf_counter() - t0,
                            "registered": [s["frame"] for s in reg],
                            "lowest": reg[-1] if reg else None}
    if reg and row.get("dom_col") is not None:
        low = reg[-1]
        row["sift_baseline"]["distance_to_fix_px"] = float(np.hypot(low["map_col"] - row["dom_col"],
                                                                    low["map_row"] - row["dom_row"]))
    if row.get("coarse") and row.get("dom_col") is not None:
        row["coarse_to_fix_px"] = float(np.hypot(row["coarse"]["dom_col"] - row["dom_col"],
                                                 row["coarse"]["dom_row"] - row["dom_row"]))
    (work / "row.json").write_text(json.dumps(row, indent=1) + "\n")
    return row


def _f(v, fmt=".1f", none="—"):
    return none if v is None else format(v, fmt)


def real_markdown(row: dict, machine: str) -> str:
    lines = ["## A real descent (`selenite bench locate-real`)", "",
             "Mars 2020 Perseverance LCAM (87 frames 800², 11 km → 0 m, a 90° fish-eye known only by its field of "
             "view; map: a 2048 × 1940 px CTX-derived mosaic without georeference). "
             "`selenite locate run --frames …/frames --dom …/jezero_map.jpg --camera lcam.json` with nothing else. "
             f"{machine}", ""]
    if row["exit"] != 0:
        lines.append(f"**Not located** (exit {row['exit']}): {row.get('error', '')}")
    else:
        lines += ["| measure | value |", "|---|---|",
                  f"| fix level | {row['level']} |",
                  f"| landing, map pixel | ({_f(row['dom_col'])}, {_f(row['dom_row'])}) |",
                  f"| σ | {_f(row['sigma_m'], '.1f', 'unknown')} {row['units']} |",
                  f"| frames reconstructed | {row['frames_reconstructed']} of {row['frames_total']} "
                  f"({row['reconstructed_frames'][0]}–{row['reconstructed_frames'][-1]}) |",
                  f"| frames obscured / degraded | {len(row['frames_obscured'])} / {len(row['frames_degraded'])} |",
                  f"| time, peak memory | {row['wall_s']:.0f} s, {row['peak_rss_gb']:.2f} GB |"]
        if row.get("limited_by"):
            lines.append(f"| limited by | {row['limited_by']} |")
        cam = (row.get("camera") or {}).get("camera")
        if cam:
            sg = row["camera"].get("sigma") or {}
            lines.append(f"| lens (self-calibrated) | fx {cam['fx']:.1f} ± {_f(sg.get('fx'), '.2f')} px, k1 "
                         f"{cam['k1']:.3f}, k2 {cam['k2']:.3f}; {row['camera']['reprojection_rms_px']:.2f} px rms |")
        for fno, h in row["heights"].items():
            lines.append(f"| height at frame {fno} (published {h['published_m']:.0f} m) | "
                         f"{_f(h['height_px'])} map px = {_f(h['height_m'], '.0f')} m at {MAP_GSD_M:.0f} m/px "
                         f"(ratio error {_f(h['ratio_error'], '+.1%')}) |")
        r = row.get("height_ratio_48_74")
        pub = PUBLISHED_HEIGHTS_M[48] / PUBLISHED_HEIGHTS_M[74]
        lines.append("| height ratio frame 48 / 74 (free of scale) | "
                     + (f"{r['found']:.1f}" if r else "— (frame 74 not reconstructed)") + f" (published {pub:.0f}) |")
        lf = row.get("lowest_frame")
        if lf:
            lines.append(f"| lowest reconstructed frame | {lf['frame'] + 1}, {lf['height']:.1f} {lf['units']} above "
                         f"the landing ground; {lf['frames_after_it']} frames after it not reconstructed |")
        dv = row.get("divert")
        lines.append("| divert | " + (f"{dv['distance'] * MAP_GSD_M:.0f} m at {MAP_GSD_M:.0f} m/px towards "
                                      f"{dv['azimuth_deg']:.0f}° (map up = 0°), frames {dv['from_frame'] + 1}–"
                                      f"{dv['to_frame'] + 1}" if dv else "not found") + " |")
        ph = row.get("phases") or []
        lines.append("| phases (frames, 1-based) | " + "; ".join(
            f"{p['name']} {p['first_frame'] + 1}–{p['last_frame'] + 1}" for p in ph) + " |")
        c = row.get("coarse")
        lines.append("| published method (homography chain) | " + (
            f"({c['dom_col']:.1f}, {c['dom_row']:.1f}), {row['coarse_to_fix_px']:.1f} px from the fix" if c
            else f"no fix: {row.get('coarse_error')}") + " |")
    s = row["sift_baseline"]
    low = s["lowest"]
    lines.append(f"| plain SIFT + RANSAC to the map | {s['frames_registered']} of {s['frames']} frames registered"
                 + (f"; lowest (frame {low['frame']}) centre at ({low['map_col']:.1f}, {low['map_row']:.1f})"
                    + (f", {s['distance_to_fix_px']:.1f} px from the fix" if 'distance_to_fix_px' in s else "")
                    if low else "") + f" ({s['seconds']:.0f} s) |")
    lines += ["", "Published figures: Maki et al. 2020 (LCAM), Johnson et al. 2022 (phases, heights). The map's "
              "scale (12 m/px) is the data README's unverified figure; the ratio of the two heights needs no scale."]
    return "\n".join(lines) + "\n"
