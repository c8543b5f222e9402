"""Rocks and bright clasts in a calibrated close-range image: detection, sizes in real units, size distribution.

Clasts are brighter than the regolith around them (the Chang'E-6 paper's plagioclase-rich rocks). The image's
slowly varying background (illumination, vignetting) is removed with a white top-hat whose window is larger
than the largest clast sought; the residual is thresholded at ``k`` robust standard deviations (median
absolute deviation × 1.4826) of the residual; connected bright regions of at least ``min_px`` pixels are clasts.
Each clast's size is its area-equivalent diameter and its longest axis (from the second moments), converted with
the GSD. Objects touching the image border are flagged (their size is a lower bound).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from selenite.errors import InputError


def detect_clasts(image: np.ndarray, gsd_m: float, max_size_m: float | None = None, k: float = 4.0,
                  min_px: int = 4, valid: np.ndarray | None = None) -> pd.DataFrame:
    """Bright clasts → table (x_px, y_px, area_px, diameter_m, long_axis_m, border). With a ``valid`` mask
    (an ortho's footprint), no-data is filled with the valid median and clasts touching it count as border."""
    if not gsd_m > 0:
        raise InputError(f"--gsd must be positive (got {gsd_m})")
    img = image.astype(np.float32)
    if img.ndim == 3:
        img = img.mean(axis=2)
    if valid is not None:
        img = np.where(valid, img, float(np.median(img[valid])))
        edge = cv2.dilate((~valid).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    h, w = img.shape
    max_px = (max_size_m / gsd_m) if max_size_m else max(h, w) / 8
    win = int(2 * np.ceil(max_px) + 1) | 1
    win = min(win, (min(h, w) // 2) * 2 - 1)
    if win < 3:
        raise InputError("the image is too small for clast detection")
    pad = win // 2 + 1   # replicated margin: a mirrored one would fold a brightness ramp into a ridge
    padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (win, win))
    resid = cv2.morphologyEx(padded, cv2.MORPH_TOPHAT, se)[pad:pad + h, pad:pad + w]
    sel = resid[valid] if valid is not None else resid     # statistics of the footprint only
    med = float(np.median(sel))
    mad = float(np.median(np.abs(sel - med))) * 1.4826
    thr = med + k * max(mad, 1e-6)
    mask = (resid > thr).astype(np.uint8)
    if valid is not None:
        mask[~valid] = 0
    n, lab, stats, cent = cv2.connectedComponentsWithStats(mask, connectivity=8)
    at_edge = set(np.unique(lab[edge]).tolist()) if valid is not None else set()
    rows = []
    for i in range(1, n):
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_px:
            continue
        ys, xs = np.nonzero(lab[stats[i, 1]:stats[i, 1] + stats[i, 3], stats[i, 0]:stats[i, 0] + stats[i, 2]] == i)
        cov = np.cov(np.vstack([xs, ys])) if area > 2 else np.eye(2) * 0.25
        long_px = 4.0 * np.sqrt(max(np.linalg.eigvalsh(cov).max(), 0.0)) + 1.0
        x0, y0, ww, hh = stats[i, :4]
        rows.append({"x_px": float(cent[i, 0]), "y_px": float(cent[i, 1]), "area_px": area,
                     "diameter_m": float(2 * np.sqrt(area / np.pi) * gsd_m), "long_axis_m": float(long_px * gsd_m),
                     "border": bool(x0 == 0 or y0 == 0 or x0 + ww == w or y0 + hh == h or i in at_edge)})
    return pd.DataFrame(rows, columns=["x_px", "y_px", "area_px", "diameter_m", "long_axis_m", "border"])


def size_distribution(df: pd.DataFrame, area_m2: float) -> pd.DataFrame:
    """Cumulative number per m² of clasts ≥ D at root-2 diameter steps."""
    d = df.loc[~df["border"], "diameter_m"].to_numpy()
    if d.size == 0:
        return pd.DataFrame({"d_min_m": [], "n_cum": [], "cum_per_m2": []})
    edges = 2.0 ** (np.arange(np.floor(2 * np.log2(d.min())), np.ceil(2 * np.log2(d.max())) + 1) / 2)
    n = np.array([(d >= e).sum() for e in edges])
    return pd.DataFrame({"d_min_m": edges, "n_cum": n, "cum_per_m2": n / area_m2})


def _record(df: pd.DataFrame, sfd: pd.DataFrame, gsd_m: float, area: float) -> dict:
    inner = df[~df["border"]]
    return {"gsd_m": gsd_m, "n_clasts": len(df), "n_whole": len(inner), "image_area_m2": area,
            "smallest_resolved_m": float(2 * np.sqrt(4 / np.pi) * gsd_m),
            "diameter_m": {"min": float(inner["diameter_m"].min()) if len(inner) else None,
                           "median": float(inner["diameter_m"].median()) if len(inner) else None,
                           "max": float(inner["diameter_m"].max()) if len(inner) else None},
            "size_distribution": sfd.to_dict(orient="list")}


def particles_figure(path, arr: np.ndarray, df: pd.DataFrame, sfd: pd.DataFrame, gsd_m: float) -> None:
    """The image with the clasts circled, and their cumulative size distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.5))
    a1.imshow(arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB), cmap="gray")
    for r in df.itertuples():
        a1.add_patch(plt.Circle((r.x_px, r.y_px), max(r.diameter_m / gsd_m / 2, 1.5), fill=False,
                                ec="orange" if r.border else "yellow", lw=0.8))
    a1.set_axis_off()
    a1.set_title(f"{len(df)} bright clasts (GSD {gsd_m * 1000:.3g} mm)", fontsize=9)
    if len(sfd):
        a2.loglog(sfd["d_min_m"] * 1000, sfd["cum_per_m2"], "ks-", ms=3)
    a2.set_xlabel("clast diameter D [mm]")
    a2.set_ylabel("cumulative number ≥ D per m²")
    a2.grid(True, lw=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png", metadata={"Software": None})
    plt.close(fig)


def particles_on_ortho(ortho: np.ndarray, valid: np.ndarray, gsd_m: float, out_csv, plot, k: float = 4.0) -> dict:
    """Clasts on an ortho (bands first, 0 = no data) → CSV, figure, record; the area is the valid footprint."""
    from selenite.geology.frames import ortho_grey

    img = ortho_grey(ortho)
    df = detect_clasts(img, gsd_m, None, k, valid=valid)
    area = float(valid.sum()) * gsd_m**2
    sfd = size_distribution(df, area)
    df.to_csv(out_csv, index=False, float_format="%.6g")
    particles_figure(plot, img, df, sfd, gsd_m)
    return _record(df, sfd, gsd_m, area)


def particles_file(image: str | Path, gsd_m: float, out: str | Path, max_size_m: float | None = None,
                   k: float = 4.0, plot: str | Path | None = None) -> dict:
    from selenite.runs import atomic_path

    image, out = Path(image), Path(out)
    if out.suffix.lower() != ".csv":
        raise InputError(f"{out}: the clasts are written as CSV; give a .csv name")
    arr = cv2.imread(str(image), cv2.IMREAD_UNCHANGED) if image.is_file() else None
    if arr is None:
        raise InputError(f"{image}: not a readable image")
    df = detect_clasts(arr, gsd_m, max_size_m, k)
    area = arr.shape[0] * arr.shape[1] * gsd_m**2
    sfd = size_distribution(df, area)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    rec = {"image": str(image), **_record(df, sfd, gsd_m, area), "out": str(out)}
    if plot is not None:
        with atomic_path(plot) as tmp:
            particles_figure(tmp, arr, df, sfd, gsd_m)
        rec["plot"] = str(plot)
    return rec
