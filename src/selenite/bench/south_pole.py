"""``selenite bench south-pole``: the real LOLA south pole end to end, checked against independent references.

Every run is a ``selenite`` process of its own (wall time and peak RSS of that process):

- light at 240 m with the 1.79 km cap beyond it over the 18.6-year cycle, the eye 0, 2 and 10 m above the ground,
  and once over Wueller et al.'s own years (2025–2032);
- Wueller et al. 2026's sites: Spearman ρ of our light at their pixels against their days;
- the cold-trap PSRs of Tye 2015 / Cannon 2020: our area of the connected PSR at their centroid;
- the 10 m Connecting Ridge (PGDA) against the 240 m pole over the same ground;
- craters detected on the 240 m DEM against Head et al. 2010 (≥ 20 km) and the cold-trap craters;
- sites ranked on the pole by the mission scorer and by the learned scorer, checked against NASA's Artemis III
  regions (random-ranking p-values) and Wueller's sites.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from selenite.bench.locate import _run_child

HEIGHTS = (0.0, 2.0, 10.0)
THEIR_YEARS = ("2025-01-01", "2033-01-01")


def _selenite(*args) -> list[str]:
    return [sys.executable, "-m", "selenite", "-q", *[str(a) for a in args]]


def light_case(out: Path, dem: Path, far: list[Path], height: float, period: tuple[str, str] | None = None) -> dict:
    args = ["terrain", "visibility", "--dem", dem, "--height", height, "--out", out, "--force"]
    for f in far:
        args += ["--far-dem", f]
    if period:
        args += ["--start", period[0], "--end", period[1]]
    code, wall, rss, tail = _run_child(_selenite(*args))
    if code != 0:
        return {"height_m": height, "error": tail, "wall_s": wall}
    meta = json.loads((out / "visibility.json").read_text())
    return {"run": str(out), "height_m": height, "period": f"{meta['period']['start'][:10]} – {meta['period']['end']}",
            "instants": meta["period"]["instants"], "wall_s": wall, "peak_rss_mib": rss,
            "seconds": meta["seconds"], "sun_pct": meta["sun_visibility_mean_pct"],
            "psr_pct": 100 * meta["psr_fraction"]}


def inside_raster(info, lon, lat, diameter_m) -> np.ndarray:
    """Craters whose rim circle lies inside a projected raster (its pixel size in metres)."""
    col, row = info.lonlat_to_pixel(np.asarray(lon, float), np.asarray(lat, float))
    r = np.asarray(diameter_m, float) / 2 / info.ground_res_m
    return (col - r >= -0.5) & (row - r >= -0.5) & (col + r <= info.width - 0.5) & (row + r <= info.height - 0.5)


def crater_case(out_csv: Path, dem: Path, head2010: Path | None, cold_traps: Path) -> dict:
    """``craters detect --dem`` on the pole; recall (match: centre within 0.5·D, diameter ratio ≤ 1.5, one-to-one)
    of Head et al. 2010's craters ≥ 20 km and of the cold-trap craters whose rims lie inside the DEM."""
    from selenite.craters.catalog import read_craters
    from selenite.craters.metrics import object_scores
    from selenite.geo.raster import raster_info

    code, wall, rss, tail = _run_child(_selenite("craters", "detect", "--dem", dem, "--lonlat", "--out", out_csv))
    if code != 0:
        return {"error": tail, "wall_s": wall}
    info = raster_info(dem)
    det = read_craters(out_csv)
    res: dict = {"wall_s": wall, "peak_rss_mib": rss, "detected": int(len(det)), "rows": []}
    truths = []
    if head2010 is not None:
        t = read_craters(head2010)
        truths += [(f"Head et al. 2010, ≥ {d:g} km", t[t.diameter_m >= d * 1000]) for d in (20, 30, 50)]
    ct = pd.read_csv(cold_traps)
    ct = pd.DataFrame({"lon": (ct["Lon (deg)"] + 180) % 360 - 180, "lat": ct["Lat (deg)"],
                       "diameter_m": ct["Diam (km)"] * 1000.0, "name": ct["Crater Name"]})
    truths.append(("cold-trap craters (Tye 2015, Cannon 2020)", ct))
    for name, t in truths:
        t = t[inside_raster(info, t.lon, t.lat, t.diameter_m)]
        d = det[det.diameter_m >= t.diameter_m.min() / 1.5] if len(t) else det
        sc = object_scores(d, t[["lon", "lat", "diameter_m"]], frame="m")
        res["rows"].append({"truth": name, "n": int(len(t)), "recall": sc.recall, "precision_above": sc.precision,
                            "diameter_bias": sc.diameter_bias_median})
    return res


