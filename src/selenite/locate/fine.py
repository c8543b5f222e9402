"""Fine fix: tie the reconstruction to the DOM and bundle-adjust with the DOM as a fixed orthographic camera.

1. Each frame whose resolution is close to the DOM's gets the DOM *rendered into its own view* (rays cast on a
   height field interpolated from the reconstructed points, through the current map alignment), so the frame's
   own structure-from-motion keypoints can be matched to the map with no viewpoint change left. Every match of a
   keypoint that has a 3-D point gives a tie: that point lies at this DOM pixel. The rendering remembers which
   DOM pixel it sampled at every view pixel, so a tie's DOM position does not depend on the alignment used to
   render it.
2. A robust similarity (scale, heading, translation; then the two tilts) maps the reconstruction to the local
   metric frame of the DOM.
3. pycolmap bundle adjustment of all descent frames together with the DOM, modelled as a nadir pinhole camera
   10⁸ m above the site with a focal length of 10⁸ m / pixel size (orthographic to 10⁻⁶), whose pose and
   intrinsics are held fixed: the DOM pins the reconstruction in position, heading and scale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage
from scipy.optimize import least_squares

from selenite.locate.dom import Dom, LocalFrame, dom_to_uint8
from selenite.locate.features import Extractor, Features
from selenite.locate.geometry import GroundFrame, ransac_similarity_2d
from selenite.locate.search import View, features_in_valid, shrink_matrix, specify_histogram
from selenite.locate.sfm import lk_refine

log = logging.getLogger(__name__)
DOM_CAMERA_HEIGHT_M = 1.0e8


class HeightField:
    """Median height of reconstructed points per cell of the ground frame, holes filled from the nearest cell."""

    def __init__(self, local_pts: np.ndarray, cells: int = 160):
        a, b, h = local_pts.T
        lo = np.array([np.percentile(a, 0.5), np.percentile(b, 0.5)])
        hi = np.array([np.percentile(a, 99.5), np.percentile(b, 99.5)])
        self.cell = float(max((hi - lo).max() / cells, 1e-9))
        self.lo = lo - 2 * self.cell
        n = np.ceil((hi - lo) / self.cell).astype(int) + 5
        ia = np.clip(((a - self.lo[0]) / self.cell).astype(int), 0, n[0] - 1)
        ib = np.clip(((b - self.lo[1]) / self.cell).astype(int), 0, n[1] - 1)
        grid = np.full((n[1], n[0]), np.nan)
        order = np.lexsort((h, ib * n[0] + ia))
        key = (ib * n[0] + ia)[order]
        hs = h[order]
        starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
        ends = np.r_[starts[1:], len(key)]
        for s, e in zip(starts, ends, strict=True):
            k = key[s]
            grid[k // n[0], k % n[0]] = hs[(s + e) // 2]
        missing = np.isnan(grid)
        if missing.all():
            grid[:] = 0.0
        elif missing.any():
            idx = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
            grid = grid[tuple(idx)]
        self.grid = ndimage.gaussian_filter(grid, 1.0)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ca = (a - self.lo[0]) / self.cell
        cb = (b - self.lo[1]) / self.cell
        return ndimage.map_coordinates(self.grid, [cb, ca], order=1, mode="nearest")


@dataclass
class MapAlignment:
    """Ground frame (reconstruction units) → local metric frame: E,N = s Rot(phi) Rtilt (a,b,h), Z = s (Rtilt p)_h."""

    scale: float
    phi: float
    t: np.ndarray
    tilt: np.ndarray          # small rotations about e1 and e2 (radians)

    def rotation(self) -> np.ndarray:
        wx, wy = self.tilt
        Rx = np.array([[1, 0, 0], [0, np.cos(wx), -np.sin(wx)], [0, np.sin(wx), np.cos(wx)]])
        Ry = np.array([[np.cos(wy), 0, np.sin(wy)], [0, 1, 0], [-np.sin(wy), 0, np.cos(wy)]])
        c, s = np.cos(self.phi), np.sin(self.phi)
        Rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        return Rz @ Ry @ Rx

    def apply(self, abh: np.ndarray) -> np.ndarray:
        out = self.scale * (np.atleast_2d(abh) @ self.rotation().T)
        out[:, :2] += self.t
        return out


def ray_cast(view: View, K: np.ndarray, shape: tuple[int, int], gf: GroundFrame, hf: HeightField,
             step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Ground-frame (a, b, h) seen at every pixel of a view of intrinsics K and size ``shape`` (h, w)."""
    h, w = shape
    gu = np.arange(0, w + step, step, dtype=float)
    gv = np.arange(0, h + step, step, dtype=float)
    uu, vv = np.meshgrid(gu, gv)
    d = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], np.ones_like(uu)], -1)
    rays = d.reshape(-1, 3) @ view.R
    rays_l = rays @ gf.matrix.T
    c = gf.to_local(view.center[None])[0]
    down = rays_l[:, 2] < -1e-6
    hgt = np.zeros(len(rays_l))
    lam = np.full(len(rays_l), np.nan)
    for _ in range(6):
        lam = np.where(down, (hgt - c[2]) / np.where(down, rays_l[:, 2], -1), np.nan)
        a = c[0] + lam * rays_l[:, 0]
        b = c[1] + lam * rays_l[:, 1]
        hgt = np.where(down, hf(np.nan_to_num(a), np.nan_to_num(b)), 0.0)
    pts = c + lam[:, None] * rays_l
    grid = pts.reshape(len(gv), len(gu), 3).astype(np.float32)
    mx, my = np.meshgrid(np.arange(w, dtype=np.float32) / step, np.arange(h, dtype=np.float32) / step)
    full = np.stack([cv2.remap(grid[..., k], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                     for k in range(3)], -1)
    return full, np.isfinite(full).all(-1)


def render_dom_view(dom: Dom, lf: LocalFrame, align: MapAlignment, local_abh: np.ndarray, valid: np.ndarray):
    """Render the DOM at the ground points of a view; returns image (uint8), valid mask, DOM col and row maps."""
    h, w = valid.shape
    en = align.apply(np.nan_to_num(local_abh.reshape(-1, 3)))[:, :2]
    px = lf.local_to_pixel(en[:, 0], en[:, 1]).reshape(h, w, 2)
    ok = valid & np.isfinite(px).all(-1)
    if ok.sum() < 100:
        return None
    c0 = int(np.floor(np.nanmin(px[..., 0][ok]))) - 2
    r0 = int(np.floor(np.nanmin(px[..., 1][ok]))) - 2
    c1 = int(np.ceil(np.nanmax(px[..., 0][ok]))) + 3
    r1 = int(np.ceil(np.nanmax(px[..., 1][ok]))) + 3
    H, W = dom.shape
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, W), min(r1, H)
    if c1 - c0 < 8 or r1 - r0 < 8:
        return None
    crop = dom.read(0, (c0, r0, c1 - c0, r1 - r0))
    img8, cvalid = dom_to_uint8(crop)
    mapx = (px[..., 0] - c0).astype(np.float32)
    mapy = (px[..., 1] - r0).astype(np.float32)
    view = cv2.remap(img8, mapx, mapy, cv2.INTER_LINEAR, borderValue=0)
    vmask = cv2.remap(cvalid.astype(np.uint8) * 255, mapx, mapy, cv2.INTER_NEAREST, borderValue=0) > 0
    vmask &= ok
    return view, vmask, px[..., 0], px[..., 1]


