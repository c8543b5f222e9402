"""Ground-level synthetic scenes for terrain segmentation: a rover's or lander's eye view of a small patch of
regolith with rocks of two size classes under a low Sun, with hard shadows and a black sky, and a pixel-exact
class mask (0 background, 1 small rocks, 2 large rocks, 3 sky).

Each scene is its own world, from its seed: a rolling heightfield (value noise, a few small craters) of
``patch_m`` at ``pixel_m``, rocks as half-buried ellipsoids with a noisy outline (sizes from a power law;
``large_rock_m`` separates the classes, LunarSite's small/large rock split being by apparent size), brighter
than the regolith. The same renderer as the descent frames draws it (lunar-Lambert, cast shadows from the
solar disk, ambient light) through a pinhole camera 0.6–2.5 m above the ground, pitched 2–35° down, so the
horizon and the sky are in most frames. A pixel's class is the class of the ground point its ray hits (sky where
it hits nothing), so the masks are exact by construction. The patch's edge zone is flattened and rock-free,
so rays leaving it continue over a plain to the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from selenite.geo.camera import PinholeCamera, pose_from_axis
from selenite.synth.render import build_scene, render_perspective, to_image

CLASSES = ("background", "small_rocks", "large_rocks", "sky")
PALETTE = np.array([[128, 128, 128], [255, 160, 0], [220, 40, 40], [20, 40, 160]], np.uint8)


@dataclass(frozen=True)
class SceneSpec:
    size_px: int = 128
    hfov_deg: float = 60.0
    patch_m: float = 16.0
    pixel_m: float = 0.04
    large_rock_m: float = 0.35
    sun_elevation_deg: tuple[float, float] = (7.0, 30.0)
    camera_height_m: tuple[float, float] = (0.6, 2.5)
    pitch_deg: tuple[float, float] = (2.0, 35.0)


def _noise(shape, rng, scales_px=(96, 32, 12, 4), amps=(1.0, 0.35, 0.12, 0.04)) -> np.ndarray:
    out = np.zeros(shape)
    for s, a in zip(scales_px, amps, strict=True):
        g = rng.standard_normal((shape[0] // s + 3, shape[1] // s + 3))
        out += a * ndimage.zoom(g, s, order=3)[:shape[0], :shape[1]]
    return out


def _terrain(spec: SceneSpec, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(height m, albedo, class raster) of one patch."""
    n = int(round(spec.patch_m / spec.pixel_m))
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    z = _noise((n, n), rng) * rng.uniform(0.03, 0.12)
    for _ in range(rng.poisson(2.0)):                               # small craters
        cx, cy = rng.uniform(0.2, 0.8, 2) * n
        R = rng.uniform(0.4, 2.5) / spec.pixel_m
        r = np.hypot(xx - cx, yy - cy) / R
        depth = rng.uniform(0.05, 0.15) * 2 * R * spec.pixel_m
        z += np.where(r < 1, depth * (r**2 - 1), 0.15 * depth * np.exp(-(r - 1) * 4) * (r >= 1))
    albedo = 1.0 + 0.08 * _noise((n, n), rng, (64, 16, 4), (1.0, 0.5, 0.3))
    cls = np.zeros((n, n), np.uint8)
    rock_h = np.zeros((n, n))
    edge = 0.15 * n
    # sizes: a power law N(>D) ∝ D^-2.5 between 4 cm and 1.6 m, plus a field of large blocks
    n_rocks = rng.poisson(rng.uniform(300, 1500))
    d = 0.04 * (1 - rng.uniform(0, 1 - (0.04 / 1.6) ** 2.5, n_rocks)) ** (-1 / 2.5)
    d = np.concatenate([d, rng.uniform(spec.large_rock_m, 1.6, rng.poisson(rng.uniform(3, 25)))])
    for D in np.sort(d)[::-1]:
        cx, cy = rng.uniform(edge, n - edge, 2)
        a = D / 2 / spec.pixel_m
        b = a * rng.uniform(0.6, 1.0)
        th = rng.uniform(0, np.pi)
        h = D * rng.uniform(0.25, 0.55)
        k = int(np.ceil(a * 1.4)) + 2
        r0, r1 = max(int(cy) - k, 0), min(int(cy) + k + 1, n)
        c0, c1 = max(int(cx) - k, 0), min(int(cx) + k + 1, n)
        X, Y = xx[r0:r1, c0:c1] - cx, yy[r0:r1, c0:c1] - cy
        u = (X * np.cos(th) + Y * np.sin(th)) / a
        v = (-X * np.sin(th) + Y * np.cos(th)) / b
        ang = np.arctan2(v, u)
        wob = 1 + 0.15 * np.sin(3 * ang + rng.uniform(0, 6.3)) + 0.08 * np.sin(5 * ang + rng.uniform(0, 6.3))
        q = 1 - (u**2 + v**2) / wob**2
        bump = np.where(q > 0, h * np.sqrt(np.clip(q, 0, 1)), 0.0)
        higher = bump > rock_h[r0:r1, c0:c1]
        rock_h[r0:r1, c0:c1] = np.where(higher, bump, rock_h[r0:r1, c0:c1])
        cls[r0:r1, c0:c1] = np.where(higher & (bump > 0), 2 if D >= spec.large_rock_m else 1, cls[r0:r1, c0:c1])
        albedo[r0:r1, c0:c1] = np.where(higher & (bump > 0), rng.uniform(1.1, 1.7), albedo[r0:r1, c0:c1])
    z = z + rock_h
    # flatten the edge zone so that rays leaving the patch run on over a plain
    w = np.clip(np.minimum.reduce([xx, yy, n - 1 - xx, n - 1 - yy]) / edge, 0, 1)
    w = w * w * (3 - 2 * w)
    z = z * w + float(np.median(z)) * (1 - w)
    return z, np.clip(albedo, 0.3, None), cls