def sites_case(out: Path, dem: Path, light: Path, craters: Path | None, regions: Path, reference: Path,
               hazard: Path | None, scorer: str, region_lat: float = -84.0) -> dict:
    args = ["sites", "rank", "--dem", dem, "--light", light, "--regions", regions, "--reference-sites", reference,
            "--region-lat", region_lat, "--scorer", scorer, "--out", out, "--force"]
    if craters is not None:
        args += ["--craters", craters]
    if hazard is not None:
        args += ["--hazard-dem", hazard]
    code, wall, rss, tail = _run_child(_selenite(*args))
    if code != 0:
        return {"scorer": scorer, "error": tail, "wall_s": wall}
    v = json.loads((out / "validation.json").read_text())
    ev = json.loads((out / "evaluation.json").read_text())
    cells = pd.read_parquet(out / "cells.parquet")
    return {"scorer": scorer, "region_lat": region_lat, "wall_s": wall, "peak_rss_mib": rss,
            "cells": int(len(cells)),
            "eligible": ev.get("eligible_cells"), "top_n": v["regions"]["top_n"],
            "per_region": v["regions"]["per_region"], "reference": v.get("reference_sites", {}),
            "reference_gates": _gates_at_sites(cells, reference) if scorer == "mission" else None}


def _gates_at_sites(cells: pd.DataFrame, reference: Path) -> dict:
    """How many of the published sites sit in cells that pass the mission scorer's gates, and which gate fails."""
    from selenite.geo.crs import as_crs, lonlat_to_map
    from selenite.sites.config import SitesConfig
    from selenite.terrain.references import read_reference_sites

    cfg = SitesConfig()
    s = read_reference_sites(reference)
    x, y = lonlat_to_map(as_crs("IAU_2015:30135"), s["lon"].to_numpy(), s["lat"].to_numpy())
    cell = float(np.median(np.diff(np.unique(cells["x_m"]))))
    key = {(int(np.floor(a / cell)), int(np.floor(b / cell))): i for i, (a, b) in
           enumerate(zip(cells["x_m"].to_numpy(), cells["y_m"].to_numpy(), strict=True))}
    idx = [key.get((int(np.floor(a / cell)), int(np.floor(b / cell)))) for a, b in zip(x, y, strict=True)]
    rows = cells.iloc[[i for i in idx if i is not None]]
    return {"in_grid": int(len(rows)), "pass_gates": int(rows["eligible"].sum()),
            "psr_within_reach": int((rows["psr_distance_km"] <= cfg.mission_psr_km).sum()),
            "slope_ok": int((rows["slope_mean_deg"] <= cfg.tilt_max_deg).sum()),
            "stay_percentile_mean": float(cells["sun_earth_stay_max_pct"].rank(pct=True).loc[rows.index].mean())}