def dom_in_frame_view(view: View, K: np.ndarray, frame: np.ndarray, dom: Dom, lf: LocalFrame, align: MapAlignment,
                      gf: GroundFrame, hf: HeightField, erode_px: int, min_valid: float):
    """The DOM rendered into a frame's view (intrinsics K, the frame's size) and histogram-specified to the frame:
    image, valid mask (eroded by ``erode_px``), DOM col and row maps; None when less than ``min_valid`` of the
    view lies on the DOM."""
    abh, ok = ray_cast(view, K, frame.shape, gf, hf)
    r = render_dom_view(dom, lf, align, abh, ok)
    if r is None:
        return None
    img, vmask, mc, mr = r
    vmask = cv2.erode(vmask.astype(np.uint8), np.ones((erode_px, erode_px), np.uint8)) > 0
    if vmask.mean() < min_valid:
        return None
    return specify_histogram(img, vmask, frame, np.ones(frame.shape, bool)), vmask, mc, mr


def ties_for_view(view: View, frame_small: np.ndarray, feats: Features, point_ids: dict[int, int], K_small: np.ndarray,
                  dom: Dom, lf: LocalFrame, align: MapAlignment, gf: GroundFrame, hf: HeightField,
                  extractor: Extractor, max_shift_px: float = 12.0) -> list[tuple[int, float, float]]:
    """(point3D id, DOM col, DOM row) ties of one view, from its own keypoints matched to the rendered DOM."""
    shape = frame_small.shape
    r = dom_in_frame_view(view, K_small, frame_small, dom, lf, align, gf, hf, erode_px=7, min_valid=0.2)
    if r is None:
        return []
    img, vmask, mc, mr = r
    fv = features_in_valid(extractor, img, vmask, len(feats.keypoints))
    if not len(fv):
        return []
    m = extractor.match_pair(feats, fv, shape[::-1], shape[::-1])
    if len(m) < 8:
        return []
    src, dst = feats.keypoints[m[:, 0]], fv.keypoints[m[:, 1]]
    near = np.linalg.norm(src - dst, axis=1) < max_shift_px
    m, src, dst = m[near], src[near], dst[near]
    if len(m) < 8:
        return []
    H, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 2.0, confidence=0.999, maxIters=3000)
    if H is None:
        return []
    inl = mask.ravel().astype(bool)
    pids = [point_ids.get(int(ki)) for ki in m[inl, 0]]
    has = np.array([p is not None for p in pids], bool)
    if not has.any():
        return []
    # the matched place on the rendering, to sub-pixel: tracked from the keypoint where the reconstruction has it
    at, _ = lk_refine(frame_small, img, src[inl][has], dst[inl][has])
    cols = ndimage.map_coordinates(mc, [at[:, 1], at[:, 0]], order=1)
    rows = ndimage.map_coordinates(mr, [at[:, 1], at[:, 0]], order=1)
    kept = [p for p in pids if p is not None]
    return [(pid, float(c), float(r)) for pid, c, r in zip(kept, cols, rows, strict=True)]


