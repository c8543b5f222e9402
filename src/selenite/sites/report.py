"""Figures and report of ``selenite sites rank``, rebuilt from the run folder's files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from selenite.report.html import Section, png_data_uri, write_report
from selenite.sites.config import ASSUMPTIONS, SitesConfig
from selenite.sites.grid import CellGrid


def _raster(grid: CellGrid, cells: pd.DataFrame, column: str) -> np.ndarray:
    img = np.full(grid.shape, np.nan)
    img[cells["row"], cells["col"]] = cells[column]
    return img


def map_figure(grid: CellGrid, cells: pd.DataFrame, top: pd.DataFrame, region_gdf,
               score_label: str = "score (calibrated probability)"):
    """Hillshade of the cells' mean elevation, the score over it, the regions and the top sites (polar map)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selenite.geo.crs import lonlat_to_map

    ext = [grid.x0 / 1e3, (grid.x0 + grid.ncols * grid.cell_m) / 1e3, (grid.y0 - grid.nrows * grid.cell_m) / 1e3,
           grid.y0 / 1e3]
    fig, ax = plt.subplots(figsize=(8, 7.5))
    if "elevation_mean_m" in cells:
        z = _raster(grid, cells, "elevation_mean_m")
        gy, gx = np.gradient(np.nan_to_num(z, nan=np.nanmean(z)), grid.cell_m)
        shade = np.clip(0.5 + 0.5 * (-gx - gy) / np.sqrt(2) / max(np.nanpercentile(np.hypot(gx, gy), 95), 1e-6),
                        0, 1)
        ax.imshow(np.where(np.isfinite(z), shade, np.nan), cmap="gray", extent=ext, interpolation="nearest")
    im = ax.imshow(_raster(grid, cells, "score"), cmap="viridis", alpha=0.6, extent=ext, vmin=0, vmax=1,
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.7, label=score_label)
    if region_gdf is not None:
        for name, geom in zip(region_gdf["name"], region_gdf.geometry, strict=True):
            polys = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
            for poly in polys:
                lo, la = np.asarray(poly.exterior.coords).T
                x, y = lonlat_to_map(grid.crs, lo, la)
                ax.plot(np.asarray(x) / 1e3, np.asarray(y) / 1e3, color="orange", lw=1.2)
            cx, cy = lonlat_to_map(grid.crs, geom.centroid.x, geom.centroid.y)
            ax.text(float(cx) / 1e3, float(cy) / 1e3, name, fontsize=6, color="orange")
    if len(top):
        x, y = lonlat_to_map(grid.crs, top["lon"].to_numpy(), top["lat"].to_numpy())
        ax.scatter(np.asarray(x) / 1e3, np.asarray(y) / 1e3, s=14, facecolors="none", edgecolors="red", lw=0.8,
                   label=f"top {len(top)} sites")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("x (km, polar stereographic)")
    ax.set_ylabel("y (km)")
    return fig


