"""``selenite synth world``: build a synthetic lunar world with exact truth into a run folder.

Outputs (all in the run folder): ``dem.tif`` (heights above the 1737.4 km sphere, COG), ``craters.csv`` (the
true catalogue, pixel/map/lon-lat), ``albedo.tif``, ``orbital_map.tif`` (an orthographic DOM at ``gsd_m``),
``descent/frames/NNNN.png`` with ``descent/camera.json`` and ``descent/truth.json``, ``world.json``,
``report.html`` and ``manifest.json``. Deterministic from the seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from affine import Affine
from PIL import Image
from pydantic import Field, model_validator

from selenite.config import StageConfig
from selenite.errors import SynthError
from selenite.geo.camera import PinholeCamera
from selenite.geo.crs import local_stereographic, map_to_lonlat
from selenite.geo.raster import RasterInfo, read_dem, read_raster, write_cog
from selenite.runs import Run, canonical_json
from selenite.synth.descent import DescentPlan, plan_descent, plume_obscure
from selenite.synth.render import build_scene, render_orthographic, render_perspective, to_image
from selenite.synth.terrain import cratered_terrain, fractal_surface


class DescentSettings(StageConfig):
    enabled: bool = True
    sun_azimuth_deg: float = 100.0
    sun_elevation_deg: float = Field(25.0, gt=0.0, le=90.0)
    width: int = Field(480, ge=32)
    height: int = Field(360, ge=32)
    hfov_deg: float = Field(60.0, gt=5.0, lt=150.0)
    start_altitude_m: float = Field(600.0, gt=0)
    approach_distance_m: float = Field(700.0, gt=0)
    approach_azimuth_deg: float = 270.0
    approach_tilt_deg: float = Field(35.0, ge=0, lt=80)
    pitchover_altitude_m: float = Field(240.0, gt=0)
    post_pitchover_tilt_deg: float = Field(10.0, ge=0, lt=80)
    hover_altitude_m: float = Field(100.0, gt=0)
    hover_frames: int = Field(4, ge=0)
    retreat_m: float = Field(23.5, ge=0)
    retreat_angle_deg: float = 134.8
    final_altitude_m: float = Field(2.0, gt=0)
    plume_altitude_m: float = Field(8.6, ge=0)
    vignetting: float = Field(0.3, ge=0, le=1)
    jitter_deg: float = Field(0.3, ge=0)
    jitter_frames: float = Field(0.0, ge=0)                # correlation length of the jitter (frames)
    footprint_step: float = Field(0.12, gt=0, lt=1)      # new frame after moving this fraction of the footprint,
    altitude_ratio_step: float = Field(0.93, gt=0, lt=1)  # ... or descending by this ratio,
    attitude_step_deg: float = Field(3.0, gt=0)           # ... or turning by this much
    render_scale: float = Field(1.0, gt=0, le=1)          # render at this fraction of the size, then upsample

    @model_validator(mode="after")
    def _order(self):
        if not (self.start_altitude_m > self.pitchover_altitude_m > self.hover_altitude_m > self.final_altitude_m):
            raise ValueError("need start_altitude_m > pitchover_altitude_m > hover_altitude_m > final_altitude_m")
        return self

    def plan(self) -> DescentPlan:
        keys = DescentPlan.__dataclass_fields__
        return DescentPlan(**{k: v for k, v in self.model_dump().items() if k in keys})

    def camera(self) -> PinholeCamera:
        return PinholeCamera.from_fov(self.width, self.height, self.hfov_deg)


class WorldConfig(StageConfig):
    seed: int = 1
    site_lon_deg: float = Field(206.0148, ge=-360, le=360)
    site_lat_deg: float = Field(-41.6385, ge=-90, le=90)
    size_px: int = Field(1536, ge=64, le=16384)
    pixel_m: float = Field(1.0, gt=0)
    base_height_m: float = 0.0
    age_ga: float = Field(0.855, gt=0, le=4.5)
    rms_slope_deg: float = Field(3.0, ge=0, lt=45)
    hurst: float = Field(0.85, gt=0, lt=1)
    diffusivity_m2_per_myr: float | None = Field(None, ge=0)
    albedo: float = Field(0.12, gt=0, le=1)
    albedo_variation: float = Field(0.08, ge=0, lt=1)
    albedo_texture: str | None = None
    albedo_texture_gamma: float = Field(0.6, gt=0, le=1)
    detail_amplitude: float = Field(0.2, ge=0, lt=1)
    orbital_gsd_m: float = Field(1.0, gt=0)
    orbital_sun_azimuth_deg: float = 120.0
    orbital_sun_elevation_deg: float = Field(35.0, gt=0, le=90)
    descent: DescentSettings = DescentSettings()

    @model_validator(mode="after")
    def _gsd_multiple(self):
        k = self.orbital_gsd_m / self.pixel_m
        if abs(k - round(k)) > 1e-6 or round(k) < 1:
            raise ValueError("orbital_gsd_m must be a whole multiple (>= 1) of pixel_m")
        return self


_small_descent = dict(width=192, height=144, start_altitude_m=200.0, approach_distance_m=150.0,
                      pitchover_altitude_m=140.0, hover_altitude_m=60.0, retreat_m=10.0)
confs: dict[str, dict] = {
    "tiny": {"size_px": 640, "descent": _small_descent},
    "small": {"size_px": 896, "descent": {"width": 320, "height": 240, "start_altitude_m": 320.0,
                                          "approach_distance_m": 380.0, "pitchover_altitude_m": 180.0,
                                          "hover_altitude_m": 80.0, "retreat_m": 15.0}},
    "demo": {},
    "default": {"size_px": 3072, "descent": {"width": 1024, "height": 768, "start_altitude_m": 1000.0,
                                             "approach_distance_m": 1400.0}},
    "change6": {"size_px": 4096, "descent": {"width": 2352, "height": 1728, "hfov_deg": 60.0,
                                             "start_altitude_m": 1100.0, "approach_distance_m": 1600.0}},
    "south-pole": {"site_lon_deg": 222.69, "site_lat_deg": -89.45, "age_ga": 3.6,
                   "orbital_sun_elevation_deg": 1.5, "orbital_sun_azimuth_deg": 45.0,
                   "descent": {"sun_elevation_deg": 1.5, "sun_azimuth_deg": 70.0}},
}


def world_grid(cfg: WorldConfig) -> RasterInfo:
    """DEM georeferencing: local stereographic map centred on the site; the site at the DEM's centre."""
    n, p = cfg.size_px, cfg.pixel_m
    half = n * p / 2.0
    return RasterInfo(local_stereographic(cfg.site_lon_deg, cfg.site_lat_deg), Affine(p, 0, -half, 0, -p, half), n, n)


