"""What ``selenite sites rank`` writes: scored cells (GeoPackage, GeoParquet, COG), the model and its card,
the ranked sites, and the validation against published regions and sites."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from selenite.errors import InputError
from selenite.runs import canonical_json
from selenite.sites import model as M
from selenite.sites.config import ASSUMPTIONS, SitesConfig
from selenite.sites.grid import CellGrid
from selenite.sites.rank import region_check, regions_from, top_sites

KEY_COLUMNS = ("sun_earth_stay_max_pct", "sun_stay_max_pct", "slope_mean_deg", "sun_mean_pct", "earth_mean_pct",
               "psr_frac", "psr_distance_km",
               "sun_earth_days_max", "crater_density_km2", "elevation_mean_m", "hazard_prob")


def labels_for(df: pd.DataFrame, cfg: SitesConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """(labels, labelled mask, description)."""
    if cfg.label == "rule":
        y = M.rule_labels(df, cfg.slope_max_deg, cfg.sun_min_pct, cfg.earth_min_pct)
        labelled = np.isfinite(df[list(M.RULE_INPUTS.values())].to_numpy(float)).all(axis=1)
        desc = {"kind": "rule", "slope_max_deg": cfg.slope_max_deg, "sun_min_pct": cfg.sun_min_pct,
                "earth_min_pct": cfg.earth_min_pct, "circular": True,
                "note": "the label is a function of three of the model's features: the model can only re-learn "
                        "it (its AUC measures that, not skill)"}
        return y, labelled, desc
    if "hazard_prob" not in df:
        raise InputError("the hazard label needs lander-scale hazard probabilities (--hazard-dem)")
    hp = df["hazard_prob"].to_numpy(float)
    labelled = np.isfinite(hp)
    y = (hp <= cfg.hazard_max_prob).astype(np.int8)
    return y, labelled, {"kind": "hazard", "circular": False, "hazard_max_prob": cfg.hazard_max_prob,
                         "note": "safe = at most this fraction of Monte-Carlo touchdowns fail on the lander-scale "
                                 "DEM; the model never sees that DEM, only the cell features"}


def eligible(cells: pd.DataFrame, cfg: SitesConfig) -> np.ndarray | None:
    """Which cells may be ranked: the mission scorer's gates; in hazard mode the Sun and Earth thresholds (when
    those are known); None: every cell."""
    if cfg.scorer == "mission":
        return cells["eligible"].to_numpy(bool)
    if cfg.label != "hazard":
        return None
    ok = np.ones(len(cells), bool)
    if "sun_mean_pct" in cells:
        ok &= cells["sun_mean_pct"].to_numpy(float) >= cfg.sun_min_pct
    if "earth_mean_pct" in cells:
        ok &= cells["earth_mean_pct"].to_numpy(float) >= cfg.earth_min_pct
    return ok


def _write_cells(tmp: dict, df: pd.DataFrame, grid: CellGrid) -> None:
    """cells.gpkg, cells.parquet and score.tif."""
    import geopandas as gpd

    from selenite.geo.raster import write_cog
    from selenite.geo.vector import write_vector

    gdf = gpd.GeoDataFrame(df, geometry=grid.polygons(df["row"].to_numpy(), df["col"].to_numpy()), crs=grid.crs)
    write_vector(gdf, tmp["cells.gpkg"], layer="cells")
    write_vector(gdf, tmp["cells.parquet"])
    img = np.full(grid.shape, np.nan, np.float32)
    img[df["row"], df["col"]] = df["score"]
    write_cog(tmp["score.tif"], img, crs=grid.crs, transform=grid.transform, nodata=np.nan)


def write_mission_outputs(tmp: dict, df: pd.DataFrame, meta: dict, grid: CellGrid, cfg: SitesConfig) -> None:
    """The mission scorer's cells (score, gates, exact Shapley values), its definition and card."""
    import json

    from selenite.sites import mission

    r = mission.mission_scores(df, cfg)
    df = df.copy()
    df["score"] = r["score"].astype(np.float32)
    df["score_raw"] = r["score_raw"]
    df["eligible"] = r["eligible"]
    df["label"] = np.int8(-1)                        # no label: nothing is learned
    for i, f in enumerate(r["inputs"]):
        df[f"shap_{f}"] = r["shap"][:, i].astype(np.float32)
    df["shap_bias"] = np.float32(r["bias"])
    _write_cells(tmp, df, grid)
    gates = mission.mission_gates(cfg, r["inputs"])
    stay = meta.get("stay_days")
    definition = {"score": f"share of start times over the light period from which a {stay:g}-day stay keeps "
                           "some Sun and some Earth in view throughout, at the cell's best spot "
                           f"({mission.STAY}, 0–1)", "gates": gates, "tiebreak": mission.TIEBREAK,
                  "reasons": "exact interventional Shapley values against 128 random cells of the region"}
    tmp["model.json"].write_text(json.dumps({"scorer": "mission", **definition}, indent=1) + "\n")
    mean_abs = {f: float(np.abs(r["shap"][:, i]).mean()) for i, f in enumerate(r["inputs"])}
    evaluation = {"scorer": "mission", "definition": definition, "features": list(r["inputs"]),
                  "cells": int(len(df)), "eligible_cells": int(r["eligible"].sum()),
                  "scored_above_zero": int((r["score"] > 0).sum()), "shap_bias": r["bias"],
                  "shap_mean_abs": dict(sorted(mean_abs.items(), key=lambda kv: -kv[1]))}
    tmp["evaluation.json"].write_text(canonical_json(evaluation) + "\n")
    lines = ["# selenite sites mission scorer — card", "",
             f"- Score: {definition['score']}.",
             "- Gates (assumptions from NASA's qualitative Artemis III criteria): " + "; ".join(gates.values())
             + ".",
             f"- Ties broken by {mission.TIEBREAK}. Nothing is fitted: no label, region or published site informs "
             "the score.",
             f"- Cells: {len(df)}, {evaluation['eligible_cells']} pass the gates, "
             f"{evaluation['scored_above_zero']} score above 0.",
             f"- Reasons: {definition['reasons']}; they add up to the score minus {r['bias']:.4f}."]
    tmp["model_card.md"].write_text("\n".join(lines) + "\n")


