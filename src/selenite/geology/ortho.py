"""Orthorectification of a descent frame from its pose: onto the ground plane given by a surface normal (the
normal-constrained homography of the Chang'E-6 paper), or onto a DEM.

World frame: metric, z up, x/y the map coordinates of ``crs`` (a locate run's local stereographic frame, or a
synthetic world's map frame). The output is a north-up raster on the map grid at the requested GSD:

- **plane**: the ground is the plane through ``point`` with unit ``normal``. A map point (x, y) lies on it at
  z = z0 − (n_x (x − x0) + n_y (y − y0)) / n_z, so map → image is one homography
  H = K [R e_x − R n_xy / n_z | ... ] (built below from the three plane basis points) and every output pixel is
  sampled through it (plus the lens distortion, when the camera has one).
- **DEM**: each output pixel takes the DEM height at its map position and is projected into the frame; a pixel
  is kept only if it is the surface the camera sees there: the DEM is splatted into a depth buffer at the
  frame's resolution and points more than ``occlusion_tolerance`` behind the nearest surface along the same
  ray are hidden terrain (left as no data).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from affine import Affine

from selenite.errors import InputError
from selenite.geo.camera import PinholeCamera, camera_center


@dataclass
class Pose:
    """A frame's camera: intrinsics and world → camera rotation and translation (x_cam = R X + t)."""

    camera: PinholeCamera
    R: np.ndarray
    t: np.ndarray

    @property
    def center(self) -> np.ndarray:
        return camera_center(self.R, self.t)


def check_normal(normal) -> np.ndarray:
    n = np.asarray(normal, dtype=float).reshape(3)
    norm = np.linalg.norm(n)
    if not np.isfinite(norm) or norm == 0:
        raise InputError(f"the surface normal must be a non-zero vector (got {list(map(float, n))})")
    n = n / norm
    if n[2] <= np.cos(np.radians(60.0)):
        raise InputError(f"the surface normal {np.round(n, 3).tolist()} is more than 60° from vertical "
                         "(or points down); give it in the world frame, z up")
    return n


def plane_z(x, y, point: np.ndarray, normal: np.ndarray):
    """Height of the plane through ``point`` with ``normal`` at map positions (x, y)."""
    return point[2] - (normal[0] * (np.asarray(x) - point[0]) + normal[1] * (np.asarray(y) - point[1])) / normal[2]


def map_to_image_homography(pose: Pose, point: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """3×3 H with [u, v, 1]ᵀ ~ H [x, y, 1]ᵀ for map points on the ground plane (undistorted pixels)."""
    # X(x, y) = [x, y, z(x, y)] is affine in (x, y): X = A [x, y, 1]^T
    gx, gy = -normal[0] / normal[2], -normal[1] / normal[2]
    z0 = point[2] - gx * point[0] - gy * point[1]
    A = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [gx, gy, z0]])
    P = pose.camera.K @ np.hstack([pose.R, pose.t.reshape(3, 1)])
    return P @ np.vstack([A, [0.0, 0.0, 1.0]])


def footprint(pose: Pose, point: np.ndarray, normal: np.ndarray, max_range_factor: float = 6.0):
    """Map bounds (xmin, ymin, xmax, ymax) of the frame's view of the ground plane; rays towards the horizon
    are cut at ``max_range_factor`` × the camera's height above the plane."""
    cam = pose.camera
    s = np.linspace(0, 1, 17)
    u = np.concatenate([s * (cam.width - 1), np.full(17, cam.width - 1.0), s[::-1] * (cam.width - 1), np.zeros(17)])
    v = np.concatenate([np.zeros(17), s * (cam.height - 1), np.full(17, cam.height - 1.0), s[::-1] * (cam.height - 1)])
    rays = cam.pixel_rays_camera(u - 0.0, v - 0.0) @ pose.R          # camera → world directions
    C = pose.center
    h = float(np.dot(C - point, normal))
    if h <= 0:
        raise InputError("the camera is below the ground plane; check the pose and the plane height")
    denom = rays @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = -h / denom
    ok = np.isfinite(lam) & (lam > 0)
    if ok.sum() < 4:
        raise InputError("the frame does not see the ground plane (its rays point above the horizon)")
    max_len = max_range_factor * h
    lam = np.where(ok, np.minimum(lam, max_len / np.maximum(np.linalg.norm(rays, axis=1), 1e-12)), max_len)
    # rays pointing up: take the horizontal direction to the cut range so the bounds still cover the view
    pts = C + rays * lam[:, None]
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def _grid(bounds, gsd: float, max_pixels: int):
    x0, y0, x1, y1 = bounds
    w = int(np.ceil((x1 - x0) / gsd))
    h = int(np.ceil((y1 - y0) / gsd))
    if w * h > max_pixels:
        raise InputError(f"an ortho of {w}×{h} px at {gsd:g} m/px is larger than the {max_pixels:,}-pixel limit; "
                         "give a coarser --gsd")
    transform = Affine(gsd, 0.0, x0, 0.0, -gsd, y1)
    xs = x0 + (np.arange(w) + 0.5) * gsd
    ys = y1 - (np.arange(h) + 0.5) * gsd
    return transform, xs, ys