def _texture_cover(path: str, shape: tuple[int, int], gamma: float) -> np.ndarray:
    """An image stretched once over the whole world (no tiling: a repeated texture would make the map
    ambiguous) as an albedo factor of mean 1. An orbital image carries its own shading, and its shadows would
    become black ground that no descent camera could see into: the factor is floored at a quarter of the mean
    and its contrast compressed by ``gamma``."""
    from scipy import ndimage

    try:
        tex = np.asarray(Image.open(path).convert("F"), np.float64)
    except (OSError, ValueError) as exc:
        raise SynthError(f"albedo texture {path} cannot be read as an image: {exc}") from None
    ny, nx = shape
    side = min(tex.shape)
    r0, c0 = (tex.shape[0] - side) // 2, (tex.shape[1] - side) // 2
    tex = tex[r0:r0 + side, c0:c0 + side]
    tex = ndimage.zoom(tex, (ny / side, nx / side), order=1, grid_mode=True, mode="nearest")[:ny, :nx]
    f = np.clip(tex / max(float(tex.mean()), 1e-9), 0.25, 4.0) ** gamma
    return f / f.mean()


def _albedo_map(shape, pixel_m, craters: pd.DataFrame, cfg: WorldConfig, rng) -> np.ndarray:
    """Base albedo × smooth variation × bright, fading ejecta of young craters × optional texture."""
    var = fractal_surface(shape, pixel_m * 8, 1.0, 0.5, rng)
    var = var / max(var.std(), 1e-9) * cfg.albedo_variation
    alb = cfg.albedo * (1.0 + var)
    young = craters[(craters.visible) & (craters.age_myr < 300.0)]
    ny, nx = shape
    for c in young.itertuples():
        R = c.diameter_m / 2.0 / pixel_m
        w = int(3 * R) + 2
        r0, c0 = int(c.row), int(c.col)
        rows = np.arange(r0 - w, r0 + w + 1)
        cols = np.arange(c0 - w, c0 + w + 1)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        dist = np.hypot(rr - c.row, cc - c.col) / R
        boost = 0.6 * np.exp(-c.age_myr / 100.0) * np.exp(-np.maximum(dist - 1.0, 0.0) ** 2 / 0.8)
        np.add.at(alb, (rr % ny, cc % nx), cfg.albedo * boost)
    if cfg.albedo_texture:
        alb = alb * _texture_cover(cfg.albedo_texture, shape, cfg.albedo_texture_gamma)
    return np.clip(alb, 0.01, 1.0).astype(np.float32)


