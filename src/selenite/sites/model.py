"""Labels, the learned scorer and its honest evaluation.

- **Labels.** ``rule``: a cell is suitable when its mean slope, mean Sun visibility and mean Earth visibility
  pass thresholds (defaults: LunarSite's slope ≤ 5°, Sun ≥ 33 %, Earth ≥ 50 %: *assumptions*, not NASA
  numbers). A model trained on this rule can only re-learn it: its inputs contain the answer. ``hazard``: a cell
  is safe when Monte-Carlo touchdowns on a lander-scale DEM fail rarely (:mod:`selenite.sites.hazard`); the
  model sees only the cell-scale features, never the lander-scale DEM, so it predicts something it is not handed.
- **Spatial block cross-validation.** Cells are grouped in square blocks (default 20 km) and whole blocks are
  assigned to folds, so a cell is never scored by a model that trained on its neighbours; the random split
  that LunarSite used is measured beside it to show the gap.
- **Calibration.** Isotonic regression of the label on the out-of-fold scores; its own honesty is checked by
  cross-fitting (each fold calibrated by a map fitted on the other folds' out-of-fold scores).
- **Baselines**, scored the same way: the rule itself (a 0/1 score) and a weighted sum of the rule's inputs
  normalised to 0–1 (selene-base's approach).
- **SHAP**: exact TreeSHAP contributions from XGBoost (``pred_contribs``; Lundberg et al. 2020), in log-odds
  of the uncalibrated model; they add up to its margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from selenite.errors import InputError

RULE_INPUTS = {"slope": "slope_mean_deg", "sun": "sun_mean_pct", "earth": "earth_mean_pct"}


def rule_labels(df: pd.DataFrame, slope_max: float, sun_min: float, earth_min: float) -> np.ndarray:
    """1 where the cell passes every threshold, 0 where it fails one (cells with a missing input: 0)."""
    missing = [c for c in RULE_INPUTS.values() if c not in df]
    if missing:
        raise InputError(f"the rule label needs {', '.join(missing)}: give the rasters (--illumination, "
                         f"--earth) or let selenite compute them from the DEM")
    ok = (df["slope_mean_deg"] <= slope_max) & (df["sun_mean_pct"] >= sun_min) & (df["earth_mean_pct"] >= earth_min)
    return ok.to_numpy().astype(np.int8)


def weighted_sum(df: pd.DataFrame) -> np.ndarray:
    """Equal-weight sum of the rule inputs normalised to 0–1 over the cells (low slope, high Sun and Earth)."""
    def norm(v):
        v = v.to_numpy(float)
        lo, hi = np.nanmin(v), np.nanmax(v)
        return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    s = (1.0 - norm(df["slope_mean_deg"])) + norm(df["sun_mean_pct"]) + norm(df["earth_mean_pct"])
    return np.nan_to_num(s / 3.0, nan=0.0)


def spatial_folds(x: np.ndarray, y: np.ndarray, block_m: float, n_folds: int, seed: int) -> np.ndarray:
    """Fold of every cell: square blocks of ``block_m`` map metres, shuffled and dealt to folds in turn."""
    bx = np.floor(x / block_m).astype(np.int64)
    by = np.floor(y / block_m).astype(np.int64)
    keys, inv = np.unique(np.stack([bx, by], 1), axis=0, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(keys))
    fold_of_block = np.empty(len(keys), np.int64)
    fold_of_block[order] = np.arange(len(keys)) % n_folds
    return fold_of_block[inv.ravel()]


def random_folds(n: int, n_folds: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 1).permutation(n) % n_folds


def metrics(y: np.ndarray, s: np.ndarray) -> dict:
    """AUC, average precision, Brier score and expected calibration error (15 bins) of scores s for labels y."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y).astype(int)
    s = np.asarray(s, float)
    if np.isnan(s).any():                 # a score the baseline cannot give ranks last
        s = np.where(np.isnan(s), (np.nanmin(s) if np.isfinite(s).any() else 0.0) - 1.0, s)
    out = {"n": int(len(y)), "positives": int(y.sum())}
    if 0 < y.sum() < len(y):
        out["auc"] = float(roc_auc_score(y, s))
        out["average_precision"] = float(average_precision_score(y, s))
    if np.all((s >= 0) & (s <= 1)):
        out["brier"] = float(brier_score_loss(y, s))
        out["ece"] = expected_calibration_error(y, s)
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 15) -> float:
    """Σ_b (n_b / n) |mean(y) − mean(p)| over equal-width probability bins."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(err)


@dataclass
class ScorerResult:
    features: list[str]
    booster: object                      # xgboost.Booster trained on every labelled cell
    calibrator: object                   # sklearn IsotonicRegression fitted on the spatial out-of-fold scores
    oof: np.ndarray                      # spatial out-of-fold raw probabilities (NaN: unlabelled cell)
    oof_calibrated: np.ndarray           # cross-fitted calibrated out-of-fold probabilities
    folds: np.ndarray
    evaluation: dict = field(default_factory=dict)


def _xgb_params(cfg) -> dict:
    return {"objective": "binary:logistic", "tree_method": "hist", "max_depth": cfg.max_depth,
            "eta": cfg.learning_rate, "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 1.0,
            "seed": cfg.seed, "nthread": cfg.threads, "eval_metric": "logloss"}


def _fit(X, y, cfg):
    import xgboost as xgb

    return xgb.train(_xgb_params(cfg), xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=cfg.n_trees)


def _predict(booster, X) -> np.ndarray:
    import xgboost as xgb

    return booster.predict(xgb.DMatrix(X, missing=np.nan))


def cross_validate(X: np.ndarray, y: np.ndarray, folds: np.ndarray, cfg) -> np.ndarray:
    """Out-of-fold probabilities; a fold whose training part lacks one class scores its cells NaN."""
    oof = np.full(len(y), np.nan)
    for f in np.unique(folds):
        test = folds == f
        train = ~test
        if y[train].min() == y[train].max():
            continue
        oof[test] = _predict(_fit(X[train], y[train], cfg), X[test])
    return oof


def _isotonic(s, y):
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)


def cross_fitted_calibration(oof: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold's out-of-fold scores calibrated by a map fitted on the other folds only."""
    out = np.full(len(y), np.nan)
    ok = np.isfinite(oof)
    for f in np.unique(folds[ok]):
        test = ok & (folds == f)
        train = ok & (folds != f)
        if train.sum() < 2 or y[train].min() == y[train].max():
            continue
        out[test] = _isotonic(oof[train], y[train]).predict(oof[test])
    return out


