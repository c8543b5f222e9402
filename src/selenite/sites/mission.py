"""The mission scorer: cells ranked by what a crewed south-pole landing needs, from NASA's public criteria.

NASA's Artemis III criteria are qualitative (Artemis III candidate regions, NASA 2022 and 2024): regions within
6° of the pole; a safe landing (slope, terrain); "continuous access to sunlight during the 6.5-day stay" for power
and temperature; ease of communication with Earth; close enough to a permanently shadowed region (PSR) for a
moonwalk; and "launch window availability": a site is worth more when more landing dates work. The score of a
cell is that last criterion made a number: the share of all start times over the period (18.6 years by default)
from which a 6.5-day stay keeps some of the Sun *and* some of the Earth in view throughout, at the cell's best
spot (``sun_earth_stay_max_pct``: a 100 m site can sit anywhere in a 1 km cell). The other criteria are gates
(assumptions, printed in every report): the cell's mean slope at most the lander's tilt limit, a PSR within
walking distance of the cell centre, the cell within 6° of the pole and, where a lander-scale DEM gave one, the
Monte-Carlo touchdown hazard at most ``hazard_max_prob``. Ties are broken by the mean Sun visibility. Nothing here
is fitted: no label, no region and no published site informs the score.

Reasons: exact interventional Shapley values (Lundberg & Lee 2017; Janzing et al. 2020) of the score over its
inputs, against a background of region cells: with four or five inputs every coalition is evaluated (16 or 32),
so the values add up exactly to the score minus the background's mean score (the "bias").
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd

from selenite.errors import InputError

STAY = "sun_earth_stay_max_pct"
INPUTS = (STAY, "slope_mean_deg", "psr_distance_km", "lat")
HAZARD = "hazard_prob"
TIEBREAK = "sun_mean_pct"


def inputs_of(df: pd.DataFrame) -> tuple[str, ...]:
    """The score's inputs: INPUTS, and the touchdown hazard where some cell has one."""
    has_hazard = HAZARD in df and np.isfinite(df[HAZARD].to_numpy(float)).any()
    return INPUTS + ((HAZARD,) if has_hazard else ())


def mission_gates(cfg, inputs: tuple[str, ...] = INPUTS) -> dict[str, str]:
    """The gates and their thresholds, in words (for reports and the model card)."""
    gates = {"slope_mean_deg": f"cell mean slope ≤ {cfg.tilt_max_deg:g}° (the lander's tilt limit)",
             "psr_distance_km": f"a permanently shadowed area within {cfg.mission_psr_km:g} km of the cell centre",
             "lat": f"within {cfg.mission_pole_deg:g}° of the pole"}
    if HAZARD in inputs:
        gates[HAZARD] = (f"where a lander-scale DEM covers the cell, at most {cfg.hazard_max_prob:g} of the "
                         "Monte-Carlo touchdowns fail")
    return gates


def require_inputs(df: pd.DataFrame) -> None:
    missing = [c for c in INPUTS + (TIEBREAK,) if c not in df]
    if missing:
        raise InputError(f"the mission scorer needs {', '.join(missing)}: give a terrain visibility run (--light "
                         f"RUN) or a DEM to compute the light from, with a PSR mask; or use --scorer learned")


def mission_function(cfg, inputs: tuple[str, ...] = INPUTS):
    """(score, gate): functions of rows X of ``inputs``; a NaN gate input fails its gate (an unknown hazard
    passes: no lander-scale DEM there), a NaN stay scores 0."""
    pole_lat = -90.0 + cfg.mission_pole_deg

    def gate(X: np.ndarray) -> np.ndarray:
        slope, psr_km, lat = X[..., 1], X[..., 2], X[..., 3]
        with np.errstate(invalid="ignore"):
            ok = (slope <= cfg.tilt_max_deg) & (psr_km <= cfg.mission_psr_km) & (lat <= pole_lat)
            if len(inputs) > 4:
                ok &= ~(X[..., 4] > cfg.hazard_max_prob)
        return ok

    def score(X: np.ndarray) -> np.ndarray:
        return np.where(gate(X), np.nan_to_num(X[..., 0], nan=0.0) / 100.0, 0.0)

    return score, gate


def exact_shapley(f, X: np.ndarray, background: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, float]:
    """Exact interventional Shapley values of ``f`` at each row of X (n, F) against ``background`` (B, F):
    v(S) = mean over the background of f(x on S, background elsewhere); returns (n, F) values and v(∅)."""
    n, F = X.shape
    weights = {s: factorial(s) * factorial(F - s - 1) / factorial(F) for s in range(F)}
    phi = np.zeros((n, F))
    bias = float(f(background).mean())
    for lo in range(0, n, chunk):
        x = X[lo:lo + chunk]
        value = {}
        for size in range(F + 1):
            for S in combinations(range(F), size):
                mask = np.zeros(F, bool)
                mask[list(S)] = True
                Z = np.where(mask, x[:, None, :], background[None, :, :])
                value[S] = f(Z).mean(axis=1)
        for i in range(F):
            others = [j for j in range(F) if j != i]
            for size in range(F):
                for S in combinations(others, size):
                    with_i = tuple(sorted(S + (i,)))
                    phi[lo:lo + chunk, i] += weights[size] * (value[with_i] - value[S])
    return phi, bias


def mission_scores(df: pd.DataFrame, cfg, n_background: int = 128) -> dict:
    """Score, eligibility, tie-break score and Shapley values of every cell."""
    require_inputs(df)
    inputs = inputs_of(df)
    X = df[list(inputs)].to_numpy(float)
    f, gate = mission_function(cfg, inputs)
    score = f(X)
    eligible = gate(X)
    sun = np.nan_to_num(df[TIEBREAK].to_numpy(float), nan=0.0)
    raw = score + 1e-6 * sun                  # ties (e.g. many cells at 0 or 100 %) broken by the Sun's share
    rng = np.random.default_rng(cfg.seed)
    background = X[rng.choice(len(X), size=min(n_background, len(X)), replace=False)]
    phi, bias = exact_shapley(f, X, background)
    return {"score": score, "score_raw": raw, "eligible": eligible, "shap": phi, "bias": bias, "inputs": inputs}
