"""Maneuvers read off a reconstructed descent (Shu et al. 2026 report CE-6's pitch-over near 240 m, a hover near
100 m, a 23.5 m retreat at 134.8° to the original track, then a vertical descent)."""

from __future__ import annotations

import numpy as np


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-9 or nb < 1e-9:
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(a @ b / (na * nb), -1, 1))))


def detect_maneuvers(pos: np.ndarray, altitude: np.ndarray, tilt_deg: np.ndarray, yaw_deg: np.ndarray,
                     frames: list[int]) -> dict:
    """Maneuvers of a trajectory (positions E, N, Z in metres in time order, per-frame altitude, tilt, yaw)."""
    n = len(pos)
    out: dict = {"frames": n}
    if n < 4:
        return out
    xy = pos[:, :2]
    # vertical descent: trailing frames whose horizontal step is tiny compared with the altitude
    v = n - 1
    while v > 0 and np.linalg.norm(xy[v] - xy[v - 1]) < max(0.03 * altitude[v], 0.05):
        v -= 1
    out["vertical_descent"] = {"start_frame": frames[v], "start_altitude_m": float(altitude[v]),
                               "frames": n - v}
    # the turn (hover) point: the furthest point along the overall direction of travel before the vertical part
    travel = xy[v] - xy[0]
    if np.linalg.norm(travel) > 1e-6 and v > 1:
        u = travel / np.linalg.norm(travel)
        k = int(np.argmax((xy[: v + 1] - xy[0]) @ u))
        hover = [i for i in range(v + 1) if np.linalg.norm(xy[i] - xy[k]) < 0.03 * max(altitude[k], 1.0)]
        retreat = xy[v] - xy[k]
        approach = xy[k] - xy[0]
        out["approach"] = {"distance_m": float(np.linalg.norm(approach)),
                           "azimuth_deg": float(np.degrees(np.arctan2(approach[0], approach[1])) % 360)}
        out["hover"] = {"frame": frames[k], "altitude_m": float(altitude[k]), "frames": len(hover),
                        "yaw_change_deg": float(_wrap(yaw_deg[hover[-1]] - yaw_deg[hover[0]]))}
        out["retreat"] = {"distance_m": float(np.linalg.norm(retreat)),
                          "angle_to_track_deg": _angle_deg(approach, retreat),
                          "azimuth_deg": float(np.degrees(np.arctan2(retreat[0], retreat[1])) % 360)}
    # pitch-over: the steepest drop of the tilt from nadir (at least 8°)
    if n >= 5:
        w = 2
        drops = [(tilt_deg[max(i - w, 0)] - tilt_deg[min(i + w, n - 1)], i) for i in range(n)]
        drop, i = max(drops)
        if drop >= 8.0:
            out["pitch_over"] = {"frame": frames[i], "altitude_m": float(altitude[i]),
                                 "tilt_before_deg": float(tilt_deg[max(i - w, 0)]),
                                 "tilt_after_deg": float(tilt_deg[min(i + w, n - 1)])}
    # heading changes larger than 5° between consecutive frames or over the hover
    steps = [(frames[i], float(altitude[i]), float(_wrap(yaw_deg[i] - yaw_deg[i - 1]))) for i in range(1, n)]
    out["heading_changes"] = [{"frame": f, "altitude_m": a, "change_deg": d} for f, a, d in steps if abs(d) > 5.0]
    out["heading_total_change_deg"] = float(_wrap(yaw_deg[-1] - yaw_deg[0]))
    return out


def _wrap(d: float) -> float:
    return (d + 180.0) % 360.0 - 180.0
