"""Camera models (OpenCV conventions) and attitude angles in a local east-north-up frame.

Camera frame: x right, y down, z along the optical axis. A pose is (R, t) with x_cam = R X_world + t; the
camera centre is C = -R^T t. Pixel (0, 0) is the centre of the top-left pixel.

- :class:`PinholeCamera`: a pinhole with optional radial/tangential distortion k1, k2, p1, p2, k3 (OpenCV's
  ``projectPoints`` model, Brown 1966).
- :class:`FisheyeCamera`: OpenCV's fish-eye model (Kannala & Brandt 2006, equidistant base):
  θd = θ (1 + k1 θ² + k2 θ⁴ + k3 θ⁶ + k4 θ⁸), pixel = f θd (cos φ, sin φ) + c; COLMAP's OPENCV_FISHEYE.
- :func:`load_camera_spec`: a camera file, which may give only a field of view or a sensor and focal length
  (then the frame size completes it and the lens can be self-calibrated in the reconstruction).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from selenite.errors import InputError
from selenite.runs import load_json_object


@dataclass(frozen=True)
class _Intrinsics:
    """Image size, focal lengths and principal point (pixels), shared by every camera model."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class PinholeCamera(_Intrinsics):
    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    k3: float = 0.0

    model = "pinhole"

    @property
    def distortion(self) -> np.ndarray:
        """OpenCV's order: k1, k2, p1, p2, k3."""
        return np.array([self.k1, self.k2, self.p1, self.p2, self.k3])

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.distortion != 0.0))

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> PinholeCamera:
        f = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    def to_dict(self) -> dict:
        d = {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in asdict(self).items()}
        if not d["k3"]:
            d.pop("k3")              # files written before k3 existed read back the same
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "camera") -> PinholeCamera:
        return _intrinsics_from_dict(cls, data, where, ("k1", "k2", "p1", "p2", "k3"))

    @classmethod
    def from_json(cls, path: str | Path) -> PinholeCamera:
        return cls.from_dict(load_json_object(path, "camera file"), where=f"camera file {Path(path)}")

    # -- geometry --------------------------------------------------------------------------------------
    def distort_normalized(self, xn: np.ndarray, yn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r2 = xn * xn + yn * yn
        radial = 1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3))
        xd = xn * radial + 2 * self.p1 * xn * yn + self.p2 * (r2 + 2 * xn * xn)
        yd = yn * radial + self.p1 * (r2 + 2 * yn * yn) + 2 * self.p2 * xn * yn
        return xd, yd

    def undistort_normalized(self, xd: np.ndarray, yd: np.ndarray, iterations: int = 20):
        """Invert the distortion by fixed-point iteration (converges for the mild distortion of landing cameras)."""
        xd, yd = np.asarray(xd, float), np.asarray(yd, float)
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


