"""``selenite locate evaluate``: errors of a locate run against a truth file (a synthetic world's truth.json or
any JSON with the landing's lon/lat and, optionally, DOM pixel)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from selenite.errors import InputError
from selenite.geo.sphere import great_circle_distance_m
from selenite.runs import load_json_object


def evaluate_run(run_dir: str | Path, truth_path: str | Path) -> dict:
    run_dir = Path(run_dir)
    landing = load_json_object(run_dir / "landing.json", "landing.json of the run")
    truth = load_json_object(Path(truth_path), "truth file")
    t = truth.get("landing", truth)
    geo = all(k in t for k in ("lon", "lat")) and landing.get("lon") is not None
    if not geo and not all(k in t for k in ("dom_col", "dom_row")):
        raise InputError(f"truth file {truth_path} has no landing lon/lat or DOM pixel")
    px_m = landing.get("dom_pixel_m", float("nan"))
    out: dict = {"dom_pixel_m": px_m, "sigma_m": landing["sigma_m"], "level": landing.get("level", "fine")}
    for name, fix in (("fine", landing), ("coarse", landing["coarse"]),
                      ("before_bundle_adjustment", landing.get("before_bundle_adjustment")),
                      ("bundle_adjustment", landing.get("bundle_adjustment"))):
        if fix is None:
            continue
        if geo:
            err_m = float(great_circle_distance_m(fix["lon"], fix["lat"], t["lon"], t["lat"]))
        else:
            err_m = float(np.hypot(fix["dom_col"] - t["dom_col"], fix["dom_row"] - t["dom_row"]) * px_m)
        row = {"error_m": err_m}
        if "dom_col" in t:
            dc, dr = fix["dom_col"] - t["dom_col"], fix["dom_row"] - t["dom_row"]
            row.update({"error_px": float(np.hypot(dc, dr)), "d_col": float(dc), "d_row": float(dr)})
        out[name] = row
    out["within_1_sigma"] = (landing["sigma_m"] is not None and out["fine"]["error_m"] <= landing["sigma_m"])
    frames = truth.get("frames")
    traj = run_dir / "trajectory.csv"
    if frames and traj.is_file():
        with traj.open() as fh:
            rows = list(csv.DictReader(fh))
        by = {f["index"]: f for f in frames}
        dh, da = [], []
        for r in rows:
            f = by.get(int(r["frame"]))
            if f is None:
                continue
            dh.append(np.hypot(float(r["x"]) - f["x"], float(r["y"]) - f["y"]))
            da.append(float(r["altitude_m"]) - f["altitude_m"])
        if dh:
            out["trajectory"] = {"frames": len(dh), "median_horizontal_error_m": float(np.median(dh)),
                                 "max_horizontal_error_m": float(np.max(dh)),
                                 "median_abs_altitude_error_m": float(np.median(np.abs(da))),
                                 "median_rel_altitude_error": float(np.median(np.abs(np.array(da)) /
                                    np.maximum([by[int(r['frame'])]['altitude_m'] for r in rows
                                                if int(r['frame']) in by], 1e-9)))}
    man_path = run_dir / "maneuvers.json"
    tm = truth.get("maneuvers")
    if tm and man_path.is_file():
        m = json.loads(man_path.read_text())
        cmp = {}
        if "pitch_over" in m and tm.get("pitchover_altitude_m"):
            cmp["pitch_over_altitude_m"] = [m["pitch_over"]["altitude_m"], tm["pitchover_altitude_m"]]
        if "hover" in m and tm.get("hover_altitude_m"):
            cmp["hover_altitude_m"] = [m["hover"]["altitude_m"], tm["hover_altitude_m"]]
        if "retreat" in m and tm.get("retreat_m") is not None:
            cmp["retreat_m"] = [m["retreat"]["distance_m"], tm["retreat_m"]]
            cmp["retreat_angle_deg"] = [m["retreat"]["angle_to_track_deg"], tm.get("retreat_angle_deg")]
        out["maneuvers"] = {k: {"found": v[0], "truth": v[1]} for k, v in cmp.items()}
    return out


def format_evaluation(ev: dict) -> str:
    lines = [f"{'fix':<26}{'error (m)':>11}{'error (DOM px)':>16}"]
    for name in ("coarse", "before_bundle_adjustment", "bundle_adjustment", "fine"):
        if name in ev:
            r = ev[name]
            px = f"{r['error_px']:.3f}" if "error_px" in r else "-"
            lines.append(f"{name:<26}{r['error_m']:>11.3f}{px:>16}")
    sig = "unknown" if ev["sigma_m"] is None else f"{ev['sigma_m']:.3f} m"
    lines.append(f"fix level {ev.get('level', 'fine')}; stated 1-sigma: {sig} "
                 f"(error within it: {ev['within_1_sigma']})")
    if "trajectory" in ev:
        t = ev["trajectory"]
        lines.append(f"trajectory: {t['frames']} frames, median horizontal error {t['median_horizontal_error_m']:.2f} m"
                     f", median altitude error {t['median_abs_altitude_error_m']:.2f} m")
    for k, v in ev.get("maneuvers", {}).items():
        lines.append(f"{k}: found {v['found']:.1f}, truth {v['truth']}")
    return "\n".join(lines)
