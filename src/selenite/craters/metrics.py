"""Object-level and pixel-level scores of crater detections against a truth catalogue.

A detection matches a true crater when its centre lies within ``0.5 · D_true`` of the true centre and the
diameter ratio max(D, D_true)/min(D, D_true) is at most 1.5. Matching is one-to-one: candidate pairs are taken
in order of increasing cost (centre offset / D_true + |ln diameter ratio|), each crater used at most once.
Pixel-level scores compare one-pixel rim rings rasterised from both tables (the measure LunarSite reported)
so the two can be set side by side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from selenite.craters.rims import ring_mask
from selenite.errors import InputError

MOON_RADIUS_M = 1_737_400.0


@dataclass
class ObjectScores:
    n_detected: int
    n_truth: int
    n_matched: int
    precision: float
    recall: float
    f1: float
    position_error_median: float       # centre offset / D_true, matched pairs
    diameter_error_median: float       # |D − D_true| / D_true, matched pairs
    diameter_bias_median: float        # (D − D_true) / D_true
    units: str

    def as_dict(self) -> dict:
        return asdict(self)


def _coordinates(df: pd.DataFrame, frame: str) -> tuple[np.ndarray, np.ndarray]:
    if frame == "px":
        return df[["x_px", "y_px"]].to_numpy(float), df["diameter_px"].to_numpy(float)
    lon, lat = np.radians(df["lon"].to_numpy(float)), np.radians(df["lat"].to_numpy(float))
    xyz = MOON_RADIUS_M * np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    return xyz, df["diameter_m"].to_numpy(float)


def common_frame(detected: pd.DataFrame, truth: pd.DataFrame) -> str:
    """'px' when both tables have pixel coordinates, else 'm' when both have lon/lat/diameter_m."""
    if {"x_px", "y_px", "diameter_px"} <= set(detected) and {"x_px", "y_px", "diameter_px"} <= set(truth):
        return "px"
    if {"lon", "lat", "diameter_m"} <= set(detected) and {"lon", "lat", "diameter_m"} <= set(truth):
        return "m"
    raise InputError("the detections and the truth share no coordinates: both need x_px/y_px/diameter_px, "
                     "or both lon/lat with a diameter")


def match_craters(detected: pd.DataFrame, truth: pd.DataFrame, *, frame: str | None = None,
                  max_offset: float = 0.5, max_ratio: float = 1.5) -> np.ndarray:
    """One-to-one matches as an (n, 2) array of (detected index, truth index) positions."""
    frame = frame or common_frame(detected, truth)
    if len(detected) == 0 or len(truth) == 0:
        return np.zeros((0, 2), int)
    p_d, d_d = _coordinates(detected, frame)
    p_t, d_t = _coordinates(truth, frame)
    tree = cKDTree(p_d)
    pairs_t, pairs_d = [], []
    for it, near in enumerate(tree.query_ball_point(p_t, max_offset * d_t)):
        pairs_t.extend([it] * len(near))
        pairs_d.extend(near)
    if not pairs_t:
        return np.zeros((0, 2), int)
    it, idd = np.array(pairs_t), np.array(pairs_d)
    ratio = np.maximum(d_d[idd], d_t[it]) / np.minimum(d_d[idd], d_t[it])
    ok = ratio <= max_ratio
    it, idd, ratio = it[ok], idd[ok], ratio[ok]
    cost = np.linalg.norm(p_d[idd] - p_t[it], axis=1) / d_t[it] + np.log(ratio)
    used_d = np.zeros(len(detected), bool)
    used_t = np.zeros(len(truth), bool)
    out = []
    for k in np.argsort(cost, kind="stable"):
        if not used_d[idd[k]] and not used_t[it[k]]:
            used_d[idd[k]] = used_t[it[k]] = True
            out.append((idd[k], it[k]))
    return np.array(out, int).reshape(-1, 2)


def object_scores(detected: pd.DataFrame, truth: pd.DataFrame, *, frame: str | None = None) -> ObjectScores:
    frame = frame or common_frame(detected, truth)
    m = match_craters(detected, truth, frame=frame)
    n_d, n_t, n_m = len(detected), len(truth), len(m)
    p = n_m / n_d if n_d else 0.0
    r = n_m / n_t if n_t else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    if n_m:
        p_d, d_d = _coordinates(detected.iloc[m[:, 0]], frame)
        p_t, d_t = _coordinates(truth.iloc[m[:, 1]], frame)
        pos = float(np.median(np.linalg.norm(p_d - p_t, axis=1) / d_t))
        rel = (d_d - d_t) / d_t
        dia, bias = float(np.median(np.abs(rel))), float(np.median(rel))
    else:
        pos = dia = bias = float("nan")
    return ObjectScores(n_d, n_t, n_m, p, r, f1, pos, dia, bias, "fraction of D_true")


def pixel_scores(detected: pd.DataFrame, truth: pd.DataFrame, shape: tuple[int, int] | None = None) -> dict:
    """IoU, precision and recall of one-pixel rim rings drawn from both tables (pixel coordinates)."""
    if shape is None:
        ext = pd.concat([detected[["x_px", "y_px", "diameter_px"]], truth[["x_px", "y_px", "diameter_px"]]])
        shape = (int(np.ceil((ext.y_px + ext.diameter_px / 2).max())) + 2,
                 int(np.ceil((ext.x_px + ext.diameter_px / 2).max())) + 2)
    a = ring_mask(shape, detected.x_px, detected.y_px, detected.diameter_px).astype(bool)
    b = ring_mask(shape, truth.x_px, truth.y_px, truth.diameter_px).astype(bool)
    return {**_mask_scores(a, b), "shape": list(shape)}


def _mask_scores(a: np.ndarray, b: np.ndarray) -> dict:
    """IoU, precision and recall of predicted mask ``a`` against true mask ``b``."""
    inter, union = int((a & b).sum()), int((a | b).sum())
    return {"rim_iou": inter / union if union else 0.0, "rim_precision": inter / max(int(a.sum()), 1),
            "rim_recall": inter / max(int(b.sum()), 1)}


def rim_map_scores(prob: np.ndarray, truth: pd.DataFrame, threshold: float = 0.5) -> dict:
    """The network's rim map thresholded against one-pixel truth rings: LunarSite's pixel measure."""
    b = ring_mask(prob.shape, truth.x_px, truth.y_px, truth.diameter_px).astype(bool)
    return _mask_scores(prob >= threshold, b)


def scene_scores(detections: list[pd.DataFrame], scenes, min_diameter_px: float) -> dict:
    """Object scores over several scenes, micro-averaged (counts summed), in pixels. A scene's truth is its
    craters of at least ``min_diameter_px`` whose centres lie inside its array; the centre and diameter
    errors are the median over scenes of each scene's median."""
    n = np.zeros(3)
    pos, dia = [], []
    for d, s in zip(detections, scenes, strict=True):
        truth = s.craters[s.craters.diameter_px >= min_diameter_px]
        truth = truth[(truth.x_px >= 0) & (truth.y_px >= 0) & (truth.x_px < s.array.shape[1])
                      & (truth.y_px < s.array.shape[0])]
        sc = object_scores(d, truth, frame="px")
        n += (sc.n_detected, sc.n_truth, sc.n_matched)
        if sc.n_matched:
            pos.append(sc.position_error_median)
            dia.append(sc.diameter_error_median)
    p, r = n[2] / max(n[0], 1), n[2] / max(n[1], 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "n_detected": int(n[0]),
            "n_truth": int(n[1]), "n_matched": int(n[2]),
            "position_error": float(np.median(pos)) if pos else float("nan"),
            "diameter_error": float(np.median(dia)) if dia else float("nan")}
