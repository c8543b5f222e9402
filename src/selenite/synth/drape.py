"""A second, independent descent generator: a world draped with a real orbital image, seen by ray casting.

``selenite synth world`` builds its own terrain, albedo and photometry and renders them with its own kernel;
a method tuned on those worlds can pass benchmarks drawn from them and still fail elsewhere. This generator
shares none of that code: the ground is a real image (any 2-D array: an LROC NAC crop, a CTX mosaic, a hillshade)
laid on a plane or on a height field, the descent is a different parametric trajectory (an exponential fall in
height with a lateral drift, a turning heading and a pendulum swing), frames are rendered by casting each pixel's
ray through any camera model of :mod:`selenite.geo.camera` (fish-eye distortion included) onto the height field,
and the map differs from the frames photometrically (gamma, gain, blur, noise, JPEG) or in kind (a hillshade of
the height field under another Sun).

World coordinates: x east, y north, z up, metres; the image's pixel (col, row) centre lies at
x = (col − (W − 1)/2)·gsd, y = ((H − 1)/2 − row)·gsd, so the world is centred on the origin of the map's
local stereographic CRS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from selenite.geo.camera import Camera, pose_from_axis


@dataclass
class DrapedWorld:
    """A ground image (any float array) of ground sample ``gsd_m`` over an optional height field of the same
    grid (metres; None = flat).

    Real ground has texture below any map's resolution; an image magnified by interpolation alone is smoother than
    any surface a low descent camera sees. ``detail`` > 0 multiplies the image by ``1 + detail · n``, where ``n`` is
    a fixed random field (unit σ, a 1/f-like mix of four octaves from ``gsd_m``/2 down to ``gsd_m``/16) in world
    coordinates, two incommensurate periodic tiles summed so that no period repeats within a kilometre, averaged
    over the footprint of a frame pixel like the image itself: it is invisible in frames coarser than the map
    and the map never contains it."""

    image: np.ndarray
    gsd_m: float
    height: np.ndarray | None = None
    detail: float = 0.0
    detail_seed: int = 0
    _pyramid: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        img = np.asarray(self.image, np.float32)
        self._pyramid = [img]
        while min(self._pyramid[-1].shape) > 32:
            self._pyramid.append(cv2.pyrDown(self._pyramid[-1]))
        self._hgrid = None if self.height is None else np.asarray(self.height, np.float64)
        self._detail = []
        if self.detail > 0:
            rng = np.random.default_rng(self.detail_seed)
            self._detail_gsd = self.gsd_m / 16.0
            for n in (1024, 997):          # two tiles, periods 64 m and 62.3 m (at 0.5 m/px): beat ≈ 2.3 km
                field_ = np.zeros((n, n), np.float32)
                for sigma in (1.0, 2.0, 4.0, 8.0):
                    g = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), sigma, mode="wrap")
                    field_ += (np.sqrt(sigma) * g / g.std()).astype(np.float32)   # more power at longer waves
                field_ /= field_.std() * np.sqrt(2.0)
                pyr = [field_]
                while min(pyr[-1].shape) > 16:
                    pyr.append(cv2.pyrDown(pyr[-1], borderType=cv2.BORDER_WRAP))
                self._detail.append(pyr)

    def _detail_at(self, x: np.ndarray, y: np.ndarray, footprint_m: float) -> np.ndarray:
        out = np.zeros(np.shape(x), np.float32)
        level = int(np.floor(np.log2(max(footprint_m / self._detail_gsd, 1.0))))
        for k, pyr in enumerate(self._detail):
            if level >= len(pyr):
                continue
            f = 2.0 ** level
            # the second tile is turned by 37° so the two lattices never align
            a = np.radians(37.0 * k)
            u = (np.cos(a) * x - np.sin(a) * y) / self._detail_gsd
            v = (np.sin(a) * x + np.cos(a) * y) / self._detail_gsd
            out += ndimage.map_coordinates(pyr[level], [v / f, u / f], order=1,
                                           mode="grid-wrap").astype(np.float32)
        return out

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape

    def to_pixel(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.shape
        return x / self.gsd_m + (w - 1) / 2.0, (h - 1) / 2.0 - y / self.gsd_m

    def to_world(self, col, row) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.shape
        x = (np.asarray(col, float) - (w - 1) / 2.0) * self.gsd_m
        return x, ((h - 1) / 2.0 - np.asarray(row, float)) * self.gsd_m

    def z(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self._hgrid is None:
            return np.zeros(np.shape(x))
        c, r = self.to_pixel(x, y)
        return ndimage.map_coordinates(self._hgrid, [r, c], order=1, mode="nearest")

    def sample(self, x: np.ndarray, y: np.ndarray, footprint_px: float) -> np.ndarray:
        """The image at world points, from the pyramid level matching a footprint of ``footprint_px`` image
        pixels (NaN outside the image)."""
        level = int(np.clip(np.floor(np.log2(max(footprint_px, 1.0))), 0, len(self._pyramid) - 1))
        img = self._pyramid[level]
        c, r = self.to_pixel(x, y)
        f = 2.0 ** level
        # cv2.pyrDown centres level pixel i on input pixel 2i (its 5-tap kernel), not on 2i + 0.5
        cl, rl = c / f, r / f
        out = ndimage.map_coordinates(img, [rl, cl], order=1, mode="nearest")
        if self._detail:
            ok = np.isfinite(x) & np.isfinite(y)
            d = self._detail_at(np.where(ok, x, 0.0), np.where(ok, y, 0.0), footprint_px * self.gsd_m)
            out = out * (1.0 + self.detail * d)
        h, w = self.shape
        out[(c < -0.5) | (c > w - 0.5) | (r < -0.5) | (r > h - 0.5) | ~np.isfinite(c)] = np.nan
        return out


def hillshade(z: np.ndarray, gsd_m: float, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Lambertian shading (cos incidence, 0 in self-shadow) of a height grid under a Sun at azimuth (clockwise
    from north) and elevation."""
    return np.clip(_cos_incidence(z, gsd_m, azimuth_deg, elevation_deg), 0.0, None)