def run_bench(work: Path, data: Path | None, notify=print) -> dict:
    """All the cases; ``data``: the shared real-data folder (Head 2010 and the 10 m ridge), optional."""
    from selenite.embedded import south_pole
    from selenite.terrain.references import (
        psr_areas,
        read_cold_traps,
        read_reference_sites,
        resolution_comparison,
        sample_at,
        site_correlations,
    )

    sp = south_pole()
    work.mkdir(parents=True, exist_ok=True)
    sites = read_reference_sites(sp.reference_sites)
    traps = read_cold_traps(sp.cold_traps)
    res: dict = {"light": [], "wueller": [], "psr": {}}
    cases = [(h, None) for h in HEIGHTS] + [(2.0, THEIR_YEARS)]
    for h, period in cases:
        out = work / (f"light_h{h:g}" + ("_2025-2032" if period else ""))
        notify(f"light at {h:g} m{' over 2025–2032' if period else ''} …")
        row = light_case(out, sp.dem, [sp.cap], h, period)
        res["light"].append(row)
        notify(json.dumps({k: v for k, v in row.items() if k != "seconds"}))
        if "error" in row:
            continue
        c = site_correlations(out, sites)
        res["wueller"].append({"height_m": h, "period": row["period"],
                               **{k: v for k, v in c.items() if k not in ("values", "sites")}})
        res["psr"][f"{h:g}" + ("_their_years" if period else "")] = psr_areas(out / "psr.tif", traps)
    h2 = work / "light_h2"
    if (h2 / "horizon.tif").exists():
        from selenite.terrain.references import yearly_site_correlations

        notify("Wueller's yearly columns against each calendar year …")
        res["wueller_yearly"] = yearly_site_correlations(h2, sp.reference_sites)
    ridge_dem = data / "dem" / "pgda_site01_connecting_ridge_10m.tif" if data else None
    if ridge_dem is not None and ridge_dem.exists():
        notify("Connecting Ridge at 10 m …")
        row = light_case(work / "ridge_h2", ridge_dem, [sp.dem, sp.cap], 2.0)
        res["ridge_light"] = row
        if "error" not in row:
            res["ridge"] = resolution_comparison(work / "ridge_h2", h2)
            fine = sample_at(work / "ridge_h2" / "sun_visibility.tif", sites["lon"], sites["lat"])
            coarse = sample_at(h2 / "sun_visibility.tif", sites["lon"], sites["lat"])
            ok = np.isfinite(fine)
            res["ridge_sites"] = [{"site": n, "sun_days": float(d), "sun_10m": float(f), "sun_240m": float(c)}
                                  for n, d, f, c in zip(sites["name"][ok], sites["sun_days"][ok], fine[ok],
                                                        coarse[ok], strict=True)]
    notify("craters on the 240 m DEM …")
    head = data / "craters" / "head2010_20km_deepmoon.csv" if data else None
    craters_csv = work / "craters_240m.csv"
    res["craters"] = crater_case(craters_csv, sp.dem, head if head is not None and head.exists() else None,
                                 sp.cold_traps)
    hazard = ridge_dem if ridge_dem is not None and ridge_dem.exists() else None
    res["sites"] = []
    for scorer, lat in (("mission", -84.0), ("learned", -84.0), ("learned", -80.0)):
        notify(f"sites, {scorer} scorer, cells to {lat:g}° …")
        out = work / (f"sites_{scorer}" + ("" if lat == -84.0 else f"_to{-lat:g}"))
        res["sites"].append(sites_case(out, sp.dem, h2, craters_csv if craters_csv.exists() else None, sp.regions,
                                       sp.reference_sites, hazard, scorer, lat))
    if (work / "sites_learned" / "cells.parquet").exists():
        res["rule_criteria"] = rule_criteria(work / "sites_learned" / "cells.parquet", sp.regions)
    return res