def fit_alignment(abh: np.ndarray, en: np.ndarray, init: MapAlignment, threshold_m: float,
                  fit_tilt: bool = False, tilt_prior_rad: float = np.radians(1.0)) -> tuple[MapAlignment, np.ndarray]:
    """Robust similarity (RANSAC), then robust least squares; returns the alignment and the inlier mask.

    The vertical is the descent axis (Shu et al. 2026). The two tilts are only fitted with ``fit_tilt`` (with a
    weak prior): over gentle relief the DOM barely constrains them, and a wrong tilt moves a landing point
    hundreds of metres from the tie points by (1 - cos tilt) × distance.
    """
    s, a, t, inl = ransac_similarity_2d(abh[:, :2], en, threshold_m)
    if inl.sum() < 6:
        return init, inl
    nt = 2 if fit_tilt else 0
    x0 = np.concatenate([[np.log(s), a, t[0], t[1]], np.zeros(nt)])

    def unpack(x):
        tilt = x[4:6] if fit_tilt else np.zeros(2)
        return MapAlignment(float(np.exp(x[0])), float(x[1]), x[2:4].copy(), np.array(tilt, float))

    def resid(x, p, q):
        r = (unpack(x).apply(p)[:, :2] - q).ravel() / threshold_m
        return np.concatenate([r, x[4:6] / tilt_prior_rad]) if fit_tilt else r

    sol = least_squares(resid, x0, args=(abh[inl], en[inl]), loss="soft_l1", f_scale=1.0)
    al = unpack(sol.x)
    res = np.linalg.norm(al.apply(abh)[:, :2] - en, axis=1)
    return al, res < threshold_m