def render_scene(seed: int, spec: SceneSpec = SceneSpec()) -> tuple[np.ndarray, np.ndarray]:
    """(grey image uint8 (h, w), class mask uint8 (h, w)) of scene ``seed``."""
    rng = np.random.default_rng([seed, 8])
    z, albedo, cls = _terrain(spec, rng)
    n = z.shape[0]
    half = (n - 1) / 2 * spec.pixel_m
    sun_az = rng.uniform(0, 360)
    sun_el = rng.uniform(*spec.sun_elevation_deg)
    scene = build_scene(z, spec.pixel_m, -half, half, albedo, sun_az, sun_el, origin=(0.0, 0.0),
                        detail_seed=int(rng.integers(1 << 30)), detail_amplitude=0.12, ambient=0.01,
                        disk_samples=3)
    cam = PinholeCamera.from_fov(spec.size_px, spec.size_px, spec.hfov_deg)
    # camera in the outer part of the patch, looking across its centre
    ang = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(0.15, 0.3) * spec.patch_m
    cx, cy = dist * np.cos(ang), dist * np.sin(ang)
    look = np.radians(np.degrees(ang) + 180 + rng.uniform(-35, 35))
    col, row = (cx + half) / spec.pixel_m, (half - cy) / spec.pixel_m
    ground = float(ndimage.map_coordinates(scene.z, [[row], [col]], order=1)[0])
    C = np.array([cx, cy, ground + rng.uniform(*spec.camera_height_m)])
    pitch = np.radians(rng.uniform(*spec.pitch_deg))
    axis = np.array([np.cos(look) * np.cos(pitch), np.sin(look) * np.cos(pitch), -np.sin(pitch)])
    up = np.array([0.0, 0.0, 1.0])
    roll = np.radians(rng.normal(0, 3))
    side = np.cross(axis, up)
    side /= np.linalg.norm(side)
    img_up = np.cross(side, axis)
    img_up = img_up * np.cos(roll) + side * np.sin(roll)
    R, t = pose_from_axis(axis, img_up, C)
    rad, hit = render_perspective(scene, cam, R, C)
    img, _ = to_image(rad, rng, percentile=99.0, target=rng.uniform(0.7, 0.95), full_well_e=30000.0)
    sky = ~np.isfinite(hit[..., 0])
    hc = (np.nan_to_num(hit[..., 0]) + half) / spec.pixel_m
    hr = (half - np.nan_to_num(hit[..., 1])) / spec.pixel_m
    mask = ndimage.map_coordinates(cls, [hr.ravel(), hc.ravel()], order=0, mode="nearest").reshape(sky.shape)
    mask = np.where(sky, 3, mask).astype(np.uint8)
    return img, mask


def colorize(mask: np.ndarray) -> np.ndarray:
    return PALETTE[np.clip(mask, 0, len(PALETTE) - 1)]