def _cos_incidence(z: np.ndarray, gsd_m: float, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Cosine of the Sun's incidence on every facet of a north-up height grid (negative: facing away)."""
    gy, gx = np.gradient(z, gsd_m)           # rows run south: d/dy(north) = -gy
    n = np.stack([-gx, gy, np.ones_like(z)], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return n @ np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])


def sunlit_relief(z: np.ndarray, gsd_m: float, azimuth_deg: float, elevation_deg: float,
                  ambient: float = 0.02) -> np.ndarray:
    """What a camera sees of bare relief under a low Sun: Lommel–Seeliger reflectance for a nadir view
    (μ0 / (μ0 + 1), the lunar-regolith law, not Lambert's μ0) with the shadows the relief casts, found by marching
    every pixel's ray towards the Sun one pixel at a time (flat Moon: no curvature), plus a little ambient light."""
    mu0 = np.clip(_cos_incidence(z, gsd_m, azimuth_deg, elevation_deg), 0.0, None)
    refl = mu0 / (mu0 + 1.0)
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    # cast shadows: the terrain towards the Sun rising above the ray from each pixel
    h, w = z.shape
    zf = z.astype(np.float32)
    cols, rows = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    dc, dr = np.sin(az), -np.cos(az)         # one pixel towards the Sun (rows run south)
    rise = np.tan(el) * gsd_m
    lit = np.ones(z.shape, bool)
    max_steps = int(np.ceil((np.nanmax(z) - np.nanmin(z)) / max(rise, 1e-9))) + 1
    for k in range(1, min(max_steps, 2 * max(h, w)) + 1):
        ahead = cv2.remap(zf, cols + np.float32(k * dc), rows + np.float32(k * dr), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT,
                          borderValue=-1e9)
        lit &= ahead <= zf + k * rise
    return (ambient + (1.0 - ambient) * 2.0 * refl * lit).astype(np.float32)