def _landing_xy(dem: np.ndarray, grid: RasterInfo, cfg: WorldConfig) -> tuple[float, float]:
    """Flattest point (slope at ~10 m baseline) near where the track is centred in the world."""
    from scipy import ndimage

    p = cfg.pixel_m
    smooth = ndimage.uniform_filter(dem.astype(np.float64), size=max(3, int(round(10 / p))))
    gy, gx = np.gradient(smooth, p)
    slope = np.hypot(gx, gy)
    d = cfg.descent
    a = np.radians(d.approach_azimuth_deg)
    shift = d.approach_distance_m / 2.0
    tx, ty = shift * np.sin(a), shift * np.cos(a)
    col0, row0 = grid.map_to_pixel(tx, ty)
    half = max(8, int(0.05 * cfg.size_px))
    r0, c0 = int(round(float(row0))), int(round(float(col0)))
    win = slope[max(r0 - half, 0): r0 + half + 1, max(c0 - half, 0): c0 + half + 1]
    i, j = np.unravel_index(np.argmin(win), win.shape)
    x, y = grid.pixel_to_map(max(c0 - half, 0) + j, max(r0 - half, 0) + i)
    return float(x), float(y)


def _check_footprints(poses, camera: PinholeCamera, grid: RasterInfo, margin_m: float) -> None:
    left, bottom, right, top = grid.bounds
    corners = np.array([[0, 0], [camera.width - 1, 0], [0, camera.height - 1], [camera.width - 1, camera.height - 1]])
    rays_c = camera.pixel_rays_camera(corners[:, 0], corners[:, 1])
    for pose in poses:
        rays = rays_c @ pose.R
        if np.any(rays[:, 2] >= -1e-3):
            raise SynthError(f"descent frame {pose.index} looks at the horizon; lower the approach tilt")
        t = (pose.center[2] - pose.ground_height) / -rays[:, 2]
        xy = pose.center[None, :2] + t[:, None] * rays[:, :2]
        if (xy[:, 0].min() < left + margin_m or xy[:, 0].max() > right - margin_m
                or xy[:, 1].min() < bottom + margin_m or xy[:, 1].max() > top - margin_m):
            raise SynthError(
                f"descent frame {pose.index} sees beyond the {right - left:.0f} m world; raise size_px or "
                "lower descent.start_altitude_m / approach_distance_m"
            )


def _png_bytes_writer(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image).save(path, format="PNG", optimize=False)


def build_world(cfg: WorldConfig, out: str | Path, *, force: bool = False,
                progress: Callable[[str, float], None] | None = None) -> Path:
    """Build the synthetic world into run folder ``out``; returns the folder. Resumes a killed run."""
    notify = progress or (lambda step, frac: None)
    grid = world_grid(cfg)
    params = json.loads(cfg.model_dump_json())
    with Run(out, command="synth world", params=params, force=force) as run:
        terrain_params = {k: params[k] for k in ("seed", "size_px", "pixel_m", "base_height_m", "age_ga",
                                                 "rms_slope_deg", "hurst", "diffusivity_m2_per_myr",
                                                 "site_lon_deg", "site_lat_deg")}

        def make_terrain(tmp):
            notify("terrain", 0.0)
            tr = cratered_terrain((cfg.size_px, cfg.size_px), cfg.pixel_m, age_ga=cfg.age_ga, seed=cfg.seed,
                                  base_height_m=cfg.base_height_m, rms_slope_deg=cfg.rms_slope_deg,
                                  hurst=cfg.hurst, diffusivity_m2_per_myr=cfg.diffusivity_m2_per_myr)
            write_cog(tmp["dem.tif"], tr.dem, crs=grid.crs, transform=grid.transform, dtype="float32")
            cat = tr.craters.copy()
            x, y = grid.pixel_to_map(cat["col"].to_numpy(), cat["row"].to_numpy())
            lon, lat = map_to_lonlat(grid.crs, x, y)
            cat["x_m"], cat["y_m"], cat["lon"], cat["lat"] = x, y, lon, lat
            cat.to_csv(tmp["craters.csv"], index=False, float_format="%.6f")
            notify("terrain", 1.0)

        run.step("terrain", ["dem.tif", "craters.csv"], make_terrain, params=terrain_params)

        def make_albedo(tmp):
            dem, info = read_dem(run.path("dem.tif"))
            craters = pd.read_csv(run.path("craters.csv"))
            rng = np.random.default_rng([cfg.seed, 2])
            write_cog(tmp["albedo.tif"], _albedo_map(dem.shape, cfg.pixel_m, craters, cfg, rng), crs=grid.crs,
                      transform=grid.transform, dtype="float32")

        albedo_params = {k: params[k] for k in ("albedo", "albedo_variation", "albedo_texture", "albedo_texture_gamma",
                                                "seed")}
        run.step("albedo", ["albedo.tif"], make_albedo, params=albedo_params, reads=["dem.tif", "craters.csv"])

        def scene_for(az, el):
            dem, info = read_dem(run.path("dem.tif"))
            albedo, _ = read_raster(run.path("albedo.tif"))
            x0, y0 = info.pixel_to_map(0, 0)
            return build_scene(dem, cfg.pixel_m, float(x0), float(y0), albedo, az, el, origin=(0.0, 0.0),
                               detail_seed=cfg.seed, detail_amplitude=cfg.detail_amplitude), info

        def make_orbital(tmp):
            notify("orbital map", 0.0)
            scene, info = scene_for(cfg.orbital_sun_azimuth_deg, cfg.orbital_sun_elevation_deg)
            k = int(round(cfg.orbital_gsd_m / cfg.pixel_m))
            n = cfg.size_px // k
            left, _, _, top = info.bounds
            g = cfg.orbital_gsd_m
            rad = render_orthographic(scene, g, (n, n), (left + g / 2.0, top - g / 2.0), supersample=2)
            img, _ = to_image(rad, np.random.default_rng([cfg.seed, 3]), full_well_e=40000.0)
            write_cog(tmp["orbital_map.tif"], img, crs=grid.crs, transform=Affine(g, 0, left, 0, -g, top),
                      dtype="uint8")
            notify("orbital map", 1.0)

        orbital_params = {k: params[k] for k in ("orbital_gsd_m", "orbital_sun_azimuth_deg",
                                                 "orbital_sun_elevation_deg", "detail_amplitude", "seed")}
        run.step("orbital_map", ["orbital_map.tif"], make_orbital, params=orbital_params,
                 reads=["dem.tif", "albedo.tif"])

        if cfg.descent.enabled:
            _descent_step(run, cfg, grid, scene_for, notify, params)
    return Path(out)


def _render_frame(scene, camera: PinholeCamera, d: DescentSettings, pose) -> np.ndarray:
    """Radiance of one descent frame; with ``render_scale`` < 1 rendered smaller and resampled up (pixel centres
    kept aligned), which keeps the geometry exact and saves time where the detail is not needed."""
    if d.render_scale >= 1.0:
        return render_perspective(scene, camera, pose.R, pose.center)[0]
    from dataclasses import replace

    import cv2

    w, h = round(camera.width * d.render_scale), round(camera.height * d.render_scale)
    sx, sy = w / camera.width, h / camera.height
    small = replace(camera, width=w, height=h, fx=camera.fx * sx, fy=camera.fy * sy,
                    cx=(camera.cx + 0.5) * sx - 0.5, cy=(camera.cy + 0.5) * sy - 0.5)   # distortion kept
    rad, _ = render_perspective(scene, small, pose.R, pose.center)
    return cv2.resize(rad.astype(np.float32), (camera.width, camera.height), interpolation=cv2.INTER_CUBIC)


