"""A lander descent like Chang'E-6's, as camera poses over the synthetic world.

Phases (Shu et al. 2026, Results): an oblique powered approach with the camera looking ahead and down; a
pitch-over near 240 m after which the view is nearly vertical; a hover near 100 m at the far end of the
track (hazard avoidance); a lateral retreat of about 23.5 m at about 134.8° from the original track; a
vertical final descent; optionally the last frames obscured by the engine plume (below 8.6 m for CE-6).

Frames are placed so consecutive views overlap: a new frame when the ground track has moved a fixed fraction
of the footprint, the altitude has changed by a fixed ratio, or the attitude by a few degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selenite.geo.camera import attitude_deg, pose_from_axis


@dataclass(frozen=True)
class DescentPlan:
    start_altitude_m: float = 1000.0
    approach_distance_m: float = 1400.0   # ground distance from the start to the hover point
    approach_azimuth_deg: float = 270.0   # direction of travel (clockwise from north): east → west
    approach_tilt_deg: float = 35.0       # optical axis from nadir, towards the direction of travel
    pitchover_altitude_m: float = 240.0
    post_pitchover_tilt_deg: float = 10.0
    hover_altitude_m: float = 100.0
    hover_frames: int = 4
    retreat_m: float = 23.5
    retreat_angle_deg: float = 134.8      # between the retreat and the original direction of travel
    final_altitude_m: float = 2.0         # camera height at the last frame
    plume_altitude_m: float = 8.6         # frames below this are obscured (0: no plume)
    footprint_step: float = 0.12          # new frame after moving this fraction of the footprint
    altitude_ratio_step: float = 0.93     # ... or after descending by this ratio
    attitude_step_deg: float = 3.0        # ... or after the attitude changed by this much
    jitter_deg: float = 0.3               # random attitude jitter (1-sigma)
    jitter_frames: float = 0.0            # its correlation length in frames (0: independent per frame)


@dataclass
class DescentPose:
    index: int
    phase: str
    center: np.ndarray        # local ENU position of the camera (m)
    R: np.ndarray             # world(ENU) → camera rotation
    ground_height: float      # local ENU height of the ground below the camera
    obscured: bool

    @property
    def altitude_m(self) -> float:
        return float(self.center[2] - self.ground_height)

    @property
    def attitude(self) -> tuple[float, float, float]:
        return attitude_deg(self.R)


def _horizontal(azimuth_deg: float) -> np.ndarray:
    a = np.radians(azimuth_deg)
    return np.array([np.sin(a), np.cos(a), 0.0])


def _rotate_z(v: np.ndarray, deg: float) -> np.ndarray:
    """Rotate a horizontal vector clockwise (as seen from above) by ``deg``, like an azimuth increase."""
    a = np.radians(deg)
    return np.array([v[0] * np.cos(a) + v[1] * np.sin(a), -v[0] * np.sin(a) + v[1] * np.cos(a), 0.0])


def plan_descent(plan: DescentPlan, landing_xy: np.ndarray, ground_height, hfov_deg: float,
                 rng: np.random.Generator) -> list[DescentPose]:
    """Camera poses of a CE-6-like descent ending above ``landing_xy`` (local ENU metres).

    ``ground_height(x, y)`` returns the local ENU ground height (vectorised). Returns the poses in time order.
    """
    u = _horizontal(plan.approach_azimuth_deg)
    retreat_dir = _rotate_z(u, plan.retreat_angle_deg)
    land = np.array([landing_xy[0], landing_xy[1], 0.0])
    hover = land - plan.retreat_m * retreat_dir
    start = hover - plan.approach_distance_m * u
    frac_pitch = 1.0 - (plan.pitchover_altitude_m - plan.hover_altitude_m) / (
        plan.start_altitude_m - plan.hover_altitude_m)
    foot = 2.0 * np.tan(np.radians(hfov_deg) / 2.0)

    # dense samples (s in [0, 1] per segment) of position above ground, tilt and phase
    dense: list[tuple[np.ndarray, float, float, str]] = []
    for s in np.linspace(0.0, 1.0, 4000):   # approach + pitch-over + braking to the hover point
        xy = start + s * (hover - start)
        alt = plan.start_altitude_m + s * (plan.hover_altitude_m - plan.start_altitude_m)
        if s < frac_pitch - 0.02:
            tilt, phase = plan.approach_tilt_deg, "approach"
        elif s < frac_pitch + 0.02:
            k = (s - (frac_pitch - 0.02)) / 0.04
            tilt = plan.approach_tilt_deg + k * (plan.post_pitchover_tilt_deg - plan.approach_tilt_deg)
            phase = "pitch-over"
        else:
            k = (s - (frac_pitch + 0.02)) / max(1.0 - frac_pitch - 0.02, 1e-9)
            tilt, phase = plan.post_pitchover_tilt_deg * (1.0 - k), "braking"
        dense.append((xy, alt, tilt, phase))
    retreat_end_alt = plan.hover_altitude_m * 0.75
    for s in np.linspace(0.0, 1.0, 800)[1:]:
        dense.append((hover + s * (land - hover), plan.hover_altitude_m + s * (retreat_end_alt - plan.hover_altitude_m),
                      0.0, "retreat"))
    for alt in np.geomspace(retreat_end_alt, plan.final_altitude_m, 3000)[1:]:
        dense.append((land, alt, 0.0, "vertical"))

    chosen: list[tuple[np.ndarray, float, float, str]] = [dense[0]]
    for item in dense[1:]:
        xy, alt, tilt, phase = item
        pxy, palt, ptilt, pphase = chosen[-1]
        moved = np.linalg.norm((xy - pxy)[:2]) >= plan.footprint_step * foot * min(alt, palt)
        dropped = alt <= palt * plan.altitude_ratio_step
        turned = abs(tilt - ptilt) >= plan.attitude_step_deg
        if moved or dropped or turned or (phase != pphase and phase in ("retreat", "pitch-over")):
            chosen.append(item)
    if chosen[-1][1] > plan.final_altitude_m * 1.001:
        chosen.append(dense[-1])
    # the hover: extra frames at the hover point with a slow yaw adjustment
    hover_i = next(i for i, c in enumerate(chosen) if c[3] == "retreat")
    hover_items = [(hover.copy(), plan.hover_altitude_m, 0.0, "hover")] * plan.hover_frames
    chosen = chosen[:hover_i] + hover_items + chosen[hover_i:]

    poses: list[DescentPose] = []
    yaw_extra = 0.0
    # attitude jitter: a first-order autoregressive process with the same σ whatever the frame density, so a
    # dense (video-like) sequence turns smoothly instead of shaking independently from frame to frame
    rho = float(np.exp(-1.0 / plan.jitter_frames)) if plan.jitter_frames > 0 else 0.0
    jitter = np.zeros(3)
    for i, (xy, alt, tilt, phase) in enumerate(chosen):
        if phase == "hover":
            yaw_extra += 2.0
        heading = _rotate_z(u, yaw_extra)
        g = float(ground_height(np.array([xy[0]]), np.array([xy[1]]))[0])
        draw = rng.normal(0.0, plan.jitter_deg, 3)
        jitter = draw if i == 0 or rho == 0 else rho * jitter + np.sqrt(1 - rho**2) * draw
        t = np.radians(tilt + jitter[0])
        side = _rotate_z(heading, 90.0)
        axis = np.cos(t) * np.array([0.0, 0.0, -1.0]) + np.sin(t) * heading + np.radians(jitter[1]) * side
        up = _rotate_z(heading, jitter[2])
        center = np.array([xy[0], xy[1], g + alt])
        R, _ = pose_from_axis(axis, up, center)
        obscured = plan.plume_altitude_m > 0 and alt < plan.plume_altitude_m
        poses.append(DescentPose(i, phase, center, R, g, obscured))
    return poses


def plume_obscure(image: np.ndarray, altitude_m: float, plume_altitude_m: float, rng: np.random.Generator,
                  top: float) -> np.ndarray:
    """Blend a frame with bright, blurred dust whose opacity grows as the lander descends below the plume."""
    from scipy import ndimage

    k = np.clip(1.0 - altitude_m / plume_altitude_m, 0.0, 1.0)
    opacity = 0.35 + 0.6 * np.sqrt(k)
    h, w = image.shape
    dust = ndimage.gaussian_filter(rng.random((h // 8 + 1, w // 8 + 1)), 1.5)
    dust = ndimage.zoom(dust, (h / dust.shape[0], w / dust.shape[1]), order=1)[:h, :w]
    dust = (dust - dust.min()) / max(np.ptp(dust), 1e-9)
    blurred = ndimage.gaussian_filter(image.astype(np.float64), 2.0 + 6.0 * k)
    out = (1.0 - opacity) * blurred + opacity * top * (0.55 + 0.4 * dust)
    return np.clip(out, 0, top)