def _sample(image: np.ndarray, uv: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear sampling of an image at pixel coordinates (pixel centres at integers) → (values, valid)."""
    mx = uv[..., 0].astype(np.float32).reshape(shape)
    my = uv[..., 1].astype(np.float32).reshape(shape)
    h, w = image.shape[:2]
    valid = np.isfinite(mx) & np.isfinite(my) & (mx >= -0.5) & (my >= -0.5) & (mx <= w - 0.5) & (my <= h - 0.5)
    mx = np.where(valid, mx, -10).astype(np.float32)
    my = np.where(valid, my, -10).astype(np.float32)
    out = cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, valid


def ortho_plane(image: np.ndarray, pose: Pose, point, normal, gsd: float, bounds=None,
                max_pixels: int = 60_000_000):
    """Ortho of ``image`` on the plane → (array, valid mask, affine transform of the map grid)."""
    point = np.asarray(point, float).reshape(3)
    normal = check_normal(normal)
    if not gsd > 0:
        raise InputError(f"--gsd must be positive (got {gsd})")
    bounds = bounds or footprint(pose, point, normal)
    transform, xs, ys = _grid(bounds, gsd, max_pixels)
    X, Y = np.meshgrid(xs, ys)
    Z = plane_z(X, Y, point, normal)
    uv = pose.camera.project(np.column_stack([X.ravel(), Y.ravel(), Z.ravel()]), pose.R, pose.t)
    out, valid = _sample(image, uv, X.shape)
    return out, valid, transform


def ortho_dem(image: np.ndarray, pose: Pose, dem: np.ndarray, dem_transform: Affine, gsd: float, bounds,
              occlusion_tolerance: float = 0.05, max_pixels: int = 60_000_000):
    """Ortho of ``image`` onto a DEM (heights in the world frame's z) with hidden terrain masked."""
    if not gsd > 0:
        raise InputError(f"--gsd must be positive (got {gsd})")
    transform, xs, ys = _grid(bounds, gsd, max_pixels)
    X, Y = np.meshgrid(xs, ys)
    inv = ~dem_transform
    col, row = inv * (X, Y)
    Z = cv2.remap(dem.astype(np.float32), (col - 0.5).astype(np.float32), (row - 0.5).astype(np.float32),
                  interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
    pts = np.column_stack([X.ravel(), Y.ravel(), Z.ravel()])
    uv = pose.camera.project(pts, pose.R, pose.t)
    depth = (pts @ pose.R.T + pose.t)[:, 2]
    out, valid = _sample(image, uv, X.shape)
    valid &= np.isfinite(Z)
    # depth buffer: nearest surface depth per frame pixel from the DEM itself (dense enough: splat at the
    # frame's pixel grid from the DEM points inside the ortho grid and a one-pixel dilation)
    cam = pose.camera
    ok = valid.ravel() & np.isfinite(depth)
    ui = np.round(uv[ok, 0]).astype(int)
    vi = np.round(uv[ok, 1]).astype(int)
    zbuf = np.full((cam.height, cam.width), np.inf, dtype=np.float64)
    np.minimum.at(zbuf, (vi, ui), depth[ok])
    zbuf = cv2.erode(zbuf.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.float64)  # min filter
    seen = np.zeros(ok.shape, bool)
    seen[np.flatnonzero(ok)] = depth[ok] <= zbuf[vi, ui] * (1 + occlusion_tolerance)
    valid &= seen.reshape(valid.shape)
    return out, valid, transform


def axis_ratio(points: np.ndarray) -> float:
    """Minor / major axis of the ellipse fitted (least squares, OpenCV) to a closed outline's points."""
    pts = np.asarray(points, np.float32).reshape(-1, 1, 2)
    if len(pts) < 5 or not np.isfinite(pts).all():
        return float("nan")
    (_, _), (a, b), _ = cv2.fitEllipse(pts)
    return float(min(a, b) / max(a, b)) if max(a, b) > 0 else float("nan")


def image_to_map_on_plane(uv: np.ndarray, pose: Pose, point, normal) -> np.ndarray:
    """Map (x, y) where the rays of frame pixels (N, 2) meet the ground plane (NaN for rays that miss)."""
    point = np.asarray(point, float).reshape(3)
    normal = check_normal(normal)
    rays = pose.camera.pixel_rays_camera(uv[:, 0], uv[:, 1]) @ pose.R
    C = pose.center
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.dot(point - C, normal) / (rays @ normal)
    lam = np.where(lam > 0, lam, np.nan)
    return (C + rays * lam[:, None])[:, :2]