def write_model_outputs(tmp: dict, df: pd.DataFrame, meta: dict, grid: CellGrid, cfg: SitesConfig) -> None:
    if cfg.scorer == "mission":
        light = meta.get("light_computed") or {}
        if not light.get("stay_days"):
            raise InputError("the mission scorer needs the stay products of a terrain visibility run (--light RUN) "
                             "or light computed from the DEM; or use --scorer learned")
        write_mission_outputs(tmp, df, {**meta, **light}, grid, cfg)
        return
    features = list(meta["features"])
    y, labelled, label_desc = labels_for(df, cfg)
    baselines = {}
    if all(c in df for c in M.RULE_INPUTS.values()):
        baselines["rule (0/1)"] = M.rule_labels(df, cfg.slope_max_deg, cfg.sun_min_pct,
                                                cfg.earth_min_pct).astype(float)
        baselines["weighted sum"] = M.weighted_sum(df)
    if "slope_mean_deg" in df:
        baselines["mean slope alone (gentler = better)"] = -df["slope_mean_deg"].to_numpy(float)
    result = M.train_scorer(df, features, y, labelled, cfg, baselines)
    p, raw, shap = M.score(result, df)
    df = df.copy()
    df["label"] = np.where(labelled, y, -1).astype(np.int8)
    df["score"] = p.astype(np.float32)
    df["score_raw"] = raw.astype(np.float32)
    df["score_oof"] = result.oof.astype(np.float32)
    df["cv_fold"] = result.folds.astype(np.int16)
    for i, f in enumerate(features):
        df[f"shap_{f}"] = shap[:, i].astype(np.float32)
    df["shap_bias"] = shap[:, -1].astype(np.float32)
    _write_cells(tmp, df, grid)
    result.booster.save_model(str(tmp["model.json"]))
    mean_abs = {f: float(np.abs(shap[:, i]).mean()) for i, f in enumerate(features)}
    importance = sorted(mean_abs.items(), key=lambda kv: -kv[1])
    evaluation = {"scorer": "learned", "label": label_desc, "labelled_cells": int(labelled.sum()),
                  "positives": int(y[labelled].sum()),
                  "features": features, "shap_mean_abs": dict(importance), **result.evaluation}
    tmp["evaluation.json"].write_text(canonical_json(evaluation) + "\n")
    tmp["model_card.md"].write_text(model_card(evaluation, meta, cfg))