def train_scorer(df: pd.DataFrame, features: list[str], y: np.ndarray, labelled: np.ndarray, cfg,
                 baselines: dict[str, np.ndarray] | None = None) -> ScorerResult:
    """Spatial-CV evaluation, calibration and the final model on every labelled cell."""
    X = df[features].to_numpy(np.float32)
    Xl, yl = X[labelled], y[labelled].astype(int)
    npos = int(yl.sum())
    if npos < cfg.min_positives or len(yl) - npos < cfg.min_positives:
        raise InputError(f"too few labelled cells of one class to train a scorer: {npos} positive, "
                         f"{len(yl) - npos} negative (at least {cfg.min_positives} of each needed); relax the "
                         f"label thresholds or widen the region")
    x = df["x_m"].to_numpy()[labelled]
    yy = df["y_m"].to_numpy()[labelled]
    folds = spatial_folds(x, yy, cfg.cv_block_km * 1000.0, cfg.cv_folds, cfg.seed)
    oof = cross_validate(Xl, yl, folds, cfg)
    oof_rand = cross_validate(Xl, yl, random_folds(len(yl), cfg.cv_folds, cfg.seed), cfg)
    oof_cal = cross_fitted_calibration(oof, yl, folds)
    ok = np.isfinite(oof)
    okc = np.isfinite(oof_cal)
    evaluation = {
        "spatial_cv": {**metrics(yl[ok], oof[ok]), "block_km": cfg.cv_block_km, "folds": cfg.cv_folds,
                       "blocks": int(len(np.unique(np.floor(np.stack([x, yy], 1) / (cfg.cv_block_km * 1000.0)),
                                                   axis=0)))},
        "spatial_cv_calibrated": metrics(yl[okc], oof_cal[okc]),
        "random_cv": metrics(yl[np.isfinite(oof_rand)], oof_rand[np.isfinite(oof_rand)]),
        "baselines": {name: metrics(yl, s[labelled]) for name, s in (baselines or {}).items()},
        "unscored_cells": int((~ok).sum()),
    }
    booster = _fit(Xl, yl, cfg)
    calibrator = _isotonic(oof[ok], yl[ok])
    full_oof = np.full(len(df), np.nan)
    full_oof[labelled] = oof
    full_cal = np.full(len(df), np.nan)
    full_cal[labelled] = oof_cal
    full_folds = np.full(len(df), -1)
    full_folds[labelled] = folds
    return ScorerResult(features, booster, calibrator, full_oof, full_cal, full_folds, evaluation)


def score(result: ScorerResult, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibrated probability, raw probability, SHAP matrix (n, F + 1: the last column is the bias))."""
    import xgboost as xgb

    X = df[result.features].to_numpy(np.float32)
    raw = _predict(result.booster, X)
    shap = result.booster.predict(xgb.DMatrix(X, missing=np.nan), pred_contribs=True)
    return result.calibrator.predict(raw), raw, shap
