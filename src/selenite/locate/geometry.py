"""Geometry of the reconstructed descent: local vertical, ground frame, altitudes, similarity fits.

The local vertical follows Shu et al. (2026, Methods): the final descent is vertical, so the direction of the
camera centres of the last clear frames is the surface normal ``u`` (we fit a line through the last
``vertical_frames`` centres instead of differencing two of them). Heights are projections on ``u``, measured from
the ground where that line meets the reconstructed surface; altitudes are scaled by the first frame's known
altitude (``--start-altitude``) or, without it, by the map's scale found when matching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def fit_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid and unit direction (first principal axis) of 3-D points."""
    c = points.mean(0)
    _, _, vt = np.linalg.svd(points - c)
    return c, vt[0]


def orthonormal_frame(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors e1, e2 with (e1, e2, u) right-handed and orthonormal."""
    u = u / np.linalg.norm(u)
    a = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = a - (a @ u) * u
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(u, e1)


@dataclass
class GroundFrame:
    """A right-handed frame in reconstruction units: origin on the ground below the landing, u up."""

    origin: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    u: np.ndarray

    def to_local(self, X: np.ndarray) -> np.ndarray:
        d = np.atleast_2d(X) - self.origin
        return np.stack([d @ self.e1, d @ self.e2, d @ self.u], axis=1)

    def to_world(self, abh: np.ndarray) -> np.ndarray:
        abh = np.atleast_2d(abh)
        return self.origin + abh[:, :1] * self.e1 + abh[:, 1:2] * self.e2 + abh[:, 2:3] * self.u

    @property
    def matrix(self) -> np.ndarray:
        """Rows e1, e2, u: rotation from reconstruction axes to ground axes."""
        return np.stack([self.e1, self.e2, self.u])


def ground_height(local_pts: np.ndarray, a: float, b: float, radius: float) -> float | None:
    """Median height of reconstructed points within ``radius`` (horizontally) of (a, b), None if < 5."""
    d = np.hypot(local_pts[:, 0] - a, local_pts[:, 1] - b)
    near = local_pts[d < radius, 2]
    return float(np.median(near)) if len(near) >= 5 else None


def estimate_ground_frame(centers: np.ndarray, points: np.ndarray, vertical_frames: int) -> tuple[GroundFrame, dict]:
    """Local vertical from the final (vertical) descent, landing ground point where it meets the surface.

    ``centers``: camera centres of the registered clear frames in time order (reconstruction units).
    """
    k = min(vertical_frames, len(centers))
    tail = centers[-k:]
    c, u = fit_line(tail)
    if (tail[0] - tail[-1]) @ u < 0:      # point up: earlier frames are higher
        u = -u
    # robust ground: points whose horizontal distance to the descent line is small, their median height
    e1, e2 = orthonormal_frame(u)
    provisional = GroundFrame(c, e1, e2, u)
    loc = provisional.to_local(points)
    span = float(np.ptp(provisional.to_local(centers)[:, 2])) or 1.0
    h_last = float(provisional.to_local(centers[-1:])[0, 2])
    h0 = None
    for frac in (0.05, 0.1, 0.2, 0.4, 1.0, 3.0):
        h0 = ground_height(loc, 0.0, 0.0, frac * max(h_last - np.median(loc[:, 2]), 1e-6) + 1e-9)
        if h0 is not None:
            break
    if h0 is None:
        h0 = float(np.median(loc[:, 2]))
    origin = c + h0 * u
    # plane of all points around the landing as a check of the vertical (not used for it)
    near = loc[np.hypot(loc[:, 0], loc[:, 1]) < span]
    tilt_deg = None
    if len(near) >= 20:
        A = np.column_stack([near[:, 0], near[:, 1], np.ones(len(near))])
        coef, *_ = np.linalg.lstsq(A, near[:, 2], rcond=None)
        tilt_deg = float(np.degrees(np.arctan(np.hypot(coef[0], coef[1]))))
    straightness = float(np.sqrt(np.mean(np.sum(np.cross(tail - c, u) ** 2, axis=1))) / max(np.ptp(tail @ u), 1e-12))
    return GroundFrame(origin, e1, e2, u), {"surface_tilt_to_descent_axis_deg": tilt_deg,
                                             "vertical_descent_straightness": straightness}


def frame_altitudes(gf: GroundFrame, centers: np.ndarray, points: np.ndarray, min_height: float = 1e-9) -> np.ndarray:
    """Height of each camera above the ground below it (in the units of ``centers``).

    The ground below a camera is the median height of the reconstructed points near its nadir; where the nadir
    is not seen (an oblique approach frame), the points nearest to it are used.
    """
    loc = gf.to_local(points)
    cl = gf.to_local(centers)
    out = np.empty(len(centers))
    for k, (a, b, h) in enumerate(cl):
        d = np.hypot(loc[:, 0] - a, loc[:, 1] - b)
        radius = 0.15 * max(h, min_height)
        near = loc[d < radius, 2]
        if len(near) < 5:
            near = loc[np.argsort(d)[:30], 2]
        out[k] = h - float(np.median(near))
    return out


def similarity_2d(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None):
    """Least-squares 2-D similarity dst ≈ s R src + t (Umeyama 1991); returns s, angle (rad), t."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, float)
    w = w / w.sum()
    ms, md = w @ src, w @ dst
    a, b = src - ms, dst - md
    sxx = w @ np.sum(a * a, axis=1)
    c = w @ (a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1])
    s_ = w @ (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
    ang = np.arctan2(s_, c)
    s = np.hypot(c, s_) / max(sxx, 1e-300)
    R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    return float(s), float(ang), md - s * R @ ms


def apply_similarity_2d(s: float, ang: float, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    return (s * (R @ np.atleast_2d(p).T)).T + t


def ransac_similarity_2d(src: np.ndarray, dst: np.ndarray, threshold: float, iters: int = 2000,
                         rng: np.random.Generator | None = None):
    """RANSAC (2-point samples) then least squares on the inliers; returns (s, ang, t, inlier mask)."""
    rng = rng or np.random.default_rng(0)
    n = len(src)
    best = np.zeros(n, bool)
    if n < 2:
        return 1.0, 0.0, np.zeros(2), best
    for _ in range(iters):
        i, j = rng.choice(n, 2, replace=False)
        if np.linalg.norm(src[i] - src[j]) < 1e-9:
            continue
        s, a, t = similarity_2d(src[[i, j]], dst[[i, j]])
        r = np.linalg.norm(apply_similarity_2d(s, a, t, src) - dst, axis=1)
        inl = r < threshold
        if inl.sum() > best.sum():
            best = inl
    if best.sum() < 2:
        return 1.0, 0.0, np.zeros(2), best
    for _ in range(3):
        s, a, t = similarity_2d(src[best], dst[best])
        r = np.linalg.norm(apply_similarity_2d(s, a, t, src) - dst, axis=1)
        best = r < threshold
    s, a, t = similarity_2d(src[best], dst[best])
    return s, a, t, best