def model_card(ev: dict, meta: dict, cfg: SitesConfig) -> str:
    sp, rnd = ev["spatial_cv"], ev["random_cv"]
    cal = ev["spatial_cv_calibrated"]
    lines = [
        "# selenite sites scorer — model card", "",
        f"- Trained: {datetime.now(UTC).date().isoformat()}, XGBoost (hist), {cfg.n_trees} trees, depth "
        f"{cfg.max_depth}, learning rate {cfg.learning_rate}; isotonic calibration on spatial out-of-fold scores.",
        f"- Label: {ev['label']['kind']}" + (f" (slope ≤ {cfg.slope_max_deg}°, Sun ≥ {cfg.sun_min_pct} %, Earth ≥ "
                                            f"{cfg.earth_min_pct} %: assumptions)" if ev["label"]["kind"] == "rule"
                                            else ""),
        f"- Cells: {meta['cells']} of {cfg.cell_m:g} m, {ev['labelled_cells']} labelled, {ev['positives']} positive.",
        f"- Data: DEM {meta.get('dem', {})}; light {meta.get('light', {})}; craters {meta.get('craters', 'none')}.",
        f"- Features ({len(ev['features'])}): {', '.join(ev['features'])}.",
        "",
        "| evaluation | AUC | average precision | Brier | ECE |", "|---|---|---|---|---|",
    ]

    def row(name, m):
        return (f"| {name} | {m.get('auc', float('nan')):.3f} | {m.get('average_precision', float('nan')):.3f} | "
                f"{m.get('brier', float('nan')):.4f} | {m.get('ece', float('nan')):.4f} |")

    lines += [row(f"spatial block CV ({cfg.cv_block_km:g} km blocks, {cfg.cv_folds} folds)", sp),
              row("spatial CV, calibrated (cross-fitted)", cal), row("random CV (leaky)", rnd)]
    lines += [row(f"baseline: {k}", v) for k, v in ev["baselines"].items()]
    if ev["label"].get("circular"):
        lines += ["", "The rule label is a function of three features the model sees: a high AUC here shows that "
                      "the model re-learns the rule, not that it predicts anything new."]
    lines += ["", "Limits: trained on one region's cells; scores are relative to this label and these inputs."]
    return "\n".join(lines) + "\n"


def _why(row: pd.Series, features: list[str], n: int = 3) -> str:
    contrib = sorted(((f, float(row[f"shap_{f}"])) for f in features), key=lambda kv: -abs(kv[1]))[:n]
    return "; ".join(f"{f} {v:+.2f}" for f, v in contrib)


def write_top_sites(tmp: dict, cells: pd.DataFrame, cfg: SitesConfig) -> None:
    import geopandas as gpd

    from selenite.geo.crs import GEOGRAPHIC, as_crs
    from selenite.geo.vector import write_vector

    features = [c[5:] for c in cells.columns if c.startswith("shap_") and c != "shap_bias"]
    idx = top_sites(cells["score"].to_numpy(float), cells["lon"].to_numpy(), cells["lat"].to_numpy(), cfg.top,
                    cfg.min_separation_km, eligible=eligible(cells, cfg),
                    tiebreak=cells["score_raw"].to_numpy(float))
    top = cells.iloc[idx]
    out = pd.DataFrame({"rank": np.arange(1, len(idx) + 1), "cell_id": top["cell_id"].to_numpy(),
                        "lon": top["lon"].to_numpy().round(5), "lat": top["lat"].to_numpy().round(5),
                        "score": top["score"].to_numpy().round(4), "label": top["label"].to_numpy()})
    for c in KEY_COLUMNS:
        if c in top:
            out[c] = top[c].to_numpy().round(3)
    out["why"] = [_why(r, features) for _, r in top.iterrows()]
    out.to_csv(tmp["top_sites.csv"], index=False)
    g = gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(out["lon"], out["lat"]), crs=as_crs(GEOGRAPHIC))
    write_vector(g, tmp["top_sites.geojson"])


