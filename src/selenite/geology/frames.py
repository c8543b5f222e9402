"""Descent frames and their poses for the geology stage: pose files (one frame, a locate run's ``poses.json``,
or a synthetic world's ``truth.json``), and ``selenite geology ortho``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from selenite.errors import InputError
from selenite.geo.camera import PinholeCamera
from selenite.geology.ortho import Pose, check_normal, footprint, ortho_dem, ortho_plane
from selenite.runs import load_json_object

MOON_RADIUS_M = 1737400.0


@dataclass
class FramePose:
    pose: Pose
    crs_wkt: str | None
    ground_point: np.ndarray
    normal: np.ndarray
    frame: Path | None
    index: int | None


def _matrix(rec: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        R = np.asarray(rec["R_world_to_camera"], dtype=float)
        t = np.asarray(rec["t"], dtype=float).reshape(3)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{where}: needs R_world_to_camera (3×3) and t (3)") from None
    if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
        raise InputError(f"{where}: R_world_to_camera is not a rotation matrix")
    return R, t


def load_pose(pose_path: str | Path | None = None, run: str | Path | None = None, frame_index: int | None = None,
              frame: str | Path | None = None, normal=None, ground_z: float | None = None) -> FramePose:
    """One frame's pose and ground plane from a pose file or a locate run (+ frame index)."""
    if (pose_path is None) == (run is None):
        raise InputError("give exactly one of --pose POSE.json or --run LOCATE_RUN")
    base: Path
    if run is not None:
        run = Path(run)
        data = load_json_object(run / "poses.json", "poses.json in the locate run (re-run `selenite locate run` to "
                                              "write it)")
        base = run
        manifest = load_json_object(run / "manifest.json", "manifest.json in the locate run")
        frames_dir = Path(manifest.get("params", {}).get("frames_dir", run))
    else:
        pose_path = Path(pose_path)
        data = load_json_object(pose_path, "pose file")
        base = pose_path.parent
        frames_dir = base
    if "frames" in data:
        if frame_index is None:
            raise InputError("this pose file holds several frames; give --frame-index K")
        recs = [f for f in data["frames"] if f.get("frame", f.get("index")) == frame_index]
        if not recs:
            have = [f.get("frame", f.get("index")) for f in data["frames"]]
            raise InputError(f"frame index {frame_index} is not among the {len(have)} posed frames "
                             f"({min(have)}–{max(have)})" if have else "the pose file holds no frames")
        rec = recs[0]
        default_frame = frames_dir / rec["file"] if "file" in rec else None
    else:
        rec = data
        default_frame = None
    fpath = Path(frame) if frame is not None else default_frame
    return pose_from_record(data, rec, fpath, frame_index, normal, ground_z)


def pose_from_record(data: dict, rec: dict, frame: Path | None, frame_index: int | None = None, normal=None,
                     ground_z: float | None = None) -> FramePose:
    """One frame's pose and ground plane from a loaded pose file (``data``) and the frame's record in it (the
    file itself for a single-frame pose)."""
    camera = PinholeCamera.from_dict(data.get("camera", {}), where="the pose file's camera")
    crs = data.get("crs_wkt") or data.get("map_crs_wkt")
    R, t = _matrix(rec, "the pose")
    pose = Pose(camera, R, t)
    if normal is not None:
        n = check_normal(normal)
    else:
        n = check_normal(data.get("ground", {}).get("normal", rec.get("normal", [0.0, 0.0, 1.0])))
    C = pose.center
    if ground_z is not None:
        point = np.array([C[0], C[1], float(ground_z)])
    elif "ground" in data and "point" in data["ground"]:
        point = np.asarray(data["ground"]["point"], dtype=float)
    elif "altitude_m" in rec:
        point = C - np.array([0.0, 0.0, float(rec["altitude_m"])])
    else:
        raise InputError("the pose gives no ground plane (no 'ground' point and no altitude_m); give --ground-z")
    if frame is None:
        raise InputError("give the frame image with --frame IMG")
    if not frame.is_file():
        raise InputError(f"{frame}: no such frame image")
    return FramePose(pose, crs, point, n, frame, frame_index)


def read_frame(path: Path, camera: PinholeCamera) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: not a readable image")
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    if img.shape[:2] != (camera.height, camera.width):
        raise InputError(f"{path}: {img.shape[1]}×{img.shape[0]} px, but the camera is "
                         f"{camera.width}×{camera.height}")
    return img


