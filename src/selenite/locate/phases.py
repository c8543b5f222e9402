"""What happened during a descent, read off the reconstruction alone: frame times, speeds, phases and the divert.

Times come from a CSV (``file,time_s``) or from the frame names (``…HH_MM_SS…``, ``…HHMMSS…`` or a single number of
seconds); frames that share a clock second are spread evenly over it. Without either, time is the frame number.

Phases are found in the height above the landing point, h(t): a parachute (or ballistic) phase falls at a slowly
changing speed, a powered descent brakes hard, and a final vertical phase (sky crane, terminal descent) lowers at a
nearly constant small speed with almost no lateral motion. h(t) is fitted by three quadratic pieces whose two
breakpoints are searched exhaustively (least squares weighted by 1/height, so the kilometres of the first phase do
not swamp the metres of the last); the pieces are named by their braking: the first piece is the parachute phase only
when the second brakes harder than it does. The divert is the largest lateral move inside the powered phase: its
direction, ground distance and the time it took.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from selenite.errors import InputError

_HMS = re.compile(r"(\d{1,2})[_:\-](\d{2})[_:\-](\d{2}(?:\.\d+)?)")
_HHMMSS = re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{2}(?:\.\d+)?)(?!\d)")


def _spread_ties(t: np.ndarray) -> np.ndarray:
    """Frames stamped with the same whole second: spread evenly inside it."""
    t = t.astype(float).copy()
    i = 0
    while i < len(t):
        j = i
        while j + 1 < len(t) and t[j + 1] == t[i]:
            j += 1
        if j > i:
            t[i:j + 1] = t[i] + np.arange(j - i + 1) / (j - i + 1)
        i = j + 1
    return t


def frame_times(names: list[str], times_csv: str | Path | None = None) -> tuple[np.ndarray, str]:
    """Seconds from the first frame for each name, and where they came from ("csv", "file names", "frame")."""
    if times_csv is not None:
        p = Path(times_csv)
        if not p.is_file():
            raise InputError(f"times file not found: {p}")
        try:
            with p.open() as fh:
                rows = {r["file"]: float(r["time_s"]) for r in csv.DictReader(fh)}
        except (KeyError, ValueError, TypeError):
            raise InputError(f"times file {p} needs the columns file,time_s with numeric times") from None
        missing = [n for n in names if n not in rows]
        if missing:
            raise InputError(f"times file {p} has no time for {missing[0]} ({len(missing)} frames missing)")
        t = np.array([rows[n] for n in names])
        if np.any(np.diff(t) < 0):
            raise InputError(f"times file {p}: times do not increase in frame order")
        return t - t[0], "csv"
    vals = []
    for n in names:
        stem = Path(n).stem
        m = _HMS.search(stem) or _HHMMSS.search(stem)
        if m is None:
            vals = None
            break
        h, mi, s = int(m.group(1)), int(m.group(2)), float(m.group(3))
        vals.append(3600 * h + 60 * mi + s)
    if vals is not None and len(vals) > 1:
        t = np.array(vals)
        t = np.where(t < t[0] - 43200, t + 86400, t)          # past midnight
        if np.all(np.diff(t) >= 0) and t[-1] > t[0]:
            t = _spread_ties(t) if np.all(t == np.round(t)) else t
            return t - t[0], "file names"
    return np.arange(len(names), dtype=float), "frame"


def _quad_sse(t: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    if len(t) < 3:
        return np.inf
    A = np.c_[np.ones_like(t), t - t.mean(), (t - t.mean()) ** 2] * w[:, None]
    coef, *_ = np.linalg.lstsq(A, y * w, rcond=None)
    r = A @ coef - y * w
    return float(r @ r)


def _pieces(t: np.ndarray, y: np.ndarray, w: np.ndarray, min_len: int = 3) -> tuple[int, int]:
    """Breakpoints (i, j): pieces [0, i), [i, j), [j, n) minimising the summed weighted quadratic-fit residual."""
    n = len(t)
    best, arg = np.inf, (n // 3, 2 * n // 3)
    first = [_quad_sse(t[:i], y[:i], w[:i]) for i in range(n + 1)]
    last = [_quad_sse(t[j:], y[j:], w[j:]) for j in range(n + 1)]
    for i in range(min_len, n - 2 * min_len + 1):
        for j in range(i + min_len, n - min_len + 1):
            s = first[i] + _quad_sse(t[i:j], y[i:j], w[i:j]) + last[j]
            if s < best:
                best, arg = s, (i, j)
    return arg


def _smooth_gradient(t: np.ndarray, y: np.ndarray, half: int = 2) -> np.ndarray:
    """dy/dt by a local linear fit over ±half frames."""
    out = np.empty(len(t))
    for k in range(len(t)):
        a, b = max(k - half, 0), min(k + half + 1, len(t))
        tt = t[a:b] - t[a:b].mean()
        out[k] = (tt @ (y[a:b] - y[a:b].mean())) / max(tt @ tt, 1e-12)
    return out


def descent_phases(t: np.ndarray, east: np.ndarray, north: np.ndarray, height: np.ndarray, frames: list[int],
                   units: str = "m") -> dict:
    """Speeds, phases and the divert of a reconstructed descent (per frame in time order: time (s), ground
    position and height above the landing point, in ``units``)."""
    n = len(t)
    out: dict = {"units": units, "frames": n}
    if n < 9:
        out["note"] = "fewer than 9 reconstructed frames: no phases"
        return out
    h = np.maximum(height, 1e-3)
    vz = _smooth_gradient(t, h)
    ve, vn = _smooth_gradient(t, east), _smooth_gradient(t, north)
    out["speeds"] = [{"frame": f, "time_s": float(tk), "height": float(hk), "vertical_speed": float(-v),
                      "horizontal_speed": float(np.hypot(a, b))}
                     for f, tk, hk, v, a, b in zip(frames, t, h, vz, ve, vn, strict=True)]
    # relative weights: a reconstruction's height errors grow with height
    i, j = _pieces(t, h, 1.0 / (h + 0.002 * h.max()))
    # braking: the rise of the vertical speed (towards zero) per second in each piece
    def braking(a, b):
        if b - a < 3:
            return 0.0
        return float(np.polyfit(t[a:b], vz[a:b], 1)[0])

    acc = [braking(0, i), braking(i, j), braking(j, n)]
    names = ["parachute" if acc[1] > acc[0] else "approach", "powered descent", "final vertical descent"]
    bounds = [(0, i), (i, j), (j, n)]
    out["phases"] = [{"name": nm, "first_frame": frames[a], "last_frame": frames[b - 1],
                      "start_time_s": float(t[a]), "end_time_s": float(t[b - 1]),
                      "start_height": float(h[a]), "end_height": float(h[b - 1]),
                      "mean_descent_speed": float(-np.mean(vz[a:b])), "braking": acc[k],
                      "mean_horizontal_speed": float(np.mean(np.hypot(ve[a:b], vn[a:b])))}
                     for k, (nm, (a, b)) in enumerate(zip(names, bounds, strict=True))]
    # divert: the lateral move inside the powered phase (its largest span between two frames)
    a, b = i, j
    if b - a >= 2:
        P = np.c_[east[a:b], north[a:b]]
        d = np.linalg.norm(P[:, None] - P[None], axis=-1)
        p, q = np.unravel_index(int(np.argmax(d)), d.shape)
        p, q = min(p, q), max(p, q)
        move = P[q] - P[p]
        dist = float(np.linalg.norm(move))
        u = move / max(dist, 1e-12)
        prog = (P - P[p]) @ u / max(dist, 1e-12)          # 0 → 1 along the move
        k0 = p + int(np.argmax(prog[p:q + 1] >= 0.1))
        k1 = p + int(np.argmax(prog[p:q + 1] >= 0.9))
        out["divert"] = {"distance": dist, "azimuth_deg": float(np.degrees(np.arctan2(u[0], u[1])) % 360),
                         "from_frame": frames[a + k0], "to_frame": frames[a + k1],
                         "start_time_s": float(t[a + k0]), "end_time_s": float(t[a + k1]),
                         "start_height": float(h[a + k0]), "end_height": float(h[a + k1]),
                         "timing": "10 % to 90 % of the move"}
    return out