def validation(cells: pd.DataFrame, cfg: SitesConfig, region_gdf, reference_sites) -> dict:
    """The check against region polygons (random baseline: random rankings of every cell of the region; with
    gates, also random rankings of the cells that pass them) and against published sites."""
    out: dict = {"assumptions": {k: ASSUMPTIONS[k] for k in ("match_km", "min_separation_km")}}
    score = cells["score"].to_numpy(float)
    lon, lat = cells["lon"].to_numpy(), cells["lat"].to_numpy()
    elig = eligible(cells, cfg)
    ranked = score if elig is None else np.where(elig, score, np.nan)
    region_cells = np.flatnonzero(np.isfinite(score))
    if region_gdf is not None:
        top_ns = tuple(sorted(set(cfg.validate_top)))
        raw = cells["score_raw"].to_numpy(float)
        sites = top_sites(ranked, lon, lat, max(top_ns), cfg.min_separation_km, tiebreak=raw)
        top_ns = tuple(n for n in top_ns if n <= len(sites)) or (len(sites),)
        others = None if elig is None else {"eligible": np.flatnonzero(elig & np.isfinite(score))}
        out["regions"] = region_check(regions_from(region_gdf), lon, lat, ranked, sites, region_cells, top_ns,
                                      cfg.match_km, cfg.min_separation_km, cfg.n_random, cfg.seed, tiebreak=raw,
                                      other_baselines=others)
        out["regions"]["sites_available"] = int(len(sites))
    if reference_sites is not None:
        out["reference_sites"] = reference_comparison(cells, reference_sites)
    return out


def reference_comparison(cells: pd.DataFrame, path) -> dict:
    """Published sites (e.g. Wueller et al. 2026's 130, with days of sunlight per year ``SunDays*`` and of
    Sun + Earth ``SunEarth*``): our features at the cell holding each site, rank correlations with theirs, and
    where our score ranks those cells."""
    from scipy.stats import spearmanr

    from selenite.geo.crs import as_crs, lonlat_to_map
    from selenite.terrain.references import read_reference_sites

    sites = read_reference_sites(path)
    x, y = lonlat_to_map(as_crs("IAU_2015:30135"), sites["lon"].to_numpy(), sites["lat"].to_numpy())
    # the cell holding each site: cells are squares of cell_m centred on x_m, y_m
    cell_m = float(np.median(np.diff(np.unique(cells["x_m"].to_numpy())))) if len(cells) > 1 else 1.0
    key = {(round(a / cell_m - 0.5), round(b / cell_m - 0.5)): i
           for i, (a, b) in enumerate(zip(cells["x_m"].to_numpy(), cells["y_m"].to_numpy(), strict=True))}
    hit = [key.get((int(np.floor(a / cell_m)), int(np.floor(b / cell_m)))) for a, b in zip(x, y, strict=True)]
    covered = np.array([h is not None for h in hit])
    res: dict = {"sites": int(len(sites)), "in_grid": int(covered.sum())}
    if not covered.any():
        return res
    idx = [h for h in hit if h is not None]
    rows = cells.iloc[idx]
    pct = cells["score"].rank(pct=True).to_numpy()
    res["score_percentile_mean"] = float(np.mean(pct[idx]))
    res["score_percentile_expected_at_random"] = 0.5
    for name, ours in (("sun_days", "sun_mean_pct"), ("sun_earth_days", "sun_earth_days_max")):
        if name in sites and ours in rows:
            theirs = sites.loc[covered, name].to_numpy(float)
            mine = rows[ours].to_numpy(float)
            ok = np.isfinite(theirs) & np.isfinite(mine)
            if ok.sum() >= 3:
                rho, pv = spearmanr(theirs[ok], mine[ok])
                res[f"spearman_{name}_vs_{ours}"] = {"rho": float(rho), "p_value": float(pv), "n": int(ok.sum())}
    return res
