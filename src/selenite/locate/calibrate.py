"""Lens self-calibration from the descent itself, and resampling of distorted frames to a pinhole.

A descent camera known only by its field of view (``{"model": "fisheye", "fov_deg": 90}``) starts as the ideal
equidistant fish-eye of that field; structure from motion on the raw frames then refines its focal length and
distortion (COLMAP's OPENCV_FISHEYE or OPENCV model, principal point held at the image centre) in every bundle
adjustment, as self-calibrating bundle adjustment does (Schönberger & Frahm 2016). The uncertainty of the refined
parameters comes from the bundle adjustment's own covariance (pycolmap's ``estimate_ba_covariance``), scaled by
the reprojection residual. Every later step works on frames resampled to the distortion-free pinhole of
:func:`selenite.geo.camera.pinhole_for`, so the map search and the fine step see straight-line geometry.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import cv2
import numpy as np

from selenite.errors import RunError
from selenite.geo.camera import Camera, FisheyeCamera, pinhole_for, undistort_maps
from selenite.locate.features import make_extractor, resize_for_matching
from selenite.locate.frames import read_frame, to_uint8

log = logging.getLogger(__name__)


def _pick(indices: list[int], n: int) -> list[int]:
    if len(indices) <= n:
        return list(indices)
    pos = np.unique(np.round(np.linspace(0, len(indices) - 1, n)).astype(int))
    return [indices[p] for p in pos]


def _param_names(camera: Camera) -> list[str]:
    if isinstance(camera, FisheyeCamera):
        return ["fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4"]
    return ["fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"]


def _intrinsic_sigma(rec, threads: int) -> np.ndarray | None:
    """1-σ of the camera parameters from the covariance of a final bundle adjustment (None if unavailable)."""
    import pycolmap

    config = pycolmap.BundleAdjustmentConfig()
    for iid in rec.reg_image_ids():
        config.add_image(iid)
    opts = pycolmap.BundleAdjustmentOptions()
    opts.refine_focal_length = True
    opts.refine_principal_point = False
    opts.refine_extra_params = True
    opts.ceres.solver_options.num_threads = threads
    config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
    ba = pycolmap.create_default_ceres_bundle_adjuster(opts, config, rec)
    ba.solve()
    cov = pycolmap.estimate_ba_covariance(pycolmap.BACovarianceOptions(
        {"params": pycolmap.BACovarianceOptionsParams.ALL}), rec, ba)     # None when the estimation fails
    if cov is None:
        return None
    C = cov.get_other_params_cov(next(iter(rec.cameras.values())).params)  # None: intrinsics not variable
    if C is None:
        return None
    C = np.asarray(C)
    # Ceres' covariance assumes unit-variance residuals (pixels): scale by the measured reprojection error
    rms = float(rec.compute_mean_reprojection_error())
    return np.sqrt(np.clip(np.diag(C), 0, None)) * max(rms, 1e-3)       # principal point omitted (constant)


def self_calibrate(paths: list[Path], indices: list[int], camera: Camera, features: str, max_keypoints: int,
                   max_side: int, frames: int, threads: int, seed: int, notify=None) -> dict:
    """Refine ``camera``'s focal length and distortion on up to ``frames`` of the frames at ``indices``."""
    from selenite.locate.sfm import camera_from_colmap, frame_pairs, match_pairs, reconstruct

    notify = notify or (lambda step, frac: None)
    picked = _pick(indices, frames)
    ext = make_extractor(features, max_keypoints, threads)
    feats, names = [], []
    for k, i in enumerate(picked):
        notify("calibration", 0.3 * k / len(picked))
        small, q = resize_for_matching(to_uint8(read_frame(paths[i])), max_side)
        feats.append(ext(small).scaled(q))
        names.append(paths[i].name)
    pms = match_pairs(feats, frame_pairs(len(picked), 3, [5]), ext, (camera.width, camera.height), 25)
    notify("calibration", 0.5)
    with tempfile.TemporaryDirectory() as d:
        rec = reconstruct(Path(d), camera, names, feats, pms, 25, threads, seed, refine_intrinsics=True)
    if rec.num_reg_images() < 3:
        raise RunError(f"self-calibration registered only {rec.num_reg_images()} frames; give the lens "
                       "(fx, fy, cx, cy and its distortion) in the camera file")
    sigma = _intrinsic_sigma(rec, threads)
    cam = next(iter(rec.cameras.values()))
    refined = camera_from_colmap(cam, camera)
    keys = _param_names(camera)
    notify("calibration", 1.0)
    out = {"initial": camera.to_dict(), "camera": refined.to_dict(), "frames_used": rec.num_reg_images(),
           "frames_tried": len(picked), "points": rec.num_points3D(),
           "reprojection_rms_px": float(rec.compute_mean_reprojection_error()),
           "sigma": ({k: float(s) for k, s in zip([k for k in keys if k not in ("cx", "cy")], sigma, strict=True)}
                     if sigma is not None and len(sigma) == len(keys) - 2 else None)}
    if out["sigma"] is None:
        out["sigma_note"] = "the bundle adjustment's covariance could not be computed"
    log.info("self-calibration: %s from %d frames (rms %.2f px)", refined, out["frames_used"],
             out["reprojection_rms_px"])
    return out


def undistorted_path(folder: Path, index: int) -> Path:
    """Where the resampled frame number ``index`` is written."""
    return Path(folder) / f"{index:05d}.png"


def undistort_frames(paths: list[Path], indices: list[int], camera: Camera, folder: Path) -> dict:
    """Resample the frames at ``indices`` into the pinhole of :func:`pinhole_for` (8-bit PNG at
    :func:`undistorted_path`); returns the pinhole."""
    target = pinhole_for(camera)
    mx, my = undistort_maps(camera, target)
    folder.mkdir(parents=True, exist_ok=True)
    for i in indices:
        und = cv2.remap(read_frame(paths[i]), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        cv2.imwrite(str(undistorted_path(folder, i)), np.clip(np.round(und * 255), 0, 255).astype(np.uint8))
    return target.to_dict()