@dataclass(frozen=True)
class FisheyeCamera(_Intrinsics):
    """OpenCV's fish-eye camera (``cv2.fisheye``; COLMAP OPENCV_FISHEYE): equidistant projection with an odd
    polynomial in the off-axis angle θ. Unlike a pinhole, it images rays up to and beyond 90° off axis."""

    k1: float = 0.0
    k2: float = 0.0
    k3: float = 0.0
    k4: float = 0.0

    model = "fisheye"
    has_distortion = True            # never a pinhole, even with k = 0

    @property
    def distortion(self) -> np.ndarray:
        return np.array([self.k1, self.k2, self.k3, self.k4])

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> FisheyeCamera:
        """The ideal equidistant fish-eye (k = 0) whose image width spans ``hfov_deg``."""
        f = (width / 2.0) / (np.radians(hfov_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    def to_dict(self) -> dict:
        d = {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in asdict(self).items()}
        return {"model": "fisheye", **d}

    @classmethod
    def from_dict(cls, data: dict, where: str = "camera") -> FisheyeCamera:
        return _intrinsics_from_dict(cls, data, where, ("k1", "k2", "k3", "k4"))

    def theta_d(self, theta: np.ndarray) -> np.ndarray:
        t2 = theta * theta
        return theta * (1.0 + t2 * (self.k1 + t2 * (self.k2 + t2 * (self.k3 + t2 * self.k4))))

    def theta_of(self, theta_d: np.ndarray, iterations: int = 30) -> np.ndarray:
        """Invert θd(θ) by Newton's method (monotonic over any usable field of view)."""
        theta_d = np.asarray(theta_d, float)
        th = theta_d.copy()
        for _ in range(iterations):
            t2 = th * th
            f = self.theta_d(th) - theta_d
            df = 1.0 + t2 * (3 * self.k1 + t2 * (5 * self.k2 + t2 * (7 * self.k3 + t2 * 9 * self.k4)))
            step = f / np.where(np.abs(df) > 1e-12, df, 1e-12)
            th = th - step
            if np.nanmax(np.abs(step), initial=0.0) < 1e-14:
                break
        return th

    def project(self, points_world: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) of world points (N, 3); points behind the camera give NaN."""
        pc = np.asarray(points_world, float) @ np.asarray(R).T + np.asarray(t).reshape(1, 3)
        uv = self.project_camera(pc)
        uv[pc[:, 2] <= 0] = np.nan
        return uv

    def project_camera(self, pc: np.ndarray) -> np.ndarray:
        """Pixel coordinates of points (or directions) in the camera frame, any side of the image plane."""
        pc = np.asarray(pc, float)
        rho = np.hypot(pc[:, 0], pc[:, 1])
        theta = np.arctan2(rho, pc[:, 2])
        scale = np.where(rho > 1e-15, self.theta_d(theta) / np.where(rho > 1e-15, rho, 1.0), 1.0 / pc[:, 2])
        return np.stack([self.fx * pc[:, 0] * scale + self.cx, self.fy * pc[:, 1] * scale + self.cy], axis=1)

    def pixel_rays_camera(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Unit ray directions in the camera frame for pixel coordinates (any shape) → (..., 3)."""
        a = (np.asarray(u, float) - self.cx) / self.fx
        b = (np.asarray(v, float) - self.cy) / self.fy
        td = np.hypot(a, b)
        th = self.theta_of(td)
        s = np.where(td > 1e-15, np.sin(th) / np.where(td > 1e-15, td, 1.0), 1.0)
        return np.stack([a * s, b * s, np.cos(th)], axis=-1)

    def half_fov_deg(self) -> float:
        """Half the horizontal field of view (degrees), from the centre to the image's left/right edges."""
        d = self.pixel_rays_camera(np.array([-0.5, self.width - 0.5]), np.array([self.cy, self.cy]))
        return float(np.degrees(np.arccos(np.clip(d[:, 2], -1, 1))).min())


Camera = PinholeCamera | FisheyeCamera


def _intrinsics_from_dict(cls, data: dict, where: str, extra: tuple[str, ...]):
    data = {k: v for k, v in data.items() if k != "model"}
    required = ("width", "height", "fx", "fy", "cx", "cy")
    missing = [k for k in required if k not in data]
    if missing:
        raise InputError(f"{where} lacks {', '.join(missing)}")
    unknown = set(data) - set(required) - set(extra)
    if unknown:
        raise InputError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    try:
        cam = cls(int(data["width"]), int(data["height"]),
                  **{k: float(v) for k, v in data.items() if k not in ("width", "height")})
    except (TypeError, ValueError):
        raise InputError(f"{where} has non-numeric values") from None
    if cam.width <= 0 or cam.height <= 0 or cam.fx <= 0 or cam.fy <= 0:
        raise InputError(f"{where}: width, height, fx and fy must be positive")
    if not all(np.isfinite(v) for v in asdict(cam).values()):
        raise InputError(f"{where} has non-finite values")
    return cam


def camera_from_dict(data: dict, where: str = "camera") -> Camera:
    """A fully specified camera (pinhole, OpenCV radial or OpenCV fish-eye) from its dictionary."""
    model = str(data.get("model", "pinhole")).lower()
    if model in ("pinhole", "opencv", "radial"):
        return PinholeCamera.from_dict(data, where)
    if model in ("fisheye", "opencv_fisheye"):
        return FisheyeCamera.from_dict(data, where)
    raise InputError(f"{where}: unknown camera model {data.get('model')!r} (pinhole, opencv or fisheye)")


@dataclass(frozen=True)
class CameraSpec:
    """What a camera file says. ``camera`` when it is complete; otherwise a lens model with a field of view
    (or a sensor and focal length) that :meth:`resolve` completes from the frame size. ``self_calibrate``: refine
    the focal length and distortion in the reconstruction (default: when the distortion was not given)."""

    model: str
    camera: Camera | None = None
    hfov_deg: float | None = None
    focal_mm: float | None = None
    sensor_width_mm: float | None = None
    self_calibrate: bool = False

    def resolve(self, width: int, height: int) -> Camera:
        if self.camera is not None:
            if (self.camera.width, self.camera.height) != (width, height):
                raise InputError(f"the camera is {self.camera.width}×{self.camera.height} but the frames are "
                                 f"{width}×{height}")
            return self.camera
        if self.hfov_deg is not None:
            hfov = self.hfov_deg
        else:                                       # a sensor and focal length
            half = self.sensor_width_mm / 2.0
            hfov = 2 * np.degrees(half / self.focal_mm if self.model == "fisheye"
                                  else np.arctan(half / self.focal_mm))
        if self.model == "fisheye":
            return FisheyeCamera.from_fov(width, height, hfov)
        return PinholeCamera.from_fov(width, height, hfov)


SPEC_FIELDS = {"model", "fov_deg", "focal_mm", "sensor_width_mm", "self_calibrate"}


def camera_spec_from_dict(data: dict, where: str = "camera") -> CameraSpec:
    model = str(data.get("model", "pinhole")).lower()
    if model == "opencv_fisheye":
        model = "fisheye"
    if model in ("opencv", "radial"):
        model = "pinhole"
    if model not in ("pinhole", "fisheye"):
        raise InputError(f"{where}: unknown camera model {data.get('model')!r} (pinhole, opencv or fisheye)")
    calib = data.get("self_calibrate")
    if calib is not None and not isinstance(calib, bool):
        raise InputError(f"{where}: self_calibrate must be true or false")
    if "fx" in data or "width" in data:
        cam = camera_from_dict({k: v for k, v in data.items() if k != "self_calibrate"}, where)
        return CameraSpec(model, camera=cam, self_calibrate=bool(calib))
    unknown = set(data) - SPEC_FIELDS
    if unknown:
        raise InputError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")

    def positive(key, hi=None):
        v = data.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or v <= 0 \
                or (hi is not None and v >= hi):
            raise InputError(f"{where}: {key} must be a number in (0, {hi or 'inf'})")
        return float(v)

    limit = 360.0 if model == "fisheye" else 180.0
    fov = positive("fov_deg", limit)
    focal, sensor = positive("focal_mm"), positive("sensor_width_mm")
    if fov is None and (focal is None or sensor is None):
        raise InputError(f"{where} needs the intrinsics (width, height, fx, fy, cx, cy), a field of view "
                         "(fov_deg) or a sensor and focal length (sensor_width_mm, focal_mm)")
    # a lens known only by its field of view: its focal length and distortion are refined by default
    return CameraSpec(model, hfov_deg=fov, focal_mm=focal, sensor_width_mm=sensor,
                      self_calibrate=True if calib is None else calib)


def load_camera_spec(path: str | Path) -> CameraSpec:
    return camera_spec_from_dict(load_json_object(path, "camera file"), where=f"camera file {Path(path)}")


def pinhole_for(camera: Camera, max_half_fov_deg: float = 50.0) -> PinholeCamera:
    """The distortion-free pinhole of the same size that a distorted camera's frames are resampled to: the
    horizontal field of view kept, up to ±``max_half_fov_deg``."""
    if isinstance(camera, FisheyeCamera):
        half = camera.half_fov_deg()
    else:
        d = camera.pixel_rays_camera(np.array([-0.5, camera.width - 0.5]), np.array([camera.cy, camera.cy]))
        half = float(np.degrees(np.arccos(d[:, 2])).min())
    half = min(half, max_half_fov_deg)
    f = (camera.width / 2.0) / np.tan(np.radians(half))
    return PinholeCamera(camera.width, camera.height, f, f * camera.fy / camera.fx,
                         (camera.width - 1) / 2.0, (camera.height - 1) / 2.0)


def undistort_maps(camera: Camera, target: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps that resample a frame of ``camera`` into the ``target`` pinhole."""
    u, v = np.meshgrid(np.arange(target.width, dtype=float), np.arange(target.height, dtype=float))
    d = target.pixel_rays_camera(u, v).reshape(-1, 3)
    if isinstance(camera, FisheyeCamera):
        uv = camera.project_camera(d)
    else:
        uv = camera.project(d, np.eye(3), np.zeros(3))
    uv = uv.reshape(target.height, target.width, 2).astype(np.float32)
    return uv[..., 0], uv[..., 1]


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