@dataclass(frozen=True)
class DrapeDescent:
    """A parachute-and-rocket style descent: height falls exponentially from ``start_m`` to ``end_m`` over
    ``frames`` frames, the ground track drifts in from ``drift_m`` away along ``drift_azimuth_deg`` and is
    vertical below ``vertical_from_m`` (a terminal descent: touchdown is right below the last frames), the image-up
    direction turns from ``heading_deg`` by ``heading_turn_deg`` in all, and the optical axis swings about nadir
    with amplitude ``swing_deg`` and a period of ``swing_period`` frames (plus random jitter)."""

    start_m: float = 600.0
    end_m: float = 20.0
    frames: int = 24
    landing_xy: tuple[float, float] = (0.0, 0.0)
    drift_m: float = 150.0
    drift_azimuth_deg: float = 60.0
    vertical_from_m: float = 60.0
    heading_deg: float = 20.0
    heading_turn_deg: float = 40.0
    swing_deg: float = 4.0
    swing_period: float = 9.0
    jitter_deg: float = 0.5
    seed: int = 0

    def poses(self, world: DrapedWorld) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """(R world→camera, centre, height above the ground below) of every frame."""
        rng = np.random.default_rng(self.seed)
        k = np.arange(self.frames) / max(self.frames - 1, 1)
        heights = self.start_m * (self.end_m / self.start_m) ** k
        daz = np.radians(self.drift_azimuth_deg)
        # lateral offset shrinking with height (a slanted approach), then none (vertical)
        hv = min(max(self.vertical_from_m, self.end_m), self.start_m)
        frac = np.clip((heights - hv) / max(self.start_m - hv, 1e-9), 0.0, 1.0)
        xy = np.array(self.landing_xy) + frac[:, None] * self.drift_m * np.array([np.sin(daz), np.cos(daz)])
        out = []
        for i in range(self.frames):
            zg = float(world.z(np.array([xy[i, 0]]), np.array([xy[i, 1]]))[0])
            C = np.array([xy[i, 0], xy[i, 1], zg + heights[i]])
            ph = 2 * np.pi * i / self.swing_period
            tilt = np.radians([self.swing_deg * np.sin(ph), self.swing_deg * 0.6 * np.cos(1.3 * ph)])
            tilt += np.radians(rng.normal(0.0, self.jitter_deg, 2))
            axis = np.array([np.sin(tilt[0]), np.sin(tilt[1]), -1.0])
            hd = np.radians(self.heading_deg + self.heading_turn_deg * k[i])
            up = np.array([np.sin(hd), np.cos(hd), 0.0])
            R, _ = pose_from_axis(axis, up, C)
            out.append((R, C, float(heights[i])))
        return out


def render(world: DrapedWorld, camera: Camera, R: np.ndarray, C: np.ndarray, iterations: int = 12,
           supersample: int = 2) -> np.ndarray:
    """The frame seen from centre C with attitude R (world→camera): every (sub)pixel's ray is intersected with the
    height field by fixed-point iteration on the height, and the image sampled at its pyramid level."""
    s = supersample
    u = (np.arange(camera.width * s) + 0.5) / s - 0.5
    v = (np.arange(camera.height * s) + 0.5) / s - 0.5
    uu, vv = np.meshgrid(u, v)
    d = camera.pixel_rays_camera(uu.ravel(), vv.ravel()) @ R          # world directions
    down = d[:, 2] < -1e-6
    zg = np.full(len(d), float(world.z(np.array([C[0]]), np.array([C[1]]))[0]))
    lam = np.full(len(d), np.nan)
    for _ in range(iterations):
        lam = np.where(down, (zg - C[2]) / np.where(down, d[:, 2], -1.0), np.nan)
        x, y = C[0] + lam * d[:, 0], C[1] + lam * d[:, 1]
        zg = np.where(down, world.z(np.nan_to_num(x), np.nan_to_num(y)), zg)
    x, y = C[0] + lam * d[:, 0], C[1] + lam * d[:, 1]
    # footprint of one frame pixel on the ground, in image pixels (median over the frame: one pyramid level)
    rng_m = np.nanmedian(lam * np.abs(d[:, 2]))
    foot = (rng_m / camera.fx) / world.gsd_m
    vals = world.sample(np.where(down, x, np.nan), np.where(down, y, np.nan), foot)
    img = vals.reshape(camera.height * s, camera.width * s)
    if s > 1:
        img = img.reshape(camera.height, s, camera.width, s).mean(axis=(1, 3))
    return img


def photometric(img: np.ndarray, rng: np.random.Generator, gamma: float = 1.0, gain: float = 1.0,
                offset: float = 0.0, blur_px: float = 0.0, noise: float = 0.0) -> np.ndarray:
    """8-bit frame from a [0, 1] image: gamma, gain and offset, Gaussian blur, additive noise (σ in 8-bit levels)."""
    out = np.clip(np.nan_to_num(img, nan=0.0), 0, 1) ** gamma * gain + offset
    if blur_px > 0:
        out = cv2.GaussianBlur(out.astype(np.float32), (0, 0), blur_px)
    out = out * 255.0 + rng.normal(0.0, noise, out.shape) if noise else out * 255.0
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def stretch01(a: np.ndarray) -> np.ndarray:
    lo, hi = np.nanpercentile(a, [0.5, 99.5])
    return np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1).astype(np.float32)