def to_local_metric(rec, gf: GroundFrame, align: MapAlignment):
    """A copy of the reconstruction moved into the local metric frame of the map by an alignment."""
    import pycolmap

    rec = pycolmap.Reconstruction(rec)
    R = align.rotation() @ gf.matrix
    T = -align.scale * R @ gf.origin
    T[:2] += align.t
    rec.transform(pycolmap.Sim3d(align.scale, pycolmap.Rotation3d(R), T))
    return rec


def bundle_adjust_with_dom(rec, gf: GroundFrame, align: MapAlignment, tie_pids: np.ndarray, tie_en: np.ndarray,
                           px_m: float, threads: int = 2):
    """Move the reconstruction into the local metric frame and bundle-adjust it with the DOM camera fixed.

    Returns the adjusted reconstruction (a copy) and the DOM observation residuals (metres) after adjustment.
    """
    import pycolmap

    rec = to_local_metric(rec, gf, align)
    e0, n0 = tie_en.mean(0)
    half = np.abs(tie_en - [e0, n0]).max(0) / px_m + 10
    f = DOM_CAMERA_HEIGHT_M / px_m
    width, height = int(2 * half[0]) + 1, int(2 * half[1]) + 1
    cam = pycolmap.Camera(model="PINHOLE", width=width, height=height,
                          params=[f, f, width / 2.0, height / 2.0])
    cam.camera_id = max(rec.cameras) + 1
    rec.add_camera_with_trivial_rig(cam)
    uv = np.column_stack([(tie_en[:, 0] - e0) / px_m + width / 2.0, -(tie_en[:, 1] - n0) / px_m + height / 2.0])
    image_id = max(rec.images) + 1
    img = pycolmap.Image(name="__dom__", keypoints=uv, camera_id=cam.camera_id, image_id=image_id)
    Rw = np.diag([1.0, -1.0, -1.0])
    C = np.array([e0, n0, DOM_CAMERA_HEIGHT_M])
    rec.add_image_with_trivial_frame(img, pycolmap.Rigid3d(pycolmap.Rotation3d(Rw), -Rw @ C))
    for k, pid in enumerate(tie_pids):
        rec.add_observation(int(pid), pycolmap.TrackElement(image_id, k))
    config = pycolmap.BundleAdjustmentConfig()
    for iid in rec.reg_image_ids():
        config.add_image(iid)
    for cid in rec.cameras:
        config.set_constant_cam_intrinsics(cid)
    config.set_constant_rig_from_world_pose(rec.image(image_id).frame_id)
    opts = pycolmap.BundleAdjustmentOptions()
    opts.refine_focal_length = False
    opts.refine_principal_point = False
    opts.refine_extra_params = False
    opts.ceres.solver_options.num_threads = threads
    opts.ceres.solver_options.max_num_iterations = 100
    ba = pycolmap.create_default_bundle_adjuster(opts, config, rec)
    ba.solve()
    xyz = np.array([rec.points3D[int(p)].xyz for p in tie_pids])
    resid = np.linalg.norm(xyz[:, :2] - tie_en, axis=1)
    return rec, image_id, resid


@dataclass
class PointFix:
    """Where one frame puts a ground point on the DOM: DOM pixel, match count and fit residual (DOM px)."""

    name: str
    dom_col: float
    dom_row: float
    matches: int
    rms_dom_px: float
    ratio: float


