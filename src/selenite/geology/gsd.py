"""Ground sample distance of a (near-nadir or orthorectified) descent image from control points on a map of
known resolution, by least squares (the Chang'E-6 paper's metrological calibration, N ≥ 5 points).

Model: map = s · R(θ) · image + t (a similarity; pixels are square). Solved linearly for a = s cos θ,
b = s sin θ, t; the GSD is s = √(a² + b²) metres per image pixel, its σ from the residual variance and the
normal matrix. Residuals are reported per point in metres and in image pixels, and leave-one-out (each point
against the fit of the others); a point whose leave-one-out residual exceeds ``max_residual_px`` image pixels
(default 2) raises a warning (a mismatched point, or a frame that is not orthographic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from selenite.errors import InputError

MIN_POINTS = 5
IMAGE_COLS = (("image_x", "image_y"), ("image_col", "image_row"), ("u", "v"))
MAP_COLS = (("map_x", "map_y"), ("x_m", "y_m"), ("map_col", "map_row"))


def read_control(path: str | Path, map_gsd: float | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(image px (N, 2), map metres (N, 2), how the map was given) from a CSV of control points.

    Image columns: image_x, image_y (pixels). Map columns: map_x, map_y in metres (any projected CRS), or
    map_col, map_row in map pixels with ``map_gsd`` (metres per map pixel; rows grow downwards).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such control-point file")
    try:
        df = pd.read_csv(path, sep=None, engine="python")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    icols = next((c for c in IMAGE_COLS if set(c) <= set(df.columns)), None)
    mcols = next((c for c in MAP_COLS if set(c) <= set(df.columns)), None)
    if icols is None or mcols is None:
        raise InputError(f"{path}: needs image_x, image_y and map_x, map_y (or map_col, map_row with --map-gsd) "
                         f"columns; found {list(df.columns)}")
    try:
        img = df[list(icols)].to_numpy(float)
        mp = df[list(mcols)].to_numpy(float)
    except ValueError:
        raise InputError(f"{path}: control-point coordinates must be numbers") from None
    if not (np.isfinite(img).all() and np.isfinite(mp).all()):
        raise InputError(f"{path}: a control point has a missing coordinate")
    how = "metres"
    if mcols == ("map_col", "map_row"):
        if map_gsd is None or not map_gsd > 0:
            raise InputError(f"{path}: map points are in pixels; give the map's metres per pixel with --map-gsd")
        mp = np.column_stack([mp[:, 0] * map_gsd, -mp[:, 1] * map_gsd])
        how = f"map pixels × {map_gsd:g} m"
    if len(img) < MIN_POINTS:
        raise InputError(f"{path}: {len(img)} control points; at least {MIN_POINTS} are needed")
    return img, mp, how


def calibrate(image_px: np.ndarray, map_m: np.ndarray, max_residual_px: float = 2.0) -> dict:
    """Least-squares similarity image → map; GSD with σ, per-point residuals, warnings."""
    img = np.asarray(image_px, float)
    mp = np.asarray(map_m, float)
    n = len(img)
    if n < MIN_POINTS:
        raise InputError(f"{n} control points; at least {MIN_POINTS} are needed")
    # image y grows down, map y grows up: flip the image y so that the similarity is proper (no reflection)
    u, v = img[:, 0], -img[:, 1]
    A = np.zeros((2 * n, 4))
    A[0::2] = np.column_stack([u, -v, np.ones(n), np.zeros(n)])
    A[1::2] = np.column_stack([v, u, np.zeros(n), np.ones(n)])
    b = mp.reshape(-1)
    if np.linalg.matrix_rank(A) < 4 or np.ptp(img, axis=0).max() == 0:
        raise InputError("the control points are degenerate (all at one place); spread them over the image")
    p, *_ = np.linalg.lstsq(A, b, rcond=None)
    a, bb, tx, ty = p
    s = float(np.hypot(a, bb))
    res = (A @ p - b).reshape(n, 2)
    dof = max(2 * n - 4, 1)
    s2 = float((res**2).sum() / dof)
    cov = s2 * np.linalg.inv(A.T @ A)
    grad = np.array([a / s, bb / s, 0.0, 0.0])
    sigma_s = float(np.sqrt(grad @ cov @ grad))
    res_m = np.hypot(res[:, 0], res[:, 1])
    res_px = res_m / s
    # leave-one-out residuals: each point against the fit of the others. A bad point still pulls the fits of
    # the others, so points are flagged one at a time, worst first, each time against the fit of the points not
    # yet flagged, while at least MIN_POINTS remain.
    def loo(active: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        for i in np.flatnonzero(active):
            keep = np.repeat(active, 2)
            keep[2 * i:2 * i + 2] = False
            q, *_ = np.linalg.lstsq(A[keep], b[keep], rcond=None)
            out[i] = np.hypot(*(A[2 * i:2 * i + 2] @ q - b[2 * i:2 * i + 2])) / s
        return out

    active = np.ones(n, bool)
    loo_px = loo(active)
    current = loo_px.copy()
    while active.sum() > MIN_POINTS:
        worst = int(np.nanargmax(current))
        if current[worst] <= max_residual_px:
            break
        active[worst] = False
        current = loo(active)
        current[~active] = np.nan
        if np.all(np.isnan(current)):
            break
    flagged = np.flatnonzero(~active)
    warnings = [f"control point {i + 1}: residual {loo_px[i]:.2f} image px against the other points "
                f"({res_px[i]:.2f} px in the joint fit) is above {max_residual_px:g} px" for i in flagged]
    extra = {}
    if flagged.size:
        keep = np.repeat(active, 2)
        q, *_ = np.linalg.lstsq(A[keep], b[keep], rcond=None)
        extra = {"gsd_m_without_flagged": float(np.hypot(q[0], q[1])), "flagged_points": (flagged + 1).tolist()}
    return {"gsd_m": s, "gsd_sigma_m": sigma_s, "rotation_deg": float(np.degrees(np.arctan2(bb, a))),
            "translation_m": [float(tx), float(ty)], "n_points": n,
            "rms_residual_m": float(np.sqrt((res_m**2).mean())), "rms_residual_px": float(np.sqrt((res_px**2)
                                                                                                .mean())),
            "residuals_m": res_m.tolist(), "residuals_px": res_px.tolist(),
            "leave_one_out_residuals_px": loo_px.tolist(), "warnings": warnings, **extra}


def gsd_from_file(control: str | Path, map_gsd: float | None = None, max_residual_px: float = 2.0,
                  image: str | Path | None = None) -> dict:
    img, mp, how = read_control(control, map_gsd)
    if image is not None:
        import cv2

        arr = cv2.imread(str(image), cv2.IMREAD_UNCHANGED) if Path(image).is_file() else None
        if arr is None:
            raise InputError(f"{image}: not a readable image")
        h, w = arr.shape[:2]
        out = (img[:, 0] < -0.5) | (img[:, 1] < -0.5) | (img[:, 0] > w - 0.5) | (img[:, 1] > h - 0.5)
        if out.any():
            raise InputError(f"{control}: control point {int(np.flatnonzero(out)[0]) + 1} lies outside the "
                             f"{w}×{h} image")
    rec = calibrate(img, mp, max_residual_px)
    rec["map_coordinates"] = how
    rec["control"] = str(control)
    return rec