def shap_figure(cells: pd.DataFrame, features: list[str], n: int = 15, unit: str = "log-odds"):
    """Mean |SHAP| per feature and, per feature, every cell's SHAP value coloured by its feature value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imp = sorted(features, key=lambda f: -np.abs(cells[f"shap_{f}"]).mean())[:n][::-1]
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 0.35 * len(imp) + 1.5), sharey=True)
    a0.barh(range(len(imp)), [np.abs(cells[f"shap_{f}"]).mean() for f in imp], color="steelblue")
    a0.set_yticks(range(len(imp)), imp, fontsize=8)
    a0.set_xlabel(f"mean |SHAP| ({unit})")
    rng = np.random.default_rng(0)
    sub = cells.sample(min(len(cells), 5000), random_state=0)
    for i, f in enumerate(imp):
        v = sub[f].to_numpy(float)
        lo, hi = np.nanpercentile(v, 5), np.nanpercentile(v, 95)
        c = np.clip((v - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(v)
        a1.scatter(sub[f"shap_{f}"], i + rng.uniform(-0.3, 0.3, len(sub)), c=c, cmap="coolwarm", s=2,
                   rasterized=True)
    a1.axvline(0, color="k", lw=0.5)
    a1.set_xlabel("SHAP value per cell (colour: feature value, low → high)")
    fig.tight_layout()
    return fig


def _metric_rows(ev: dict) -> list[list[object]]:
    def fmt(m, k, d=3):
        v = m.get(k)
        return "—" if v is None else f"{v:.{d}f}"

    rows = []
    named = [("spatial block CV", ev["spatial_cv"]), ("spatial CV, calibrated (cross-fitted)",
                                                       ev["spatial_cv_calibrated"]),
             ("random CV (leaky, as LunarSite)", ev["random_cv"])]
    named += [(f"baseline: {k}", v) for k, v in ev["baselines"].items()]
    for name, m in named:
        rows.append([name, m.get("n"), m.get("positives"), fmt(m, "auc"), fmt(m, "average_precision"),
                     fmt(m, "brier", 4), fmt(m, "ece", 4)])
    return rows


def write_sites_report(tmp: dict, root: Path, grid: CellGrid, cfg: SitesConfig, region_gdf) -> None:
    """The figures (files) and report.html of a sites run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = pd.read_parquet(root / "cells.parquet")
    ev = json.loads((root / "evaluation.json").read_text())
    top = pd.read_csv(root / "top_sites.csv")
    mission = ev.get("scorer") == "mission"
    fig = map_figure(grid, cells, top, region_gdf, "score: share of landing times with a 6.5-day Sun + Earth stay"
                     if mission else "score (calibrated probability)")
    fig.savefig(tmp["figures/map.png"], dpi=110, bbox_inches="tight", metadata={"Software": None})
    fig = shap_figure(cells, ev["features"], unit="score" if mission else "log-odds")
    fig.savefig(tmp["figures/shap_summary.png"], dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close("all")
    sections = sites_sections(root, cfg, Path(tmp["figures/map.png"]), Path(tmp["figures/shap_summary.png"]))
    write_report(tmp["report.html"], "selenite sites rank", sections, str(root))


def _learned_section(ev: dict, shap_png: Path) -> Section:
    s = Section("Landing sites: scorer")
    lab = ev["label"]
    s.paragraphs.append(f"Learned scorer (XGBoost). Label: {lab['kind']}; {ev['labelled_cells']:,} labelled cells, "
                        f"{ev['positives']:,} positive. " + (lab.get("note", "")))
    s.tables.append((["evaluation", "cells", "positives", "AUC", "average precision", "Brier", "ECE"],
                     _metric_rows(ev)))
    s.figures.append((png_data_uri(shap_png.read_bytes()), "SHAP: what drives the score (exact TreeSHAP, log-odds "
                                                           "of the uncalibrated model)"))
    return s


def _mission_section(ev: dict, shap_png: Path) -> Section:
    d = ev["definition"]
    s = Section("Landing sites: scorer")
    s.paragraphs.append(f"Mission scorer: the score is the {d['score']}. Gates (assumptions from NASA's qualitative "
                        f"Artemis III criteria): {'; '.join(d['gates'].values())}. Ties broken by {d['tiebreak']}. "
                        "Nothing is fitted: no label, region or published site informs the score.")
    s.paragraphs.append(f"{ev['cells']:,} cells, {ev['eligible_cells']:,} pass the gates, "
                        f"{ev['scored_above_zero']:,} score above 0.")
    s.figures.append((png_data_uri(shap_png.read_bytes()), f"Reasons: {d['reasons']} (they add up to the score "
                                                           f"minus {ev['shap_bias']:.3f})"))
    return s


def sites_sections_from_run(root: Path) -> list[Section]:
    """The report sections of a finished sites run, from its files (for reports that gather several stages)."""
    root = Path(root)
    cfg = SitesConfig.model_validate(json.loads((root / "manifest.json").read_text())["params"]["config"])
    return sites_sections(root, cfg, root / "figures" / "map.png", root / "figures" / "shap_summary.png")


def sites_sections(root: Path, cfg: SitesConfig, map_png: Path, shap_png: Path) -> list[Section]:
    ev = json.loads((root / "evaluation.json").read_text())
    top = pd.read_csv(root / "top_sites.csv")
    meta = json.loads((root / "features.json").read_text())
    sections = []
    s = Section("Landing sites: inputs and cells")
    s.paragraphs.append(f"{meta['cells']:,} cells of {cfg.cell_m:g} m poleward of {cfg.region_lat}° "
                        f"(polar stereographic, true scale at the pole), {len(ev['features'])} features.")
    if meta.get("dem"):
        s.paragraphs.append(f"DEM read onto the cells at {meta['dem']['pixels_per_cell']} × "
                            f"{meta['dem']['pixels_per_cell']} pixels per cell, {meta['dem']['read']}.")
    if meta.get("light_computed"):
        lc = meta["light_computed"]
        s.paragraphs.append(f"Sun and Earth visibility computed from the DEM resampled to {lc['pixel_m']:.0f} m, "
                            f"{lc['azimuths']} azimuths, {lc['instants']} instants from {lc['start']} to "
                            f"{lc['end']} every {lc['step']} ({lc['note']}).")
    if meta.get("hazard"):
        s.paragraphs.append(f"Lander-scale hazard from Monte-Carlo touchdowns on {meta['hazard']['cells']} covered "
                            f"cells.")
    s.tables.append((["assumption", "value", "meaning"],
                     [[k, getattr(cfg, k), v] for k, v in ASSUMPTIONS.items()]))
    sections.append(s)
    sections.append(_mission_section(ev, shap_png) if ev.get("scorer") == "mission"
                    else _learned_section(ev, shap_png))
    s = Section("Landing sites: top sites")
    s.figures.append((png_data_uri(map_png.read_bytes()), "Score over the hillshade, regions (orange) and top sites "
                                                          "(red)"))
    cols = [c for c in ("rank", "lon", "lat", "score", "slope_mean_deg", "sun_mean_pct", "earth_mean_pct",
                        "psr_distance_km", "hazard_prob", "why") if c in top]
    s.tables.append((cols, top[cols].head(20).values.tolist()))
    sections.append(s)
    vpath = root / "validation.json"
    if vpath.exists():
        v = json.loads(vpath.read_text())
        s = Section("Landing sites: validation")
        if "regions" in v:
            r = v["regions"]
            s.paragraphs.append(f"A site matches a region when it lies within {r['match_km']:g} km of its polygon "
                                f"(geodesic, on the sphere); random baseline: {r['n_random']} random rankings of "
                                f"the same cells with the same {cfg.min_separation_km:g} km separation.")
            s.tables.append((["top N", "regions matched", "random mean", "random 95th pct", "p-value",
                              "random among gated cells: mean / p", "regions"],
                             [[n, m["regions_matched"], f"{m['random_mean']:.2f}", f"{m['random_p95']:.0f}",
                               f"{m['p_value']:.3f}", (f"{m['random_eligible']['random_mean']:.2f} / "
                                                       f"{m['random_eligible']['p_value']:.3f}")
                               if "random_eligible" in m else "—", ", ".join(m["regions"])]
                              for n, m in r["top_n"].items()]))
            s.tables.append((["region", "best site rank", "nearest site km", "best cell rank", "cells inside"],
                             [[p["region"], p["best_site_rank"], None if p["nearest_site_km"] is None
                               else f"{p['nearest_site_km']:.1f}", p["best_cell_rank"], p["cells_inside"]]
                              for p in r["per_region"]]))
        if "reference_sites" in v:
            rs = v["reference_sites"]
            rows = [[k, f"{m['rho']:.3f}", f"{m['p_value']:.2g}", m["n"]] for k, m in rs.items()
                    if k.startswith("spearman_")]
            s.paragraphs.append(f"Reference sites: {rs['in_grid']} of {rs['sites']} inside the grid; our score puts "
                                f"them at the {100 * rs.get('score_percentile_mean', float('nan')):.0f}th percentile "
                                f"on average (50th at random).")
            if rows:
                s.tables.append((["comparison (Spearman)", "ρ", "p-value", "sites"], rows))
        sections.append(s)
    return sections
