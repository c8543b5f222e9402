"""What ``selenite locate run`` hands over: landing.json, trajectory (CSV, GeoJSON), maneuvers, plots, report."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from selenite.geo.camera import PinholeCamera, attitude_deg  # noqa: E402
from selenite.geo.crs import normalize_lon  # noqa: E402
from selenite.locate.dom import Dom, LocalFrame, dom_to_uint8  # noqa: E402
from selenite.locate.geometry import GroundFrame, frame_altitudes  # noqa: E402
from selenite.locate.maneuvers import detect_maneuvers  # noqa: E402
from selenite.locate.phases import descent_phases  # noqa: E402
from selenite.locate.sfm import poses_from_reconstruction  # noqa: E402
from selenite.runs import canonical_json  # noqa: E402


def _fix(dom: Dom, lf: LocalFrame, e: float, n: float) -> dict:
    x, y = lf.local_to_map(np.array([e]), np.array([n]))
    col, row = dom.info.map_to_pixel(np.asarray(x, float), np.asarray(y, float))
    col, row = float(np.atleast_1d(col)[0]), float(np.atleast_1d(row)[0])
    out = {"x": float(np.atleast_1d(x)[0]), "y": float(np.atleast_1d(y)[0]), "dom_col": col, "dom_row": row}
    if dom.georeferenced:
        lon, lat = dom.info.pixel_to_lonlat(np.atleast_1d(col), np.atleast_1d(row))
        out.update({"lon": normalize_lon(float(np.atleast_1d(lon)[0]), east_360=True),
                    "lat": float(np.atleast_1d(lat)[0])})
    else:
        out["from_top_left"] = dom.map_offset(col, row)
    return out


def trajectory_table(rec, names: list[str], camera: PinholeCamera, lf: LocalFrame, ground_z: float,
                     finfo: dict) -> list[dict]:
    """Per reconstructed frame: map position, height above the landing ground, altitude, GSD, attitude."""
    poses = poses_from_reconstruction(rec)
    pts = np.array([p.xyz for p in rec.points3D.values()])
    index = {f["file"]: f["index"] for f in finfo["frames"]}
    reg = [n for n in names if n in poses]
    centers = np.array([-poses[n][0].T @ poses[n][1] for n in reg])
    level = GroundFrame(np.array([0.0, 0.0, ground_z]), np.eye(3)[0], np.eye(3)[1], np.eye(3)[2])
    alts = frame_altitudes(level, centers, pts, min_height=1.0)
    rows = []
    for n, C, alt in zip(reg, centers, alts, strict=True):
        R = poses[n][0]
        roll, pitch, yaw = attitude_deg(R)
        fix = _fix(lf.dom, lf, C[0], C[1])
        tilt = float(np.degrees(np.arccos(np.clip(-R[2, 2], -1, 1))))
        rows.append({"frame": index[n], "file": n, "x": fix["x"], "y": fix["y"], "z": float(C[2] - ground_z),
                     "e_local": float(C[0]), "n_local": float(C[1]),
                     "altitude_m": float(alt), "gsd_m": float(alt) / camera.fx, "roll": roll, "pitch": pitch,
                     "yaw": yaw, "tilt": tilt, "dom_col": fix["dom_col"], "dom_row": fix["dom_row"],
                     "lon": fix.get("lon"), "lat": fix.get("lat")})
    return rows


def poses_record(rec, names: list[str], camera: PinholeCamera, lf: LocalFrame, ground_z: float,
                 finfo: dict) -> dict:
    """Every reconstructed frame's pose in the run's metric world frame, for orthorectification.

    World frame: x, y = the local stereographic map coordinates of ``crs`` (metres, centred on lon0/lat0),
    z up (metres, same datum as the reconstruction); the landing ground is the plane z = ``ground_z``, level
    (normal 0, 0, 1) since the frame was levelled on the descent's free-fall vertical.
    """
    poses = poses_from_reconstruction(rec)
    index = {f["file"]: f["index"] for f in finfo["frames"]}
    frames = [{"frame": index[n], "file": n, "R_world_to_camera": poses[n][0].tolist(),
               "t": poses[n][1].tolist()} for n in names if n in poses]
    return {"crs_wkt": lf.crs.to_wkt(), "lon0": lf.lon0, "lat0": lf.lat0, "camera": camera.to_dict(),
            "ground": {"point": [0.0, 0.0, float(ground_z)], "normal": [0.0, 0.0, 1.0]},
            "frame_convention": "x_cam = R X + t; OpenCV camera axes (x right, y down, z forward)",
            "frames": sorted(frames, key=lambda f: f["frame"])}


def _csv(rows: list[dict], cols: list[str]) -> str:
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join(f"{r[c]:.6f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    return "\n".join(lines) + "\n"


def _geojson(rows: list[dict], landing: dict) -> dict:
    geo = landing.get("lon") is not None
    xy = (lambda r: [r["lon"], r["lat"]]) if geo else (lambda r: [r["dom_col"], r["dom_row"]])  # noqa: E731
    feats = [{"type": "Feature", "properties": {"kind": "trajectory"},
              "geometry": {"type": "LineString", "coordinates": [xy(r) for r in rows]}}]
    for r in rows:
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": xy(r)},
                      "properties": {"kind": "frame", "frame": r["frame"], "altitude_m": round(r["altitude_m"], 3),
                                     "gsd_m": round(r["gsd_m"], 5), "yaw": round(r["yaw"], 2)}})
    feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": xy(landing)},
                  "properties": {"kind": "landing", "sigma_m": landing["sigma_m"], "level": landing["level"]}})
    return {"type": "FeatureCollection",
            "crs_note": ("lon/lat: planetocentric degrees east on the IAU 2015 Moon sphere (IAU_2015:30100)" if geo
                         else "map pixels (column, row from the top-left pixel's centre): the map has no "
                              "georeference"),
            "features": feats}


def plot_trajectory(path, rows: list[dict], man: dict, phases: dict | None = None) -> None:
    e = np.array([r["e_local"] for r in rows])
    n = np.array([r["n_local"] for r in rows])
    z = np.array([r["z"] for r in rows])
    fig = plt.figure(figsize=(16, 4.2))
    ax = fig.add_subplot(1, 4, 1, projection="3d")
    ax.plot(e, n, z, "-o", ms=2, color="tab:blue")
    ax.scatter([e[-1]], [n[-1]], [0], color="red", marker="x", s=50)
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.set_zlabel("height (m)")
    ax.set_title("reconstructed descent")
    ax2 = fig.add_subplot(1, 4, 2)
    ax2.plot(e, n, "-o", ms=2)
    ax2.plot(e[-1], n[-1], "rx")
    ax2.set_aspect("equal", "datalim")
    ax2.set_xlabel("east (m)")
    ax2.set_ylabel("north (m)")
    ax2.set_title("ground track")
    ax3 = fig.add_subplot(1, 4, 3)
    alt = np.array([r["altitude_m"] for r in rows])
    ax3.semilogy([r["frame"] for r in rows], [r["gsd_m"] for r in rows], "-", label="GSD (m/px)")
    ax3.semilogy([r["frame"] for r in rows], alt, "-", label="altitude (m)")
    if "pitch_over" in man:
        ax3.axvline(man["pitch_over"]["frame"], color="gray", ls="--", lw=0.8)
    ax3.set_xlabel("frame")
    ax3.legend(fontsize=8)
    ax3.set_title("altitude and GSD")
    ax4 = fig.add_subplot(1, 4, 4)
    sp = (phases or {}).get("speeds")
    if sp:
        u = phases["units"]
        tt = [q["time_s"] for q in sp]
        ax4.semilogy(tt, [max(q["height"], 1e-3) for q in sp], "-", color="tab:blue", label=f"height ({u})")
        ax4.semilogy(tt, [max(abs(q["vertical_speed"]), 1e-3) for q in sp], "-", color="tab:orange",
                     label=f"descent speed ({u}/s)")
        ax4.semilogy(tt, [max(q["horizontal_speed"], 1e-3) for q in sp], "-", color="tab:green",
                     label=f"horizontal speed ({u}/s)")
        for p in phases.get("phases", [])[1:]:
            ax4.axvline(p["start_time_s"], color="gray", ls="--", lw=0.8)
            ax4.text(p["start_time_s"], ax4.get_ylim()[1], p["name"], rotation=90, va="top", fontsize=7)
        ax4.set_xlabel(f"time (s, from {phases.get('time_source', 'frame')})")
        ax4.legend(fontsize=7)
    ax4.set_title("height and speeds against time")
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png", metadata={"Software": None})
    plt.close(fig)


AGREEMENT_SIGMAS = 5.0


def _fine_coarse_agreement(landing: dict, coarse: dict, cov: np.ndarray, px_m: float) -> tuple[dict, np.ndarray]:
    """The fine fix checked against the coarse one (two estimates from different steps of the same run). When they
    are more than ``AGREEMENT_SIGMAS`` combined σ apart (the coarse σ at least one DOM pixel), one of them is wrong
    by at least their distance and nothing in the run says which: σ is widened to that distance (isotropically),
    so the stated uncertainty covers both. A map under another Sun with no DEM (`bench locate-drape`
    other-sun-map) is such a case: 16 tie points, a fine fix 78 m off with σ 8 m, the coarse one 90 m from it."""
    gap = float(np.hypot(landing["dom_col"] - coarse["dom_col"], landing["dom_row"] - coarse["dom_row"]) * px_m)
    sig_c = max(coarse.get("sigma_m") or 0.0, px_m)
    sig_f = float(landing["sigma_m"])
    combined = float(np.hypot(sig_f, sig_c))
    out = {"coarse_fine_gap_m": gap, "combined_sigma_m": combined, "widened": False}
    if gap > AGREEMENT_SIGMAS * combined and gap > sig_f:
        cov = cov + np.eye(2) * (gap ** 2 - sig_f ** 2) / 2
        landing["sigma_m"] = float(np.sqrt(np.trace(cov)))
        landing["sigma_ellipse_m"] = {"east": float(np.sqrt(cov[0, 0])), "north": float(np.sqrt(cov[1, 1]))}
        out.update({"widened": True, "sigma_before_m": sig_f,
                    "note": f"the fine and coarse fixes are {gap / combined:.1f} combined σ apart; σ widened to "
                            "cover both"})
    return out, cov


def plot_fix(path, dom: Dom, landing: dict, coarse: dict | None, cov_en: np.ndarray, px_m: float) -> None:
    gap = np.hypot(landing["dom_col"] - coarse["dom_col"], landing["dom_row"] - coarse["dom_row"]) if coarse else 0
    half = max(60, int(6 * max(gap, 10)))
    c0, r0 = int(landing["dom_col"]) - half, int(landing["dom_row"]) - half
    crop, _ = dom_to_uint8(dom.read(0, (c0, r0, 2 * half, 2 * half)))
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.imshow(crop, cmap="gray", extent=(c0 - 0.5, c0 + 2 * half - 0.5, r0 + 2 * half - 0.5, r0 - 0.5))
    if coarse:
        ax.plot(coarse["dom_col"], coarse["dom_row"], "o", mfc="none", mec="orange", ms=10, label="coarse")
    ax.plot(landing["dom_col"], landing["dom_row"], "+", color="red", ms=14, mew=2, label="fine")
    w, v = np.linalg.eigh(np.asarray(cov_en))
    t = np.linspace(0, 2 * np.pi, 100)
    ell = (v @ np.diag(np.sqrt(np.maximum(w, 0)) * 3) @ np.stack([np.cos(t), np.sin(t)])) / px_m
    ax.plot(landing["dom_col"] + ell[0], landing["dom_row"] - ell[1], "r-", lw=0.8, label="3σ")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("landing point on the DOM (pixels)")
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png", metadata={"Software": None})
    plt.close(fig)


def write_outputs(tmp: dict, root: Path, names: list[str], finfo: dict, camera: PinholeCamera, dom: Dom, cfg,
                  rec, times: dict | None = None) -> None:
    """Every output of a run. ``times``: {"seconds": per frame of the sequence (all frames), "source": ...}."""
    from selenite.locate.report import locate_section
    from selenite.report.html import write_report

    fine = json.loads((root / "work/fine.json").read_text())
    coarse = json.loads((root / "work/coarse.json").read_text())
    cal = None
    if (root / "calibration.json").is_file():
        c = json.loads((root / "calibration.json").read_text())
        cal = {k: c[k] for k in ("camera", "self_calibrated", "sigma", "reprojection_rms_px", "frames_used")
               if k in c}
    search = json.loads((root / "search.json").read_text())
    lf = LocalFrame(dom, fine["lon0"], fine["lat0"])
    coarse_fix = None
    if "error" not in coarse:
        coarse_fix = {k: coarse[k] for k in ("lon", "lat", "x", "y", "dom_col", "dom_row", "sigma_m", "sigma_basis")
                      if k in coarse}
        if not dom.georeferenced:
            coarse_fix["from_top_left"] = dom.map_offset(coarse["dom_col"], coarse["dom_row"])
    common = {"coarse": coarse_fix,
              "frames_used": len(names), "frames_total": finfo["count"],
              "frames_obscured": [f["index"] for f in finfo["frames"] if f["obscured"]],
              "frames_degraded": [f["index"] for f in finfo["frames"] if f.get("degraded")],
              "keyframes": [k["index"] for k in search["keyframes"] if k["H_t2dom"] is not None],
              "best_keyframe": search["best_keyframe"], "dom_crs": dom.info.crs.to_string(),
              "dom_georeferenced": dom.georeferenced, "units": dom.units, "dom_pixel_m": fine["dom_px_m"]}
    if "error" not in fine:
        landing = {"level": "fine", **_fix(dom, lf, *fine["landing_en"]), "sigma_m": fine["sigma_m"],
                   "sigma_ellipse_m": {"east": fine["sigma_en"][0], "north": fine["sigma_en"][1]},
                   **common, "method": fine.get("method", "bundle adjustment"),
                   "bundle_adjustment": {**_fix(dom, lf, *fine.get("landing_en_ba", fine["landing_en"])),
                                         "sigma_m": fine.get("sigma_m_ba", fine["sigma_m"])},
                   "direct_fixes": len(fine.get("direct_fixes", [])),
                   "before_bundle_adjustment": _fix(dom, lf, *fine["landing_en_before_ba"]),
                   "ties": fine["tie_inliers"]}
        cov = np.array(fine["cov_en"])
        if coarse_fix is not None:
            landing["agreement"], cov = _fine_coarse_agreement(landing, coarse_fix, cov, fine["dom_px_m"])
    elif coarse_fix is not None:
        # the fine step could not tie the frames to the map: the coarse fix, with what limited it
        landing = {"level": "coarse", **coarse_fix, **common, "method": "homography chain",
                   "limited_by": f"fine step: {fine['error']}"}
        sig = coarse_fix.get("sigma_m")
        cov = np.eye(2) * (sig ** 2 / 2 if sig is not None else 0.0)
    else:
        landing = {"level": "map search", **_fix(dom, lf, *fine["landing_en_search"]), "sigma_m": None,
                   "sigma_basis": "unknown: one keyframe's registration places the reconstruction", **common,
                   "method": "map search alignment",
                   "limited_by": f"fine step: {fine['error']}; coarse step: {coarse['error']}"}
        cov = np.zeros((2, 2))
    if cal is not None:
        landing["camera"] = cal
    if "map_from_dem" in search:
        # the map was the DEM rendered under this Sun (estimated by the search when its azimuth was not given)
        landing["map_from_dem"] = search["map_from_dem"]
    rows = trajectory_table(rec, names, camera, lf, fine["ground_z"], finfo)
    landing["frames_reconstructed"] = len(rows)
    if rows:
        low = rows[-1]
        # how far below the lowest reconstructed frame the landing point was carried
        landing["lowest_frame"] = {"frame": low["frame"], "height": low["z"], "units": dom.units,
                                   "frames_after_it": finfo["count"] - 1 - low["frame"]}
    secs = (times or {}).get("seconds") or list(range(finfo["count"]))
    for r in rows:
        r["time_s"] = float(secs[r["frame"]])
    phases = descent_phases(np.array([r["time_s"] for r in rows]), np.array([r["e_local"] for r in rows]),
                            np.array([r["n_local"] for r in rows]), np.array([r["z"] for r in rows]),
                            [r["frame"] for r in rows], dom.units)
    phases["time_source"] = (times or {}).get("source", "frame")
    landing["phases"] = [{k: p[k] for k in ("name", "first_frame", "last_frame", "start_height", "end_height")}
                         for p in phases.get("phases", [])]
    if "divert" in phases:
        landing["divert"] = phases["divert"]
    pos = np.array([[r["e_local"], r["n_local"], r["z"]] for r in rows])
    man = detect_maneuvers(pos, np.array([r["altitude_m"] for r in rows]), np.array([r["tilt"] for r in rows]),
                           np.array([r["yaw"] for r in rows]), [r["frame"] for r in rows])
    if coarse_fix is None:
        landing["coarse_error"] = coarse["error"]
    Path(tmp["landing.json"]).write_text(canonical_json(landing) + "\n")
    Path(tmp["trajectory.csv"]).write_text(_csv(rows, ["frame", "x", "y", "z", "altitude_m", "gsd_m", "roll",
                                                       "pitch", "yaw", "time_s"]))
    Path(tmp["phases.json"]).write_text(canonical_json(phases) + "\n")
    Path(tmp["trajectory.geojson"]).write_text(json.dumps(_geojson(rows, landing)) + "\n")
    Path(tmp["maneuvers.json"]).write_text(canonical_json(man) + "\n")
    Path(tmp["poses.json"]).write_text(canonical_json(poses_record(rec, names, camera, lf, fine["ground_z"],
                                                                   finfo)) + "\n")
    plot_trajectory(tmp["trajectory.png"], rows, man, phases)
    plot_fix(tmp["map_fix.png"], dom, landing, landing["coarse"], cov, fine["dom_px_m"])
    write_report(tmp["report.html"], "selenite — descent localisation",
                 [locate_section(landing, man, search, fine, finfo, tmp["trajectory.png"], tmp["map_fix.png"],
                                 phases)],
                 subtitle=f"{finfo['count']} frames, DOM {Path(dom.path).name}")