def write_case(out: str | Path, world: DrapedWorld, camera: Camera, plan: DrapeDescent, *, dom_image: np.ndarray,
               dom_factor: int = 1, frame_photometry: dict | None = None, jpeg_quality: int | None = None,
               georeferenced: bool = True, lonlat: tuple[float, float] = (177.6, -45.45),
               frames_world: DrapedWorld | None = None, map_is_dem: bool = False) -> dict:
    """Render a descent into ``out``: frames/NNNN.png (or .jpg), dom.tif (georeferenced, local stereographic) or
    dom.png (plain), camera.json and truth.json (landing DOM pixel, per-frame heights). ``dom_image`` is the map
    (the world's grid), decimated by ``dom_factor``; ``frames_world`` (default ``world``) what the frames see.
    ``map_is_dem``: ``dom_image`` is a height field (metres), written unstretched as dem.tif (float32)."""
    import json

    import rasterio
    from rasterio.transform import Affine

    from selenite.geo.crs import local_stereographic, map_to_lonlat

    out = Path(out)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(plan.seed + 101)
    seen = frames_world or world
    poses = plan.poses(world)
    frames = []
    for i, (R, C, hgt) in enumerate(poses):
        img = render(seen, camera, R, C)
        img8 = photometric(img, rng, **(frame_photometry or {}))
        name = f"{i + 1:04d}." + ("jpg" if jpeg_quality else "png")
        if jpeg_quality:
            cv2.imwrite(str(out / "frames" / name), img8, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        else:
            cv2.imwrite(str(out / "frames" / name), img8)
        frames.append({"index": i, "file": name, "x": float(C[0]), "y": float(C[1]), "altitude_m": hgt,
                       "R_world_to_camera": R.round(12).tolist(), "t": (-R @ C).round(9).tolist()})
    # the map, decimated by area averaging
    q = int(dom_factor)
    h, w = (dom_image.shape[0] // q) * q, (dom_image.shape[1] // q) * q
    dom = dom_image[:h, :w].reshape(h // q, q, w // q, q).mean(axis=(1, 3)) if q > 1 else dom_image[:h, :w]
    dom8 = np.clip(np.round(stretch01(dom) * 255), 0, 255).astype(np.uint8)
    lx, ly = poses[-1][1][:2]
    c0, r0 = world.to_pixel(np.array(lx), np.array(ly))
    dcol, drow = (float(c0) + 0.5) / q - 0.5, (float(r0) + 0.5) / q - 0.5
    left = -((world.shape[1] - 1) / 2.0 + 0.5) * world.gsd_m
    top = ((world.shape[0] - 1) / 2.0 + 0.5) * world.gsd_m
    truth = {"generator": "drape", "gsd_m": world.gsd_m * q, "camera": camera.to_dict(),
             "landing": {"x": float(lx), "y": float(ly), "dom_col": dcol, "dom_row": drow},
             "frames": frames}
    if georeferenced:
        crs = local_stereographic(*lonlat)
        tf = Affine(world.gsd_m * q, 0, left, 0, -world.gsd_m * q, top)
        # a DEM keeps its metres (decimated like any map), an image is stretched to 8 bit
        name, data = ("dem.tif", dom.astype(np.float32)) if map_is_dem else ("dom.tif", dom8)
        with rasterio.open(out / name, "w", driver="GTiff", width=data.shape[1], height=data.shape[0],
                           count=1, dtype=data.dtype.name, crs=crs.to_wkt(), transform=tf) as ds:
            ds.write(data, 1)
        lon, lat = map_to_lonlat(crs, float(lx), float(ly))
        truth["landing"].update({"lon": float(lon), "lat": float(lat)})
    else:
        cv2.imwrite(str(out / "dom.png"), dom8)
        truth["landing"].update({"map_x_m": (dcol + 0.5) * world.gsd_m * q,
                                 "map_y_m": (drow + 0.5) * world.gsd_m * q})
    (out / "camera.json").write_text(json.dumps(camera.to_dict()) + "\n")
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth
