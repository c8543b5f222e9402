"""Report section of a ``selenite locate`` run."""

from __future__ import annotations

from pathlib import Path

from selenite.report.html import Section, png_data_uri


def locate_section(landing: dict, man: dict, search: dict, fine: dict, finfo: dict, traj_png, fix_png,
                   phases: dict | None = None) -> Section:
    sec = Section("Descent localisation")
    sec.paragraphs.append(landing_sentence(landing)
                          + (f" from {fine['tie_inliers']} tie points to the DOM." if "tie_inliers" in fine else "."))
    if landing.get("limited_by"):
        sec.paragraphs.append(f"Fix level: {landing['level']}; limited by the {landing['limited_by']}.")
    sec.paragraphs.append(
        f"The coarse fix (homography chain, the published method) is at DOM pixel "
        f"{landing['coarse']['dom_col']:.2f}, {landing['coarse']['dom_row']:.2f}." if landing["coarse"] else
        f"No coarse fix (homography chain, the published method): {landing.get('coarse_error', '')}.")
    if landing.get("camera", {}).get("self_calibrated"):
        c, sg = landing["camera"]["camera"], landing["camera"].get("sigma") or {}
        sec.paragraphs.append(
            f"Lens self-calibrated ({c.get('model', 'pinhole')}): "
            f"fx {c['fx']:.2f} ± {sg.get('fx', float('nan')):.2f} px, "
            f"fy {c['fy']:.2f} ± {sg.get('fy', float('nan')):.2f} px, k1 {c['k1']:.4f}, k2 {c['k2']:.4f}; "
            f"reprojection {landing['camera']['reprojection_rms_px']:.2f} px over "
            f"{landing['camera']['frames_used']} frames.")
    obsc = landing["frames_obscured"]
    sec.paragraphs.append(
        f"{finfo['count']} frames; {len(obsc)} obscured at the end "
        f"({'frames ' + str(obsc[0]) + '–' + str(obsc[-1]) if obsc else 'none'}) and excluded; "
        f"{len(finfo['sampled'])} kept by SSIM sampling; {landing['frames_reconstructed']} reconstructed. "
        f"Map search at pyramid level {search['level']} over {search['dom_keypoints']} DOM features: best "
        f"hypothesis {search['best']['inliers']} inliers, {search['peak_ratio']:.1f}× the best elsewhere.")
    rows = []
    if "pitch_over" in man:
        rows.append(["pitch-over", f"{man['pitch_over']['altitude_m']:.1f} m altitude",
                     f"tilt {man['pitch_over']['tilt_before_deg']:.0f}° → {man['pitch_over']['tilt_after_deg']:.0f}°"])
    if "hover" in man:
        rows.append(["hover / turn", f"{man['hover']['altitude_m']:.1f} m altitude",
                     f"yaw change {man['hover']['yaw_change_deg']:.1f}°"])
    if "retreat" in man:
        rows.append(["retreat", f"{man['retreat']['distance_m']:.1f} m",
                     f"{man['retreat']['angle_to_track_deg']:.1f}° to the approach track"])
    if "vertical_descent" in man:
        rows.append(["vertical descent", f"from {man['vertical_descent']['start_altitude_m']:.1f} m", ""])
    sec.tables.append((["maneuver", "value", "detail"], rows))
    if phases and phases.get("phases"):
        u = phases["units"]
        sec.tables.append((["phase", "frames", "time (s)", f"height ({u})", f"mean descent speed ({u}/s)"],
                           [[p["name"], f"{p['first_frame']}–{p['last_frame']}",
                             f"{p['start_time_s']:.1f}–{p['end_time_s']:.1f}",
                             f"{p['start_height']:.1f} → {p['end_height']:.1f}", f"{p['mean_descent_speed']:.2f}"]
                            for p in phases["phases"]]))
        if "divert" in phases:
            d = phases["divert"]
            sec.paragraphs.append(
                f"Divert in the powered descent: {d['distance']:.1f} {u} towards azimuth {d['azimuth_deg']:.0f}° "
                f"(map north), frames {d['from_frame']}–{d['to_frame']}, {d['start_time_s']:.1f}–"
                f"{d['end_time_s']:.1f} s, from {d['start_height']:.0f} to {d['end_height']:.0f} {u} high. Times "
                f"from the {phases.get('time_source', 'frame')}.")
    sec.figures.append((png_data_uri(Path(traj_png).read_bytes()), "Reconstructed trajectory, altitude and GSD."))
    sec.figures.append((png_data_uri(Path(fix_png).read_bytes()), "Coarse and fine landing fixes on the DOM."))
    return sec


def landing_sentence(landing: dict) -> str:
    """One line: where the lander is, at what level, with its σ (a plain map: pixels and offsets only)."""
    where = (f"{landing['lat']:.6f}°, {landing['lon']:.6f}°E, " if landing.get("lon") is not None else "")
    sig = landing.get("sigma_m")
    unit = landing.get("units", "m")
    sig_s = f"1-σ {sig:.2f} {unit}" if sig is not None else "σ unknown"
    return (f"Landing point ({landing.get('level', 'fine')} fix): {where}DOM pixel ({landing['dom_col']:.2f}, "
            f"{landing['dom_row']:.2f}), {sig_s}")


def locate_section_from_run(run_dir, truth_path=None) -> Section:
    """The section from a finished run folder's files; with a truth file, the errors are added."""
    import json

    run_dir = Path(run_dir)
    read = lambda rel: json.loads((run_dir / rel).read_text())  # noqa: E731
    sec = locate_section(read("landing.json"), read("maneuvers.json"), read("search.json"), read("work/fine.json"),
                         read("frames.json"), run_dir / "trajectory.png", run_dir / "map_fix.png",
                         read("phases.json") if (run_dir / "phases.json").is_file() else None)
    if truth_path is not None:
        from selenite.locate.evaluate import evaluate_run

        ev = evaluate_run(run_dir, truth_path)
        sec.paragraphs.append(f"Against the synthetic truth: stated 1-σ {ev['sigma_m']:.2f} m, fine error within it: "
                              f"{ev['within_1_sigma']}.")
        rows = [[name.replace("_", " "), f"{ev[name]['error_m']:.3f}",
                 f"{ev[name]['error_px']:.3f}" if "error_px" in ev[name] else "-"]
                for name in ("coarse", "before_bundle_adjustment", "bundle_adjustment", "fine") if name in ev]
        sec.tables.append((["fix", "error (m)", "error (DOM px)"], rows))
    return sec
