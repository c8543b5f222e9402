"""The classical baseline: Laplacian-of-Gaussian blobs of local gradient energy.

A crater, in a DEM or in an image at any sun angle, is a compact patch of strong gradients (its walls, or its
shadow and lit wall). The input is normalised as for the network, its squared gradient magnitude smoothed
(σ = 1 px), and scale-normalised LoG blobs of that energy found across σ (``skimage.feature.blob_log``); a blob
of scale σ is a crater of diameter 2√2·σ. The blob threshold is chosen on the same validation scenes as the
network's threshold, so the comparison is like for like.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from selenite.craters.net import normalise


def gradient_energy(kind: str, array: np.ndarray) -> np.ndarray:
    x = normalise(kind, array)
    gy, gx = np.gradient(x)
    e = ndimage.gaussian_filter(gx * gx + gy * gy, 1.0)
    return e / max(float(np.percentile(e, 99)), 1e-9)


def classical_detect(kind: str, array: np.ndarray, threshold: float = 0.1, min_diameter_px: float = 4.0,
                     max_diameter_px: float = 64.0) -> pd.DataFrame:
    from skimage.feature import blob_log

    e = gradient_energy(kind, array)
    s_min, s_max = min_diameter_px / (2 * np.sqrt(2)), max_diameter_px / (2 * np.sqrt(2))
    blobs = blob_log(e, min_sigma=s_min, max_sigma=s_max, num_sigma=12, threshold=threshold, overlap=0.5,
                     log_scale=True)
    if blobs.size == 0:
        return pd.DataFrame({"x_px": [], "y_px": [], "diameter_px": [], "score": []})
    rows, cols, sig = blobs[:, 0], blobs[:, 1], blobs[:, 2]
    lap = -ndimage.gaussian_laplace(e, 1.0)
    return pd.DataFrame({"x_px": cols, "y_px": rows, "diameter_px": 2 * np.sqrt(2) * sig,
                         "score": lap[rows.astype(int), cols.astype(int)]})


def choose_classical_threshold(kind: str, scenes, min_diameter_px: float) -> tuple[float, dict]:
    from selenite.craters.metrics import object_scores

    best = None
    for th in (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7):
        n = np.zeros(3)
        for s in scenes:
            d = classical_detect(kind, s.array, th, min_diameter_px)
            truth = s.craters[s.craters.diameter_px >= min_diameter_px]
            sc = object_scores(d, truth, frame="px")
            n += (sc.n_detected, sc.n_truth, sc.n_matched)
        p, r = n[2] / max(n[0], 1), n[2] / max(n[1], 1)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rec = {"precision": p, "recall": r, "f1": f1, "n_detected": int(n[0]), "n_truth": int(n[1]),
               "n_matched": int(n[2])}
        if best is None or f1 > best[1]["f1"]:
            best = (th, rec)
    return float(best[0]), {k: (float(v) if k in ("precision", "recall", "f1") else v) for k, v in best[1].items()}
