"""Rendering the synthetic world: lunar-Lambert shading with cast shadows, orthographic maps, pinhole frames.

One radiance function serves every view, so an orbital map and a descent frame see the same surface:
``albedo × detail × lunar-Lambert(i, e, g) × lit + ambient``. ``lit`` is the fraction of the solar disk seen
from each DEM pixel (cast shadows by a running-maximum sweep along the sun azimuth, the disk sampled at a
few elevations). ``detail`` is a procedural multi-octave value noise on the albedo whose octaves finer than
twice the pixel footprint are faded out, so close-range frames keep texture the DEM cannot hold and far
views stay alias-free. Perspective frames intersect each pixel's ray with the height field (march, then
bisection) and evaluate the radiance at the hit.

References: McEwen (1991, 1996) lunar-Lambert photometry; horizon sweep after Dozier et al. (1981).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numba
import numpy as np
from scipy import ndimage

from selenite.geo.camera import PinholeCamera
from selenite.geo.crs import MOON_RADIUS_M


@lru_cache(maxsize=1)
def photometry() -> dict:
    return tomllib.loads(files("selenite").joinpath("data/photometry.toml").read_text("utf-8"))


def sun_direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector towards the sun in east-north-up; azimuth clockwise from north."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])


def curvature_drop(x_m: np.ndarray, y_m: np.ndarray, radius_m: float = MOON_RADIUS_M) -> np.ndarray:
    """How far the sphere falls below the tangent plane at horizontal distance sqrt(x²+y²) from the origin."""
    return (x_m**2 + y_m**2) / (2.0 * radius_m)


def surface_normals(z: np.ndarray, pixel_m: float) -> np.ndarray:
    """Unit normals (3, rows, cols) in east-north-up of a height grid whose rows run north to south."""
    dz_drow, dz_dcol = np.gradient(z.astype(np.float64), pixel_m)
    dzdx, dzdy = dz_dcol, -dz_drow
    n = np.stack([-dzdx, -dzdy, np.ones_like(dzdx)])
    return (n / np.linalg.norm(n, axis=0)).astype(np.float32)


def shadow_height(z: np.ndarray, pixel_m: float, azimuth_deg: float, elevations_deg) -> list[np.ndarray]:
    """For each sun elevation, how far (m) the sun-grazing line from the highest occluder passes above each pixel.

    Positive means the pixel is in a cast shadow. Along a line towards the sun (coordinate u, metres) a pixel
    is shadowed iff max over u' > u of [z(u') - u' tan e] exceeds z(u) - u tan e: a running maximum. The DEM
    is resampled on a grid rotated to the sun azimuth (bilinear; edges extended), swept, and the result is
    sampled back to the DEM grid, so the boundary is located to a fraction of a pixel.
    """
    ny, nx = z.shape
    az = np.radians(azimuth_deg)
    dc, dr = np.sin(az), -np.cos(az)            # towards the sun, in (col, row) pixel units
    pc, pr = -dr, dc                            # across the sun direction
    cc = np.array([0, nx - 1, 0, nx - 1], float)
    rr = np.array([0, 0, ny - 1, ny - 1], float)
    us, vs = cc * dc + rr * dr, cc * pc + rr * pr
    u = np.arange(np.floor(us.min()), np.ceil(us.max()) + 1.0)
    v = np.arange(np.floor(vs.min()), np.ceil(vs.max()) + 1.0)
    U, V = np.meshgrid(u, v)
    zr = ndimage.map_coordinates(z.astype(np.float64), [U * dr + V * pr, U * dc + V * pc], order=1,
                                 mode="nearest")
    col, row = np.meshgrid(np.arange(nx, dtype=float), np.arange(ny, dtype=float))
    back = [col * pc + row * pr - v[0], col * dc + row * dr - u[0]]
    out = []
    for el in np.atleast_1d(elevations_deg):
        w = zr - U * pixel_m * np.tan(np.radians(el))
        run = np.maximum.accumulate(w[:, ::-1], axis=1)[:, ::-1]
        ahead = np.full_like(w, -np.inf)
        ahead[:, :-1] = run[:, 1:]
        s = ahead - w
        s[~np.isfinite(s)] = -1e6
        out.append(ndimage.map_coordinates(s, back, order=1, mode="nearest"))
    return out


def lit_fraction(z: np.ndarray, pixel_m: float, azimuth_deg: float, elevation_deg: float,
                 disk_samples: int = 5, disk_radius_deg: float | None = None) -> np.ndarray:
    """Fraction (0..1) of the solar disk visible from each pixel, cast shadows only (float32)."""
    if disk_radius_deg is None:
        disk_radius_deg = photometry()["sun"]["angular_radius_deg"]
    if disk_samples <= 1 or disk_radius_deg == 0:
        offsets, weights = np.array([0.0]), np.array([1.0])
    else:
        offsets = np.linspace(-1.0, 1.0, disk_samples + 2)[1:-1]
        weights = np.sqrt(1.0 - offsets**2)
    heights = shadow_height(z, pixel_m, azimuth_deg, elevation_deg + disk_radius_deg * offsets)
    lit = sum(w * (h <= 0.0) for w, h in zip(weights, heights, strict=True)) / weights.sum()
    return lit.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Scene and the shared radiance kernel
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Scene:
    """Everything the renderer needs on the DEM grid for one sun position.

    ``z`` is height in the local east-north-up frame whose origin is map point (origin_x, origin_y) at height
    0 of the reference sphere (the sphere's curvature applied). ``x0, y0`` are the map coordinates of the
    centre of DEM pixel (0, 0).
    """

    z: np.ndarray
    albedo: np.ndarray
    lit: np.ndarray
    normals: np.ndarray
    x0: float
    y0: float
    pixel_m: float
    origin_x: float
    origin_y: float
    sun: np.ndarray
    detail_seed: int = 0
    detail_amplitude: float = 0.25
    ambient: float = 0.02

    @property
    def z_range(self) -> tuple[float, float]:
        return float(np.nanmin(self.z)), float(np.nanmax(self.z))

    def to_local(self, x_map, y_map):
        return np.asarray(x_map, float) - self.origin_x, np.asarray(y_map, float) - self.origin_y

    def kernel_args(self):
        ll = np.array(photometry()["lunar_lambert"]["mcewen1996"]["coefficients"], float)
        return (self.z.astype(np.float32), self.albedo.astype(np.float32), self.lit.astype(np.float32),
                self.normals.astype(np.float32), float(self.x0 - self.origin_x), float(self.y0 - self.origin_y),
                float(self.pixel_m), self.sun.astype(np.float64), np.int64(self.detail_seed),
                float(self.detail_amplitude), float(self.ambient), ll)


def build_scene(dem: np.ndarray, pixel_m: float, x0: float, y0: float, albedo: np.ndarray,
                sun_azimuth_deg: float, sun_elevation_deg: float, *, origin: tuple[float, float] | None = None,
                detail_seed: int = 0, detail_amplitude: float = 0.25, ambient: float = 0.02,
                disk_samples: int = 5) -> Scene:
    """Precompute the local heights (curvature applied), normals and cast-shadow fraction for one sun."""
    ny, nx = dem.shape
    if origin is None:
        origin = (x0 + (nx - 1) / 2.0 * pixel_m, y0 - (ny - 1) / 2.0 * pixel_m)
    xs = x0 + np.arange(nx) * pixel_m - origin[0]
    ys = y0 - np.arange(ny) * pixel_m - origin[1]
    z = dem.astype(np.float64) - curvature_drop(xs[None, :], ys[:, None])
    return Scene(
        z=z.astype(np.float32), albedo=albedo.astype(np.float32),
        lit=lit_fraction(z, pixel_m, sun_azimuth_deg, sun_elevation_deg, disk_samples),
        normals=surface_normals(z, pixel_m), x0=x0, y0=y0, pixel_m=pixel_m, origin_x=origin[0],
        origin_y=origin[1], sun=sun_direction(sun_azimuth_deg, sun_elevation_deg), detail_seed=detail_seed,
        detail_amplitude=detail_amplitude, ambient=ambient,
    )


@numba.njit(cache=True, inline="always")
def _bilerp(a, col, row):
    ny, nx = a.shape
    col = min(max(col, 0.0), nx - 1.000001)
    row = min(max(row, 0.0), ny - 1.000001)
    c0 = int(col)
    r0 = int(row)
    fc = col - c0
    fr = row - r0
    return ((a[r0, c0] * (1 - fc) + a[r0, c0 + 1] * fc) * (1 - fr)
            + (a[r0 + 1, c0] * (1 - fc) + a[r0 + 1, c0 + 1] * fc) * fr)


@numba.njit(cache=True, inline="always")
def _hash01(ix, iy, octave, seed):
    h = (np.uint64(ix & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        np.uint64(iy & 0xFFFFFFFF) * np.uint64(0xC2B2AE3D27D4EB4F))
    h ^= np.uint64(octave) * np.uint64(0x165667B19E3779F9) + np.uint64(seed)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return (h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True)
def _detail(x, y, footprint, base_wavelength, seed, amplitude):
    """Multi-octave value noise (mean 1) with octaves finer than 2 footprints faded out."""
    total = 0.0
    lam = base_wavelength
    weight = amplitude
    for k in range(16):
        fade = min(max(lam / (2.0 * footprint) - 1.0, 0.0), 1.0)
        if fade <= 0.0 or lam < 1e-3:
            break
        gx = x / lam
        gy = y / lam
        ix = int(np.floor(gx))
        iy = int(np.floor(gy))
        fx = gx - ix
        fy = gy - iy
        sx = fx * fx * (3 - 2 * fx)
        sy = fy * fy * (3 - 2 * fy)
        v00 = _hash01(ix, iy, k, seed)
        v10 = _hash01(ix + 1, iy, k, seed)
        v01 = _hash01(ix, iy + 1, k, seed)
        v11 = _hash01(ix + 1, iy + 1, k, seed)
        v = (v00 * (1 - sx) + v10 * sx) * (1 - sy) + (v01 * (1 - sx) + v11 * sx) * sy
        total += fade * weight * (2.0 * v - 1.0)
        lam *= 0.5
        weight *= 0.9
    return max(1.0 + total, 0.05)


@numba.njit(cache=True, inline="always")
def _radiance(z, albedo, lit, normals, x0, y0, pixel_m, sun, seed, amp, ambient, ll, x, y, vx, vy, vz, footprint):
    """Radiance at local (x, y) on the surface seen from direction (vx, vy, vz) (unit, surface → viewer)."""
    col = (x - x0) / pixel_m
    row = (y0 - y) / pixel_m
    nx_ = _bilerp(normals[0], col, row)
    ny_ = _bilerp(normals[1], col, row)
    nz_ = _bilerp(normals[2], col, row)
    nn = np.sqrt(nx_ * nx_ + ny_ * ny_ + nz_ * nz_)
    nx_ /= nn
    ny_ /= nn
    nz_ /= nn
    cos_i = nx_ * sun[0] + ny_ * sun[1] + nz_ * sun[2]
    cos_e = max(nx_ * vx + ny_ * vy + nz_ * vz, 1e-3)
    a = _bilerp(albedo, col, row) * _detail(x, y, footprint, 4.0 * pixel_m, seed, amp)
    if cos_i <= 0.0:
        return a * ambient
    g = np.degrees(np.arccos(min(max(sun[0] * vx + sun[1] * vy + sun[2] * vz, -1.0), 1.0)))
    L = ll[0] + ll[1] * g + ll[2] * g * g + ll[3] * g * g * g
    L = min(max(L, 0.0), 1.0)
    refl = 2.0 * L * cos_i / (cos_i + cos_e) + (1.0 - L) * cos_i
    return a * (refl * _bilerp(lit, col, row) + ambient)


@numba.njit(cache=True, parallel=True)
def _render_ortho(out, z, albedo, lit, normals, x0, y0, pixel_m, sun, seed, amp, ambient, ll,
                  ox, oy, gsd, ss):
    rows, cols = out.shape
    for r in numba.prange(rows):
        for c in range(cols):
            acc = 0.0
            for i in range(ss):
                for j in range(ss):
                    x = ox + (c - 0.5 + (j + 0.5) / ss) * gsd
                    y = oy - (r - 0.5 + (i + 0.5) / ss) * gsd
                    acc += _radiance(z, albedo, lit, normals, x0, y0, pixel_m, sun, seed, amp, ambient, ll,
                                     x, y, 0.0, 0.0, 1.0, gsd / ss)
            out[r, c] = acc / (ss * ss)


@numba.njit(cache=True)
def _intersect(z, x0, y0, pixel_m, zmin, zmax, cx, cy, cz, dx, dy, dz):
    """Ray parameter t of the first crossing of the height field, or -1 (march, then bisection)."""
    if dz >= -1e-9:
        return -1.0
    t_top = max((cz - zmax) / -dz, 0.0)
    t_bot = (cz - zmin) / -dz
    dh = np.sqrt(dx * dx + dy * dy)
    step = (zmax - zmin) / 48.0 / -dz + 1e-6
    if dh > 1e-9:
        step = min(step, pixel_m / dh)
    t0 = t_top
    f0 = cz + t0 * dz - _bilerp(z, (cx + t0 * dx - x0) / pixel_m, (y0 - cy - t0 * dy) / pixel_m)
    if f0 < 0.0:
        return -1.0
    # keep the first step short near a low camera so the ground just below is not skipped
    step = min(step, max(f0 / -dz * 0.5, 1e-3)) if t0 == 0.0 else step
    t1 = t0
    while t1 < t_bot + step:
        t1 = t0 + step
        f1 = cz + t1 * dz - _bilerp(z, (cx + t1 * dx - x0) / pixel_m, (y0 - cy - t1 * dy) / pixel_m)
        if f1 <= 0.0:
            lo, hi = t0, t1
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                fm = cz + mid * dz - _bilerp(z, (cx + mid * dx - x0) / pixel_m, (y0 - cy - mid * dy) / pixel_m)
                if fm > 0.0:
                    lo = mid
                else:
                    hi = mid
            return 0.5 * (lo + hi)
        t0 = t1
        if t0 > 0.0 and step < (zmax - zmin) / 48.0 / -dz:
            step = min(step * 2.0, (zmax - zmin) / 48.0 / -dz + 1e-6)
            if dh > 1e-9:
                step = min(step, pixel_m / dh)
    return -1.0


@numba.njit(cache=True, parallel=True)
def _render_persp(out, hit_xyz, rays, C, z, albedo, lit, normals, x0, y0, pixel_m, sun, seed, amp, ambient, ll,
                  zmin, zmax, inv_f):
    h, w = out.shape
    for r in numba.prange(h):
        for c in range(w):
            dx = rays[r, c, 0]
            dy = rays[r, c, 1]
            dz = rays[r, c, 2]
            t = _intersect(z, x0, y0, pixel_m, zmin, zmax, C[0], C[1], C[2], dx, dy, dz)
            if t < 0.0:
                out[r, c] = 0.0
                hit_xyz[r, c, 0] = np.nan
                hit_xyz[r, c, 1] = np.nan
                hit_xyz[r, c, 2] = np.nan
                continue
            x = C[0] + t * dx
            y = C[1] + t * dy
            hz = C[2] + t * dz
            hit_xyz[r, c, 0] = x
            hit_xyz[r, c, 1] = y
            hit_xyz[r, c, 2] = hz
            out[r, c] = _radiance(z, albedo, lit, normals, x0, y0, pixel_m, sun, seed, amp, ambient, ll,
                                  x, y, -dx, -dy, -dz, t * inv_f)


def render_orthographic(scene: Scene, gsd_m: float, shape: tuple[int, int], origin_xy: tuple[float, float],
                        supersample: int = 2) -> np.ndarray:
    """Radiance of a nadir orthographic view: ``shape`` pixels of ``gsd_m``, pixel (0, 0) centred at map
    ``origin_xy``. Each pixel averages supersample² sub-samples (a box PSF)."""
    out = np.zeros(shape, np.float32)
    ox, oy = scene.to_local(*origin_xy)
    _render_ortho(out, *scene.kernel_args(), float(ox), float(oy), float(gsd_m), int(supersample))
    return out


def render_perspective(scene: Scene, camera: PinholeCamera, R: np.ndarray, center_local: np.ndarray):
    """Radiance (h, w) seen by a pinhole camera at ``center_local`` (local ENU) with rotation R (world→camera),
    and the local ENU coordinates (h, w, 3) of each pixel's ground point (NaN where the ray misses)."""
    vv, uu = np.mgrid[0:camera.height, 0:camera.width].astype(np.float64)
    rays = camera.pixel_rays_camera(uu, vv) @ np.asarray(R, float)   # camera → world: d_w = R^T d_c
    out = np.zeros((camera.height, camera.width), np.float32)
    hit = np.zeros((camera.height, camera.width, 3), np.float64)
    zmin, zmax = scene.z_range
    _render_persp(out, hit, np.ascontiguousarray(rays), np.asarray(center_local, float), *scene.kernel_args(),
                  zmin, zmax, 1.0 / camera.fx)
    return out, hit


def to_image(radiance: np.ndarray, rng: np.random.Generator, *, bits: int = 8, exposure: float | None = None,
             percentile: float = 99.5, target: float = 0.9, vignetting: float = 0.0, hfov_deg: float = 0.0,
             full_well_e: float = 20000.0, read_noise_e: float = 8.0) -> tuple[np.ndarray, float]:
    """Turn radiance into a digital image: vignetting (cos^4 law scaled by ``vignetting``), auto or fixed
    exposure, photon (Poisson) and read (Gaussian) noise, quantisation. Returns (image, exposure used)."""
    img = radiance.astype(np.float64)
    if vignetting > 0 and hfov_deg > 0:
        h, w = img.shape
        f = (w / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
        yy, xx = np.mgrid[0:h, 0:w]
        cos_t = f / np.sqrt((xx - (w - 1) / 2.0) ** 2 + (yy - (h - 1) / 2.0) ** 2 + f * f)
        img = img * (1.0 - vignetting + vignetting * cos_t**4)
    if exposure is None:
        level = np.percentile(img, percentile)
        exposure = target / level if level > 0 else 1.0
    signal = np.clip(img * exposure, 0.0, None)
    electrons = rng.poisson(signal * full_well_e) + rng.normal(0.0, read_noise_e, signal.shape)
    top = 2**bits - 1
    dn = np.clip(np.round(electrons / full_well_e * top), 0, top)
    return dn.astype(np.uint8 if bits == 8 else np.uint16), float(exposure)
