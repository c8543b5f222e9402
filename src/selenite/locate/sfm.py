"""Trajectory reconstruction: pairwise matching of the sampled frames (sequential + loop pairs), then
incremental structure-from-motion with known intrinsics in pycolmap (Schönberger & Frahm 2016).

Pixel conventions: selenite's pixel (0, 0) is the centre of the top-left pixel; COLMAP's is its corner, so
keypoints and the principal point are shifted by +0.5 on the way in and -0.5 on the way out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from selenite.errors import RunError
from selenite.geo.camera import Camera, FisheyeCamera, PinholeCamera
from selenite.locate.features import Extractor, Features

log = logging.getLogger(__name__)


def frame_pairs(n: int, overlap: int, strides: list[int]) -> list[tuple[int, int]]:
    """Sequential pairs (i, i+1..i+overlap) plus longer 'loop' strides, as positions in the sampled list."""
    pairs = set()
    for i in range(n):
        for d in range(1, overlap + 1):
            if i + d < n:
                pairs.add((i, i + d))
        for d in strides:
            if i + d < n:
                pairs.add((i, i + d))
    return sorted(pairs)


def _homography_check(p1: np.ndarray, p2: np.ndarray, min_inliers: int) -> tuple[np.ndarray | None, int]:
    """MAGSAC homography p1 → p2 and its inlier count; the homography is None below ``min_inliers``."""
    if len(p1) < 8:
        return None, 0
    H, mask = cv2.findHomography(p1, p2, cv2.USAC_MAGSAC, 3.0, confidence=0.999, maxIters=2000)
    n_in = int(mask.sum()) if mask is not None else 0
    return (None if H is None or n_in < min_inliers else H), n_in


@dataclass
class PairMatch:
    i: int
    j: int
    matches: np.ndarray       # (M, 2) indices into features i, j (after the homography check: all MNN)
    H: np.ndarray | None      # homography frame i → frame j (full-size pixels), None if it failed
    inliers: int


def match_pairs(feats: list[Features], pairs: list[tuple[int, int]], extractor: Extractor,
                size: tuple[int, int], min_inliers: int, notify=None) -> list[PairMatch]:
    """Match each pair (the extractor's pair matcher; frames of ``size`` = (width, height)) and check it
    with a MAGSAC homography."""
    out = []
    for k, (i, j) in enumerate(pairs):
        m = extractor.match_pair(feats[i], feats[j], size, size)
        H, n_in = _homography_check(feats[i].keypoints[m[:, 0]], feats[j].keypoints[m[:, 1]], min_inliers)
        out.append(PairMatch(i, j, m, H, n_in))
        if notify and k % 20 == 0:
            notify("matching", k / max(len(pairs), 1))
    return out


def colmap_camera(camera: Camera, distorted: bool | None = None):
    """The pycolmap camera of a selenite camera; ``distorted`` forces a model with distortion parameters (to be
    refined) even when they are zero."""
    import pycolmap

    base = [camera.fx, camera.fy, camera.cx + 0.5, camera.cy + 0.5]
    if isinstance(camera, FisheyeCamera):
        model, params = "OPENCV_FISHEYE", [*base, camera.k1, camera.k2, camera.k3, camera.k4]
    elif camera.k3:
        model, params = "FULL_OPENCV", [*base, camera.k1, camera.k2, camera.p1, camera.p2, camera.k3, 0, 0, 0]
    elif camera.has_distortion or distorted:
        model, params = "OPENCV", [*base, camera.k1, camera.k2, camera.p1, camera.p2]
    else:
        model, params = "PINHOLE", base
    cam = pycolmap.Camera(model=model, width=camera.width, height=camera.height, params=params)
    cam.has_prior_focal_length = True
    return cam


def camera_from_colmap(cam, like: Camera) -> Camera:
    """The selenite camera of a (refined) pycolmap camera of the same model as ``like``."""
    p = [float(v) for v in cam.params]
    base = {"width": like.width, "height": like.height, "fx": p[0], "fy": p[1], "cx": p[2] - 0.5, "cy": p[3] - 0.5}
    if isinstance(like, FisheyeCamera):
        return FisheyeCamera(**base, k1=p[4], k2=p[5], k3=p[6], k4=p[7])
    if len(p) >= 8:
        return PinholeCamera(**base, k1=p[4], k2=p[5], p1=p[6], p2=p[7], k3=p[8] if len(p) > 8 else 0.0)
    return PinholeCamera(**base)


def bridge_scale_gaps(feats: list[Features], pair_matches: list[PairMatch], load_image, extractor: Extractor,
                      size: tuple[int, int], min_inliers: int, max_gap: int,
                      scales: tuple[float, ...] = tuple(2 ** (-k / 4) for k in range(1, 8))) -> list[dict]:
    """Sequential pairs (at most ``max_gap`` apart) that failed because one frame sees the ground much larger than
    the other (a fast fall near the ground: Mars 2020's last powered-descent frames are 2–3× apart in scale,
    where XFeat's descriptors match 5–35 points) are matched again with the magnified frame's features extracted
    from copies shrunk by ``scales`` (quarter octaves, 0.84 down to 0.30: a half-octave ladder missed a pair of
    the Mars 2020 descent that matches at 0.45 and not at 0.5 or 0.35). The best shrink, when it passes the
    homography check, is kept: its features are appended to that frame's own (so every other pair and every later
    step keep their indices) and the pair's matches point at them. ``load_image(k)`` gives frame k at the size
    its features were found on (8 bit) and that size's factor to full size; ``feats[k]`` hold full-size pixels.
    Changes ``feats`` and ``pair_matches`` in place; returns what was bridged."""
    bridged = []
    for n, pm in enumerate(pair_matches):
        if pm.inliers >= min_inliers or pm.j - pm.i > max_gap:
            continue
        best = None
        for shrink_j in (True, False):                 # descending: the later frame is magnified; rising: the earlier
            img, q = load_image(pm.j if shrink_j else pm.i)
            for sc in scales:
                dsize = (max(int(round(img.shape[1] * sc)), 16), max(int(round(img.shape[0] * sc)), 16))
                small = cv2.resize(img, dsize, interpolation=cv2.INTER_AREA)
                f = extractor(small).scaled(q * img.shape[1] / small.shape[1])
                if len(f) < 8:
                    continue
                a, b = (feats[pm.i], f) if shrink_j else (f, feats[pm.j])
                m = extractor.match_pair(a, b, size, size)
                H, n_in = _homography_check(a.keypoints[m[:, 0]], b.keypoints[m[:, 1]], min_inliers)
                if H is not None and (best is None or n_in > best[0]):
                    best = (n_in, shrink_j, sc, f, m, H)
        if best is None:
            continue
        n_in, shrink_j, sc, f, m, H = best
        k_big = pm.j if shrink_j else pm.i
        base = len(feats[k_big])
        old = feats[k_big]
        feats[k_big] = Features(np.concatenate([old.keypoints, f.keypoints]),
                                np.concatenate([old.descriptors, f.descriptors.astype(old.descriptors.dtype)]),
                                np.concatenate([old.scores, f.scores]))
        m = m.copy()
        m[:, 1 if shrink_j else 0] += base
        pair_matches[n] = PairMatch(pm.i, pm.j, m, H, n_in)
        bridged.append({"i": pm.i, "j": pm.j, "shrunk": "later" if shrink_j else "earlier", "scale": sc,
                        "inliers_before": pm.inliers, "inliers": n_in})
        log.info("pair %d-%d bridged at scale %.2f: %d → %d inliers", pm.i, pm.j, sc, pm.inliers, n_in)
    return bridged


def reconstruct(workdir: Path, camera: Camera, names: list[str], feats: list[Features],
                pair_matches: list[PairMatch], min_inliers: int, threads: int = 2, seed: int = 0,
                refine_intrinsics: bool = False):
    """Incremental SfM; returns the largest pycolmap Reconstruction (image names = ``names``). With
    ``refine_intrinsics`` the focal length and distortion are refined in every bundle adjustment (the principal
    point stays at its given place: a descent's nearly parallel views barely constrain it)."""
    import pycolmap

    pycolmap.logging.minloglevel = 2 if log.getEffectiveLevel() > logging.DEBUG else 0
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "database.db"
    db_path.unlink(missing_ok=True)
    db = pycolmap.Database.open(str(db_path))
    cam_id = db.write_camera(colmap_camera(camera, distorted=refine_intrinsics))
    ids = []
    for name, f in zip(names, feats, strict=True):
        image_id = db.write_image(pycolmap.Image(name=name, camera_id=cam_id))
        db.write_keypoints(image_id, (f.keypoints + 0.5).astype(np.float32))
        ids.append(image_id)
    lines = []
    for pm in pair_matches:
        if pm.inliers >= min_inliers and len(pm.matches):
            db.write_matches(ids[pm.i], ids[pm.j], pm.matches.astype(np.uint32))
            lines.append(f"{names[pm.i]} {names[pm.j]}\n")
    db.close()
    if not lines:
        raise RunError("no pair of frames matched; the frames do not overlap")
    pairs_path = workdir / "pairs.txt"
    pairs_path.write_text("".join(lines))
    pycolmap.verify_matches(str(db_path), str(pairs_path))
    opts = pycolmap.IncrementalPipelineOptions()
    opts.ba_refine_focal_length = refine_intrinsics
    opts.ba_refine_principal_point = False
    opts.ba_refine_extra_params = refine_intrinsics
    opts.extract_colors = False
    opts.num_threads = threads
    opts.random_seed = seed
    opts.min_model_size = 3
    out = workdir / "models"
    out.mkdir(exist_ok=True)
    recs = pycolmap.incremental_mapping(str(db_path), str(workdir), str(out), opts)
    if not recs:
        raise RunError("structure from motion registered no frames; the frames do not overlap enough")
    return max(recs.values(), key=lambda r: r.num_reg_images())


def poses_from_reconstruction(rec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name → (R, t) world→camera of every registered image."""
    out = {}
    for image in rec.images.values():
        if not image.has_pose:
            continue
        T = image.cam_from_world().matrix()
        out[image.name] = (np.asarray(T[:, :3]), np.asarray(T[:, 3]))
    return out


def points_from_reconstruction(rec) -> tuple[np.ndarray, np.ndarray, dict[str, dict[int, int]]]:
    """3D points (N, 3), their ids, and per image name {point2D index: point3D id}."""
    ids = np.array(list(rec.points3D.keys()), np.int64)
    xyz = np.array([rec.points3D[int(i)].xyz for i in ids]) if len(ids) else np.zeros((0, 3))
    obs: dict[str, dict[int, int]] = {}
    for image in rec.images.values():
        if not image.has_pose:
            continue
        d = {}
        for k, p in enumerate(image.points2D):
            if p.has_point3D():
                d[k] = int(p.point3D_id)
        obs[image.name] = d
    return xyz, ids, obs