def dem_in_world(dem_path, fp: FramePose, bounds, crs_wkt: str):
    """DEM heights over ``bounds`` in the world frame: the sphere's curvature drop from the map origin removed
    ((x² + y²) / 2R, the world frames' convention) and the datum tied to the ground point."""
    from rasterio.windows import Window, from_bounds

    from selenite.geo.crs import equivalent
    from selenite.geo.raster import raster_info, read_dem

    info = raster_info(dem_path)
    if not equivalent(info.crs, crs_wkt):
        raise InputError(f"{dem_path}: the DEM is not in the frame's map CRS; reproject it first "
                         "(`selenite terrain reproject`)")
    pad = 4 * abs(info.transform.a)
    win = from_bounds(bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad, info.transform)
    win = win.round_offsets().round_lengths().intersection(Window(0, 0, info.width, info.height))
    h, sub = read_dem(dem_path, window=win)
    rows, cols = np.mgrid[0:h.shape[0], 0:h.shape[1]]
    x, y = sub.transform * (cols + 0.5, rows + 0.5)
    z = h - (x**2 + y**2) / (2 * MOON_RADIUS_M)
    gx, gy = fp.ground_point[:2]
    c, r = ~sub.transform * (gx, gy)
    ri, ci = int(np.clip(r, 0, h.shape[0] - 1)), int(np.clip(c, 0, h.shape[1] - 1))
    offset = fp.ground_point[2] - z[ri, ci] if np.isfinite(z[ri, ci]) else 0.0
    return z + offset, sub.transform


def ortho_grey(data: np.ndarray) -> np.ndarray:
    """One grey plane of an ortho raster (bands first, or already 2-D): the band itself, or the bands' mean."""
    if data.ndim == 2:
        return data
    return data[0] if data.shape[0] == 1 else data.mean(axis=0)


def ortho_of(fp: FramePose, img: np.ndarray, gsd: float, dem: str | Path | None = None):
    """(raster (bands, rows, cols) with 0 = no data, valid mask, transform, method, bounds) of one frame."""
    if fp.crs_wkt is None:
        raise InputError("the pose file names no map CRS (crs_wkt); the ortho could not be georeferenced")
    bounds = footprint(fp.pose, fp.ground_point, fp.normal)
    if dem is not None:
        z, zt = dem_in_world(dem, fp, bounds, fp.crs_wkt)
        arr, valid, transform = ortho_dem(img, fp.pose, z, zt, gsd, bounds)
        method = "dem"
    else:
        arr, valid, transform = ortho_plane(img, fp.pose, fp.ground_point, fp.normal, gsd, bounds)
        method = "plane"
    if not valid.any():
        raise InputError(f"frame {fp.frame}: it does not cover any ground in the ortho grid")
    data = np.clip(arr, 1, None) if np.issubdtype(arr.dtype, np.integer) else arr
    data = np.where(valid[..., None] if data.ndim == 3 else valid, data, 0)
    data = np.moveaxis(data, 2, 0) if data.ndim == 3 else data[None]
    return data, valid, transform, method, bounds


def ortho_summary(fp: FramePose, out, gsd: float, valid: np.ndarray, method: str, bounds) -> dict:
    C = fp.pose.center
    tilt = float(np.degrees(np.arccos(np.clip(-fp.pose.R[2] @ fp.normal, -1, 1))))
    return {"ortho": str(out), "frame": str(fp.frame), "frame_index": fp.index, "method": method, "gsd_m": gsd,
            "size_px": [int(valid.shape[1]), int(valid.shape[0])], "valid_fraction": float(valid.mean()),
            "camera_height_m": float(np.dot(C - fp.ground_point, fp.normal)), "view_tilt_deg": tilt,
            "normal": fp.normal.tolist(), "bounds": list(bounds)}


def ortho_file(out: str | Path, gsd: float, pose: str | Path | None = None, run: str | Path | None = None,
               frame_index: int | None = None, frame: str | Path | None = None, normal=None,
               ground_z: float | None = None, dem: str | Path | None = None) -> dict:
    """Orthorectify one frame to a GeoTIFF (0 = no data); returns a summary record."""
    from selenite.geo.raster import write_cog

    out = Path(out)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(f"{out}: the ortho is written as GeoTIFF; give a .tif name")
    if not (gsd is not None and gsd > 0):
        raise InputError(f"--gsd must be a positive number of metres per pixel (got {gsd})")
    fp = load_pose(pose, run, frame_index, frame, normal, ground_z)
    if fp.crs_wkt is None:
        raise InputError("the pose file names no map CRS (crs_wkt); the ortho could not be georeferenced")
    img = read_frame(fp.frame, fp.pose.camera)
    data, valid, transform, method, bounds = ortho_of(fp, img, gsd, dem)
    write_cog(out, data, crs=fp.crs_wkt, transform=transform, nodata=0)
    return ortho_summary(fp, out, gsd, valid, method, bounds)