def _descent_step(run: Run, cfg: WorldConfig, grid: RasterInfo, scene_for, notify, params) -> None:
    d = cfg.descent
    camera = d.camera()
    plan = d.plan()
    scene, info = scene_for(d.sun_azimuth_deg, d.sun_elevation_deg)
    dem, _ = read_dem(run.path("dem.tif"))
    from selenite.synth.render import curvature_drop

    def ground(x, y):
        col, row = info.map_to_pixel(x, y)
        from scipy import ndimage
        h = ndimage.map_coordinates(dem.astype(np.float64), [np.atleast_1d(row), np.atleast_1d(col)], order=1,
                                    mode="nearest")
        return h - curvature_drop(np.asarray(x, float), np.asarray(y, float))

    land_xy = _landing_xy(dem, grid, cfg)
    poses = plan_descent(plan, np.array(land_xy), ground, d.hfov_deg, np.random.default_rng([cfg.seed, 4]))
    _check_footprints(poses, camera, grid, margin_m=2.0 * cfg.pixel_m)
    names = [f"descent/frames/{i:04d}.png" for i in range(len(poses))]

    def make_descent(tmp):
        frames = []
        for k, pose in enumerate(poses):
            notify("descent frames", k / len(poses))
            rad = _render_frame(scene, camera, d, pose)
            rng = np.random.default_rng([cfg.seed, 5, k])
            img, exposure = to_image(rad, rng, vignetting=d.vignetting, hfov_deg=d.hfov_deg)
            if pose.obscured:
                img = plume_obscure(img, pose.altitude_m, plan.plume_altitude_m, rng, 255.0).astype(np.uint8)
            _png_bytes_writer(tmp[names[k]], img)
            roll, pitch, yaw = pose.attitude
            h_above_sphere = pose.center[2] + float(curvature_drop(pose.center[0], pose.center[1]))
            lon, lat = map_to_lonlat(grid.crs, pose.center[0], pose.center[1])
            frames.append({
                "index": k, "file": names[k].split("descent/")[1], "phase": pose.phase,
                "x": float(pose.center[0]), "y": float(pose.center[1]), "z": float(pose.center[2]),
                "height_above_sphere_m": float(h_above_sphere), "lon": float(lon), "lat": float(lat),
                "altitude_m": pose.altitude_m, "gsd_m": pose.altitude_m / camera.fx,
                "roll_deg": roll, "pitch_deg": pitch, "yaw_deg": yaw,
                "R_world_to_camera": pose.R.round(12).tolist(),
                "t": (-pose.R @ pose.center).round(9).tolist(), "obscured": bool(pose.obscured),
                "exposure": exposure,
            })
        last = poses[-1]
        lx, ly = float(last.center[0]), float(last.center[1])
        lon, lat = map_to_lonlat(grid.crs, lx, ly)
        dom_k = int(round(cfg.orbital_gsd_m / cfg.pixel_m))
        left, _, _, top = grid.bounds
        dom = RasterInfo(grid.crs, Affine(cfg.orbital_gsd_m, 0, left, 0, -cfg.orbital_gsd_m, top),
                         cfg.size_px // dom_k, cfg.size_px // dom_k)
        dcol, drow = dom.map_to_pixel(lx, ly)
        hover = next(p for p in poses if p.phase == "hover") if any(p.phase == "hover" for p in poses) else None
        truth = {
            "frame_convention": "x_cam = R_world_to_camera @ X + t; world = local east-north-up, origin at map "
                                "(0, 0) on the reference sphere; x, y equal the map coordinates",
            "map_crs_wkt": grid.crs.to_wkt(),
            "camera": camera.to_dict(),
            "sun": {"azimuth_deg": d.sun_azimuth_deg, "elevation_deg": d.sun_elevation_deg},
            "landing": {"x": lx, "y": ly, "z": float(last.ground_height), "lon": float(lon), "lat": float(lat),
                        "dom_col": float(dcol), "dom_row": float(drow)},
            "maneuvers": {
                "pitchover_altitude_m": plan.pitchover_altitude_m,
                "hover_altitude_m": hover.altitude_m if hover else None,
                "retreat_m": plan.retreat_m, "retreat_angle_deg": plan.retreat_angle_deg,
                "plume_altitude_m": plan.plume_altitude_m,
                "first_obscured_frame": next((p.index for p in poses if p.obscured), None),
            },
            "frames": frames,
        }
        Path(tmp["descent/truth.json"]).write_text(canonical_json(truth) + "\n")
        Path(tmp["descent/camera.json"]).write_text(canonical_json(camera.to_dict()) + "\n")
        notify("descent frames", 1.0)

    descent_params = {"descent": params["descent"], "seed": cfg.seed, "detail_amplitude": cfg.detail_amplitude,
                      "orbital_gsd_m": cfg.orbital_gsd_m}
    run.step("descent", [*names, "descent/truth.json", "descent/camera.json"], make_descent,
             params=descent_params, reads=["dem.tif", "albedo.tif"])
