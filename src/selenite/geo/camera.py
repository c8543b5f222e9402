"""Pinhole camera model (OpenCV conventions) and attitude angles in a local east-north-up frame.

Camera frame: x right, y down, z along the optical axis. A pose is (R, t) with x_cam = R X_world + t; the
camera centre is C = -R^T t. Pixel (0, 0) is the centre of the top-left pixel. Optional radial/tangential
distortion k1, k2, p1, p2 follows OpenCV's model (Brown 1966).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from selenite.errors import InputError
from selenite.runs import load_json_object


@dataclass(frozen=True)
class PinholeCamera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def distortion(self) -> np.ndarray:
        return np.array([self.k1, self.k2, self.p1, self.p2])

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.distortion != 0.0))

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> PinholeCamera:
        f = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    def to_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict, where: str = "camera") -> PinholeCamera:
        required = ("width", "height", "fx", "fy", "cx", "cy")
        missing = [k for k in required if k not in data]
        if missing:
            raise InputError(f"{where} lacks {', '.join(missing)}")
        unknown = set(data) - set(required) - {"k1", "k2", "p1", "p2"}
        if unknown:
            raise InputError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
        try:
            cam = cls(int(data["width"]), int(data["height"]),
                      **{k: float(v) for k, v in data.items() if k not in ("width", "height")})
        except (TypeError, ValueError):
            raise InputError(f"{where} has non-numeric values") from None
        if cam.width <= 0 or cam.height <= 0 or cam.fx <= 0 or cam.fy <= 0:
            raise InputError(f"{where}: width, height, fx and fy must be positive")
        return cam

    @classmethod
    def from_json(cls, path: str | Path) -> PinholeCamera:
        return cls.from_dict(load_json_object(path, "camera file"), where=f"camera file {Path(path)}")

    # -- geometry --------------------------------------------------------------------------------------
    def distort_normalized(self, xn: np.ndarray, yn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r2 = xn * xn + yn * yn
        radial = 1.0 + self.k1 * r2 + self.k2 * r2 * r2
        xd = xn * radial + 2 * self.p1 * xn * yn + self.p2 * (r2 + 2 * xn * xn)
        yd = yn * radial + self.p1 * (r2 + 2 * yn * yn) + 2 * self.p2 * xn * yn
        return xd, yd

    def undistort_normalized(self, xd: np.ndarray, yd: np.ndarray, iterations: int = 20):
        """Invert the distortion by fixed-point iteration (converges for the mild distortion of landing cameras)."""
        xn, yn = xd.copy(), yd.copy()
        for _ in range(iterations):
            x2, y2 = self.distort_normalized(xn, yn)
            xn, yn = xn + (xd - x2), yn + (yd - y2)
        return xn, yn

    def project(self, points_world: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) of world points (N, 3); points behind the camera give NaN."""
        pc = np.asarray(points_world, float) @ np.asarray(R).T + np.asarray(t).reshape(1, 3)
        z = pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xn, yn = pc[:, 0] / z, pc[:, 1] / z
        if self.has_distortion:
            xn, yn = self.distort_normalized(xn, yn)
        uv = np.stack([self.fx * xn + self.cx, self.fy * yn + self.cy], axis=1)
        uv[z <= 0] = np.nan
        return uv

    def pixel_rays_camera(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Unit ray directions in the camera frame for pixel coordinates (any shape) → (..., 3)."""
        xd = (np.asarray(u, float) - self.cx) / self.fx
        yd = (np.asarray(v, float) - self.cy) / self.fy
        xn, yn = self.undistort_normalized(xd, yd) if self.has_distortion else (xd, yd)
        d = np.stack([xn, yn, np.ones_like(xn)], axis=-1)
        return d / np.linalg.norm(d, axis=-1, keepdims=True)


def camera_center(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    return -np.asarray(R).T @ np.asarray(t).reshape(3)


def pose_from_axis(optical_axis: np.ndarray, image_up: np.ndarray, center: np.ndarray):
    """(R, t) of a camera at ``center`` looking along ``optical_axis`` with ``image_up`` towards the image top."""
    z = np.asarray(optical_axis, float)
    z = z / np.linalg.norm(z)
    up = np.asarray(image_up, float)
    y = -(up - (up @ z) * z)
    y = y / np.linalg.norm(y)
    x = np.cross(y, z)
    R = np.stack([x, y, z])
    return R, -R @ np.asarray(center, float)


def attitude_deg(R: np.ndarray) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in degrees of a downward-looking camera in an east-north-up world frame.

    yaw: azimuth (clockwise from north) of the image-up direction; pitch: tilt of the optical axis from nadir
    towards image-up (positive = looking ahead); roll: tilt towards image-right. A nadir camera has 0, 0, yaw.
    """
    R = np.asarray(R, float)
    _x_c, y_c, z_c = R[0], R[1], R[2]
    fwd = -y_c.copy()
    fwd[2] = 0.0
    if np.linalg.norm(fwd) < 1e-9:  # looking at the horizon along image-up: fall back to the optical axis
        fwd = z_c.copy()
        fwd[2] = 0.0
    fwd = fwd / np.linalg.norm(fwd)
    right = np.array([fwd[1], -fwd[0], 0.0])
    yaw = float(np.degrees(np.arctan2(fwd[0], fwd[1])) % 360.0)
    pitch = float(np.degrees(np.arctan2(z_c @ fwd, -z_c[2])))
    roll = float(np.degrees(np.arctan2(z_c @ right, np.hypot(z_c[2], z_c @ fwd))))
    return roll, pitch, yaw