def rule_criteria(cells_path: Path, regions_path: Path) -> dict:
    """Why the rule label ranks poorly: the share of cells inside NASA's regions and elsewhere (within 6° of the
    pole) that pass each of LunarSite's thresholds, and the medians of what the regions hold."""
    from selenite.sites.config import SitesConfig
    from selenite.sites.inputs import read_regions
    from selenite.sites.rank import regions_from

    cfg = SitesConfig()
    c = pd.read_parquet(cells_path)
    inside = np.zeros(len(c), bool)
    for reg in regions_from(read_regions(regions_path)):
        inside |= reg.contains(c["lon"].to_numpy(), c["lat"].to_numpy())
    tests = {f"mean slope ≤ {cfg.slope_max_deg:g}°": c["slope_mean_deg"] <= cfg.slope_max_deg,
             f"Sun ≥ {cfg.sun_min_pct:g} %": c["sun_mean_pct"] >= cfg.sun_min_pct,
             f"Earth ≥ {cfg.earth_min_pct:g} %": c["earth_mean_pct"] >= cfg.earth_min_pct}
    tests["all three (the rule)"] = np.logical_and.reduce([t.to_numpy() for t in tests.values()])
    rows = [{"criterion": k, "regions": float(np.asarray(v)[inside].mean()),
             "elsewhere": float(np.asarray(v)[~inside].mean())} for k, v in tests.items()]
    medians = [{"feature": f, "regions": float(np.nanmedian(c[f][inside])),
                "elsewhere": float(np.nanmedian(c[f][~inside]))}
               for f in ("slope_mean_deg", "sun_mean_pct", "earth_mean_pct", "sun_earth_stay_max_pct",
                         "psr_distance_km") if f in c]
    return {"cells_in_regions": int(inside.sum()), "cells": int(len(c)), "criteria": rows, "medians": medians}