def locate_point_in_view(view: View, frame: np.ndarray, K: np.ndarray, p: np.ndarray, ratio: float,
                         target_ratio: float, dom: Dom, lf: LocalFrame, align: MapAlignment, gf: GroundFrame,
                         hf: HeightField, extractor: Extractor, max_shift_px: float = 10.0,
                         min_matches: int = 12, local_matches: int = 40) -> PointFix | None:
    """DOM pixel of the frame pixel ``p`` (full size), by matching the frame to the DOM rendered into its view.

    The frame is first shrunk so its ground sample is ``target_ratio`` DOM pixels (when it is finer than that),
    so both images hold the same detail. Matches between the frame and the rendered view (nearly the identity:
    both share the frame's geometry), cleaned by MAGSAC, give a local affine map that carries ``p`` into the
    rendering, whose per-pixel DOM coordinates (ray cast on the reconstructed relief) then give the DOM pixel.
    """
    q = max(target_ratio / ratio, 1.0)                  # full / small
    h, w = frame.shape
    small = cv2.resize(frame, (max(int(round(w / q)), 16), max(int(round(h / q)), 16)), interpolation=cv2.INTER_AREA)
    qx, qy = w / small.shape[1], h / small.shape[0]
    S = shrink_matrix(qx, qy)
    Ks = S @ K
    ps = (S @ np.array([p[0], p[1], 1.0]))[:2]
    r = dom_in_frame_view(view, Ks, small, dom, lf, align, gf, hf, erode_px=5, min_valid=0.3)
    if r is None:
        return None
    img, vmask, mc, mr = r
    n = int(np.clip(small.size / 64, 256, 4096))
    ff = extractor(small, n)
    fv = features_in_valid(extractor, img, vmask, n)
    if len(ff) < min_matches or len(fv) < min_matches:
        return None
    m = extractor.match_pair(ff, fv, small.shape[::-1], img.shape[::-1])
    if len(m) < min_matches:
        return None
    src, dst = ff.keypoints[m[:, 0]], fv.keypoints[m[:, 1]]
    near = np.linalg.norm(src - dst, axis=1) < max_shift_px
    src, dst = src[near], dst[near]
    if len(src) < min_matches:
        return None
    H, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 1.5, confidence=0.999, maxIters=5000)
    if H is None or mask.sum() < min_matches:
        return None
    inl = mask.ravel().astype(bool)
    src, dst = src[inl], dst[inl]
    dst, _ = lk_refine(small, img, src, dst)          # sub-pixel: the detector places points only to its grid
    # a local affine map around p from its nearest inliers: a global model would extrapolate the parallax
    # left by relief that the reconstructed height field misses
    d = np.linalg.norm(src - ps, axis=1)
    near = np.argsort(d)[:max(min_matches, min(local_matches, len(d)))]
    A = np.c_[src[near] - ps, np.ones(len(near))]
    coef, *_ = np.linalg.lstsq(A, dst[near], rcond=None)
    pr = coef[2]
    res_view = np.linalg.norm(A @ coef - dst[near], axis=1)
    if not (0 <= pr[0] <= small.shape[1] - 1 and 0 <= pr[1] <= small.shape[0] - 1):
        return None
    col = float(ndimage.map_coordinates(mc, [[pr[1]], [pr[0]]], order=1)[0])
    row = float(ndimage.map_coordinates(mr, [[pr[1]], [pr[0]]], order=1)[0])
    # view pixels → DOM pixels near p: the local scale of the rendering
    gy_c, gx_c = np.gradient(mc)
    gy_r, gx_r = np.gradient(mr)
    i, j = int(round(pr[1])), int(round(pr[0]))
    J = np.array([[gx_c[i, j], gy_c[i, j]], [gx_r[i, j], gy_r[i, j]]])
    scale = float(np.sqrt(abs(np.linalg.det(J))))
    return PointFix(view.name, col, row, len(near), float(np.sqrt(np.mean(res_view ** 2))) * scale, ratio)
