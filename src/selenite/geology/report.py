"""Report section of a ``selenite geology analyze`` run: ortho before/after, GSD calibration, the count and its
CSFD plot with the age, randomness, degradation classes and particles."""

from __future__ import annotations

import json
from pathlib import Path

from selenite.report.html import Section, png_data_uri


def _png(path: Path) -> str:
    return png_data_uri(path.read_bytes())


def format_age(a: dict) -> str:
    t, p, m = a["age_ga"], a["plus_ga"], a["minus_ga"]
    return f"{t:.3g} +{p:.2g} −{m:.2g} Ga" if t >= 1 else f"{t * 1000:.3g} +{p * 1000:.2g} −{m * 1000:.2g} Ma"


def geology_section(root: str | Path, summary: dict | None = None, truth: dict | None = None) -> Section:
    """One section for the run folder ``root``; ``truth`` (a synthetic world's) adds the checks against it."""
    root = Path(root)
    s = summary or json.loads((root / "geology.json").read_text())
    sec = Section("Surface geology")
    oc, orck = s["orthos"]["count"], s["orthos"]["rock"]
    sec.paragraphs.append(
        f"Count frame {s['count_frame']} ({oc['camera_height_m']:.0f} m above the ground, view tilt "
        f"{oc['view_tilt_deg']:.1f}°) orthorectified onto the {'DEM' if oc['method'] == 'dem' else 'ground plane'} "
        f"at {oc['gsd_m']:.3g} m/px, covering {oc['area_km2']:.3g} km²; rock frame {s['rock_frame']} at "
        f"{orck['gsd_m'] * 1000:.3g} mm/px ({orck['camera_height_m']:.1f} m above the ground).")
    sec.figures.append((_png(root / "ortho_before_after.png"), "The count frame as taken and orthorectified."))
    g = s["gsd"]
    if g.get("calibrated"):
        line = (f"GSD calibrated on the orbital map from {g['n_points']} matched control points: "
                f"{g['gsd_m']:.4g} ± {g['gsd_sigma_m']:.2g} m/px against {g['nominal_gsd_m']:.4g} m/px from the pose "
                f"(ratio {g['ratio_to_nominal']:.4f}; RMS residual {g['rms_residual_px']:.2f} px).")
    else:
        line = f"GSD not calibrated: {g['reason']}."
    sec.paragraphs.append(line)
    for w in g.get("warnings", []):
        sec.paragraphs.append(f"Warning: {w}")
    d = s["date"]
    src = s["craters"]["source"]
    sec.paragraphs.append(f"{s['craters']['n']} craters in the footprint ({src}); counted area "
                          f"{d['area_km2']:.4g} km²; craters from {d['min_diameter_m']:.3g} m (the smallest "
                          f"reliably counted size taken as 10 ortho pixels unless a range was given).")
    sec.figures.append((_png(root / "craters_overlay.png"), "Craters counted on the count ortho."))
    if "error" in d:
        sec.paragraphs.append(f"No model age: {d['error']}.")
    else:
        rows = [[a["method"], format_age(a), f"{a['n1_per_km2']:.3e}", a["n"],
                 f"{a['d_range_km'][0] * 1000:.3g}–{a['d_range_km'][1] * 1000:.3g}", a["chronology_name"]]
                for a in d["ages"]]
        sec.tables.append((["method", "model age", "N(1) km⁻²", "craters", "D range (m)", "chronology"], rows))
        for w in d.get("warnings", []):
            sec.paragraphs.append(f"Warning: {w}")
        sec.figures.append((_png(root / "csfd.png"), "Crater size-frequency distribution with isochrons."))
    r = s["randomness"]
    if "skipped" in r:
        sec.paragraphs.append(f"Randomness not analysed: {r['skipped']}.")
    else:
        verdicts = ", ".join(f"{b['d_min_km'] * 1000:.3g}–{b['d_max_km'] * 1000:.3g} m: {b['verdict']}"
                             for b in r["bins"])
        sec.paragraphs.append(f"Spatial randomness (M2CND, SDAA against Monte-Carlo placements): {verdicts}.")
        sec.figures.append((_png(root / "randomness.png"), "Randomness analysis of the count."))
    dg = s["degradation"]
    if "skipped" in dg:
        sec.paragraphs.append(f"Degradation classes not measured: {dg['skipped']}.")
    else:
        classes = ", ".join(f"{k} {v}" for k, v in sorted(dg["classes"].items()))
        sec.paragraphs.append(f"Basilevsky degradation classes from {'DEM' if dg['method'] == 'dem' else 'image'} "
                              f"profiles ({dg['measured']} of {dg['n']} craters measured): {classes}. "
                              f"Assumption: {dg['assumption']}.")
        sec.figures.append((_png(root / "degradation.png"), "Degradation class per crater."))
    pt = s["particles"]
    dm = pt["diameter_m"]
    size = "" if dm["min"] is None else (f", {dm['min'] * 1000:.3g}–{dm['max'] * 1000:.3g} mm (median "
                                         f"{dm['median'] * 1000:.3g} mm)")
    plural = "" if pt["n_clasts"] == 1 else "s"
    sec.paragraphs.append(f"Rock frame {pt['frame']}: {pt['n_clasts']} bright clast{plural}, {pt['n_whole']} whole"
                          f"{size}; smallest resolved size {pt['smallest_resolved_m'] * 1000:.3g} mm.")
    sec.figures.append((_png(root / "particles.png"), "Bright clasts on the rock ortho and their size distribution."))
    if truth:
        rows = [[k, v] for k, v in truth.items()]
        sec.tables.append((["against the synthetic truth", "value"], rows))
    return sec