def _f(v, d=2) -> str:
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{d}f}"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def south_pole_markdown(res: dict, machine: str) -> str:
    lines = ["## The real south pole (`selenite bench south-pole`)", "",
             f"Machine: {machine}. Inputs: LOLA's south pole at 240 m (1536², 84–90°S) with the 1.79 km cap "
             "(75–90°S) as the far field, both shipped in the package; PGDA's 10 m Connecting Ridge; references "
             "never used to build anything they test. Each run is one `selenite` process: wall time and its peak "
             "RSS.", "", "### Light from real relief", "",
             "| eye height | period | instants | wall s | horizons s | far field s | visibility s | peak RSS MiB | "
             "mean Sun % | PSR % |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["light"]:
        if "error" in r:
            lines.append(f"| {r['height_m']:g} m | error: {r['error']} |||||||||")
            continue
        s = r["seconds"]
        lines.append(f"| {r['height_m']:g} m | {r['period']} | {r['instants']} | {r['wall_s']:.1f} | "
                     f"{s.get('horizons', 0):.1f} | {s.get('far_field', 0):.1f} | {s.get('visibility', 0):.1f} | "
                     f"{r['peak_rss_mib']:.0f} | {r['sun_pct']:.2f} | {r['psr_pct']:.2f} |")
    full = [r for r in res["light"] if "error" not in r and r["instants"] > 10000]
    if full:
        worst = max(r["wall_s"] for r in full), max(r["peak_rss_mib"] for r in full)
        met = worst[0] <= 180 and worst[1] <= 3072
        lines += ["", f"Target (the whole command on this input, 18.6 years at 12 h, ≤ 3 min and ≤ 3 GB on 2 cores): "
                      f"{'met' if met else 'NOT met'} (slowest {worst[0]:.0f} s, largest {worst[1]:.0f} MiB)."]
    lines += ["", "### Against Wueller et al. 2026's sites (Spearman ρ at the pixel holding each site)", "",
              "| eye height | period | Sun visibility vs SunDays | longest sunlit vs SunDays | longest Sun + Earth vs "
              "SunEarth | sites |", "|---|---|---|---|---|---|"]
    for w in res["wueller"]:
        a = w.get("sun_visibility_vs_sun_days", {})
        b = w.get("longest_sun_days_vs_sun_days", {})
        c = w.get("sun_earth_longest_days_vs_sun_earth_days", {})
        lines.append(f"| {w['height_m']:g} m | {w['period']} | {_f(a.get('rho'), 3)} | {_f(b.get('rho'), 3)} | "
                     f"{_f(c.get('rho'), 3)} | {a.get('n', '—')} |")
    if res.get("wueller_yearly"):
        lines += ["", "Year by year (eye 2 m, every 12 h of the calendar year, at the same pixels): their yearly days "
                      "against our longest sunlit period and our sunlit share within that calendar year.", "",
                  "| year | their column | ρ longest sunlit | ρ sunlit share | their most days | our longest, days |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {y['year']} | {y['column']} | {y['longest_sunlit_rho']:.3f} | {y['sunlit_share_rho']:.3f} | "
                  f"{y['their_max_days']:g} | {y['our_max_longest_days']:g} |" for y in res["wueller_yearly"]]
    lines += ["", "### Cold-trap PSRs (Tye 2015, Cannon 2020 via moonpies), eye at the ground", "",
              "| crater | D km | published PSR km² | ours: connected PSR at their centroid km² | ratio | every PSR "
              "pixel inside the rim km² | ratio |", "|---|---|---|---|---|---|---|"]
    for r in res["psr"].get("0", []):
        lines.append(f"| {r['crater']} | {r['diameter_km']:g} | {r['theirs_km2']:.1f} | {r['ours_km2']:.1f} | "
                     f"{r['ratio']:.3f} | {r['in_rim_km2']:.1f} | {r['in_rim_ratio']:.3f} |")
    big = [r for r in res["psr"].get("0", []) if r["diameter_km"] >= 20]
    if big:
        ok = all(abs(r["ratio"] - 1) <= 0.15 for r in big)
        lines += ["", f"Craters ≥ 20 km within ±15 %: {'all' if ok else 'NOT all'} "
                      f"({sum(abs(r['ratio'] - 1) <= 0.15 for r in big)} of {len(big)}; median ratio "
                      f"{np.median([r['ratio'] for r in big]):.3f})."]
    if "ridge" in res:
        rg, rl = res["ridge"], res.get("ridge_light", {})
        lines += ["", f"### Resolution: the Connecting Ridge at {rg['fine_m']:g} m against the pole at "
                      f"{rg['coarse_m']:g} m", "",
                  f"Ridge run: {rl.get('wall_s', float('nan')):.1f} s, {rl.get('peak_rss_mib', float('nan')):.0f} "
                  f"MiB, eye 2 m, the 240 m pole and the cap as its far field. The 10 m products are averaged onto "
                  f"the {rg['coarse_pixels']} whole 240 m pixels they cover.", "",
                  "| product | 10 m, averaged | 240 m | 240 m − 10 m | mean abs. difference | r | best pixel at 10 m | "
                  "best pixel at 240 m |", "|---|---|---|---|---|---|---|---|"]
        for name, p in rg["products"].items():
            lines.append(f"| {name} | {p['fine_mean']:.3f} | {p['coarse_mean']:.3f} | "
                         f"{p['bias_coarse_minus_fine']:+.3f} | {p['mad']:.3f} | {p['r']:.3f} | {p['fine_max']:.2f} | "
                         f"{p['coarse_max']:.2f} |")
        if res.get("ridge_sites"):
            from scipy.stats import spearmanr

            rs = res["ridge_sites"]
            days = [s["sun_days"] for s in rs]
            rho = {k: spearmanr(days, [s[k] for s in rs])[0] for k in ("sun_10m", "sun_240m")}
            lines += ["", f"Wueller's sites on the ridge (their mean days of sunlight; our Sun visibility, %). "
                          f"Spearman ρ over these {len(rs)} sites: {rho['sun_10m']:.3f} at 10 m, "
                          f"{rho['sun_240m']:.3f} at 240 m.", "",
                      "| site | SunDays | 10 m | 240 m |", "|---|---|---|---|"]
            lines += [f"| {s['site']} | {s['sun_days']:.2f} | {s['sun_10m']:.1f} | {s['sun_240m']:.1f} |"
                      for s in rs]
    cr = res.get("craters", {})
    if "rows" in cr:
        lines += ["", "### Craters detected on the 240 m DEM (`craters detect --dem`, the shipped DEM weights)", "",
                  f"{cr['detected']} craters in {cr['wall_s']:.1f} s ({cr['peak_rss_mib']:.0f} MiB). Match: centre "
                  "within 0.5·D, diameter ratio ≤ 1.5, one-to-one; truth: craters whose rims lie inside the DEM.", "",
                  "| truth | craters | recall | precision (detections ≥ the smallest truth / 1.5) | median ΔD/D |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['truth']} | {r['n']} | {_f(r['recall'], 3)} | {_f(r['precision_above'], 3)} | "
                  f"{_f(r['diameter_bias'], 3)} |" for r in cr["rows"]]
    lines += ["", "### Sites on the real pole, checked against NASA's Artemis III regions", "",
              "Cells of 1 km within 6° of the pole (NASA's own bound; the random rankings draw from the same cells), "
              "sites ≥ 5 km apart; a region is matched when a site lies inside its polygon. p = P(random ≥ observed) "
              "over 1000 random rankings.", "",
              "| scorer | cells to | top N | regions matched | random: mean / p | random among gated cells: mean / p "
              "| wall s |", "|---|---|---|---|---|---|---|"]
    for s in res.get("sites", []):
        if "error" in s:
            lines.append(f"| {s['scorer']} | {s.get('region_lat', -84):g}° | error: {s['error']} |||||")
            continue
        for n, m in s["top_n"].items():
            g = m.get("random_eligible")
            lines.append(f"| {s['scorer']} | {s['region_lat']:g}° | {n} | {m['regions_matched']} "
                         f"({', '.join(m['regions'])}) | {m['random_mean']:.2f} / {m['p_value']:.3f} | "
                         f"{(_f(g['random_mean']) + ' / ' + _f(g['p_value'], 3)) if g else '—'} | {s['wall_s']:.0f} |")
    lines.append("")
    for s in res.get("sites", []):
        ref = s.get("reference") or {}
        if "error" in s or not ref:
            continue
        pct = round(100 * ref.get("score_percentile_mean", float("nan")))
        line = (f"- {s['scorer']} scorer, cells to {s['region_lat']:g}°: Wueller's sites ({ref.get('in_grid')} in "
                f"the grid) sit at the {_ordinal(pct)} percentile of the score on average (50th at random; ties "
                "averaged)")
        g = s.get("reference_gates")
        if g:
            line += (f"; {g['pass_gates']} of {g['in_grid']} pass the gates ({g['psr_within_reach']} have a PSR "
                     f"within reach on the 240 m PSR map, {g['slope_ok']} a mean slope within the lander's limit); "
                     f"on the stay measure alone they sit at the {_ordinal(round(100 * g['stay_percentile_mean']))} "
                     "percentile")
        lines.append(line + ".")
    rc = res.get("rule_criteria")
    if rc:
        lines += ["", "What the learned scorer's rule label (LunarSite's thresholds) asks, against what NASA's "
                      f"regions hold ({rc['cells_in_regions']:,} of the {rc['cells']:,} cells within 6° lie in a "
                      "region):", "",
                  "| criterion | share of region cells passing | share of other cells passing |", "|---|---|---|"]
        lines += [f"| {r['criterion']} | {r['regions']:.3f} | {r['elsewhere']:.3f} |" for r in rc["criteria"]]
        lines += ["", "| median of | region cells | other cells |", "|---|---|---|"]
        lines += [f"| {m['feature']} | {m['regions']:.2f} | {m['elsewhere']:.2f} |" for m in rc["medians"]]
    return "\n".join(lines)
