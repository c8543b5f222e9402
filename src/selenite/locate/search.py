"""Finding the descent on the orbital map: altitude-aware, rotation-searching, coarse-to-fine.

Shu et al. (2026) cut the DOM into 2048² tiles, rotate each in 45° steps and rank tiles by SuperGlue score
against five keyframes: an exhaustive sequence-to-sequence search. Here the reconstruction already knows each
keyframe's pose relative to the ground and its ground sample distance, so a keyframe is *orthorectified straight
into the DOM's pixel geometry* at a chosen pyramid level: what is left unknown is one rotation about the vertical
(shared by every frame) and a translation. The search then runs once over a decimated DOM (features indexed
once), for ``rotations`` headings, with a similarity model whose scale must be ≈ 1; the best hypothesis is refined
at full resolution with a homography. The DOM and keyframes are brought to the same brightness distribution by
histogram specification first (as in the paper).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.exposure import match_histograms

from selenite.errors import InputError
from selenite.geo.camera import PinholeCamera
from selenite.locate.dom import Dom, dom_to_uint8, tile_features
from selenite.locate.features import Extractor, Features, match
from selenite.locate.geometry import GroundFrame

log = logging.getLogger(__name__)


def rot2(a: float) -> np.ndarray:
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def shrink_matrix(qx: float, qy: float | None = None) -> np.ndarray:
    """Pixel map of an image shrunk by ``qx`` (and ``qy``): small = (full + 0.5) / q - 0.5 (pixel centres)."""
    qy = qx if qy is None else qy
    return np.array([[1 / qx, 0, 0.5 / qx - 0.5], [0, 1 / qy, 0.5 / qy - 0.5], [0, 0, 1.0]])


def scaled_K(K: np.ndarray, q: float) -> np.ndarray:
    """Intrinsics of a frame shrunk by ``q``."""
    return shrink_matrix(q) @ K


@dataclass
class View:
    """A registered frame: pose in reconstruction units and the image (8 bit, full size)."""

    name: str
    index: int
    R: np.ndarray
    t: np.ndarray
    image: np.ndarray | None = None

    @property
    def center(self) -> np.ndarray:
        return -self.R.T @ self.t


@dataclass
class Template:
    """An orthorectified view of a frame in DOM pixel geometry at a pyramid level (rotation theta)."""

    image: np.ndarray
    valid: np.ndarray
    H_t2f: np.ndarray         # template pixel → full-size frame pixel (homogeneous)
    G: np.ndarray             # template pixel (homogeneous) → reconstruction point on the ground plane
    theta: float
    level: int


def footprint_ground(view: View, camera: PinholeCamera, gf: GroundFrame, h_ground: float) -> np.ndarray:
    """Ground-frame (a, b) of the frame's border points (rays meeting the plane u·X = h_ground)."""
    w, h = camera.width, camera.height
    s = np.linspace(0, 1, 9)
    u = np.concatenate([s * (w - 1), np.full(9, w - 1.0), (1 - s) * (w - 1), np.zeros(9)])
    v = np.concatenate([np.zeros(9), s * (h - 1), np.full(9, h - 1.0), (1 - s) * (h - 1)])
    rays = camera.pixel_rays_camera(u, v) @ view.R          # world directions
    C = view.center
    loc_c = gf.to_local(C[None])[0]
    dh = rays @ gf.u
    ok = dh < -1e-6
    lam = (h_ground - loc_c[2]) / np.where(ok, dh, -1e-6)
    P = C + lam[:, None] * rays
    ab = gf.to_local(P)[:, :2]
    return ab[ok]


def make_template(view: View, camera: PinholeCamera, gf: GroundFrame, scale_m: float, h_ground: float,
                  theta: float, A: np.ndarray, max_side: int, level: int) -> Template | None:
    """Warp a frame into DOM geometry: template pixel → metres (A) → ground frame (rotate -theta) → frame."""
    ab = footprint_ground(view, camera, gf, h_ground)
    if len(ab) < 8:
        return None
    center_ab = np.median(ab, axis=0)
    M = rot2(theta)                     # ground (e1, e2) → (east, north)
    off_m = (ab - center_ab) * scale_m @ M.T
    off_px = off_m @ np.linalg.inv(A).T
    half = np.minimum(np.abs(off_px).max(0), max_side / 2)
    w, h = (2 * np.ceil(half) + 1).astype(int)
    if min(w, h) < 24:
        return None
    cw, ch = (w - 1) / 2, (h - 1) / 2
    # P(c, r) = Pc + B (c - cw, r - ch);  B = [e1 e2] M^T A / scale
    B = np.column_stack([gf.e1, gf.e2]) @ M.T @ A / scale_m
    Pc = gf.origin + center_ab[0] * gf.e1 + center_ab[1] * gf.e2 + h_ground * gf.u
    G = np.column_stack([B, Pc - B @ np.array([cw, ch])])          # (3, 3): template homog → world
    H_t2f = camera.K @ (view.R @ G + np.outer(view.t, [0, 0, 1]))
    # shrink the frame first so the warp does not alias
    img = view.image
    # probe: template pixels per frame pixel near the centre (after dehomogenising)
    p0 = np.linalg.inv(H_t2f) @ np.array([camera.cx, camera.cy, 1.0])
    p1 = np.linalg.inv(H_t2f) @ np.array([camera.cx + 1, camera.cy, 1.0])
    probe = np.linalg.norm(p1[:2] / p1[2] - p0[:2] / p0[2])
    if probe < 0.7:
        q = min(1.0 / max(probe, 1e-6), 64.0)
        small = cv2.resize(img, (max(int(round(img.shape[1] / q)), 8), max(int(round(img.shape[0] / q)), 8)),
                           interpolation=cv2.INTER_AREA)
        qx, qy = img.shape[1] / small.shape[1], img.shape[0] / small.shape[0]
        H_warp = shrink_matrix(qx, qy) @ H_t2f
        img = small
    else:
        H_warp = H_t2f
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    tmpl = cv2.warpPerspective(img, H_warp, (int(w), int(h)), flags=flags, borderValue=0)
    valid = cv2.warpPerspective(np.full(img.shape, 255, np.uint8), H_warp, (int(w), int(h)),
                                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0) > 0
    valid = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if valid.mean() < 0.2:
        return None
    return Template(tmpl, valid, H_t2f, G, theta, level)


def specify_histogram(image: np.ndarray, valid: np.ndarray, reference: np.ndarray, ref_valid: np.ndarray) -> np.ndarray:
    """Histogram specification of the valid pixels of ``image`` to those of ``reference`` (8 bit)."""
    out = image.copy()
    if valid.any() and ref_valid.any():
        out[valid] = np.clip(match_histograms(image[valid].astype(float), reference[ref_valid].astype(float)),
                             0, 255).astype(np.uint8)
    return out


def features_in_valid(extractor: Extractor, image: np.ndarray, valid: np.ndarray, k: int) -> Features:
    f = extractor(image, k)
    if not len(f):
        return f
    c = np.clip(f.keypoints[:, 0].round().astype(int), 0, image.shape[1] - 1)
    r = np.clip(f.keypoints[:, 1].round().astype(int), 0, image.shape[0] - 1)
    return f.subset(valid[r, c])


@dataclass
class Hypothesis:
    keyframe: str
    theta: float               # rotation ground frame → (east, north), radians
    inliers: int
    scale: float               # similarity scale template → DOM (≈ 1 when the altitude scale is right)
    center_px: np.ndarray      # template centre on the DOM (level-0 pixels)
    A_t2d: np.ndarray          # 2x3 similarity template(level) → DOM(level)
    theta_grid: float = 0.0    # the heading the template was made with
    scale_m: float = 0.0       # metres per reconstruction unit implied by this hypothesis
    origin_px: np.ndarray | None = None   # where it puts the ground below the landing (level-0 DOM pixels)


def choose_level(dom: Dom, footprint_m: float, max_pixels: int, min_side: int) -> int:
    px_m = dom.pixel_size_m()
    n = dom.shape[0] * dom.shape[1]
    level_pixels = int(np.ceil(max(np.log(n / max_pixels) / np.log(4), 0)))
    level_template = int(np.floor(max(np.log2(footprint_m / px_m / min_side), 0)))
    return max(min(level_pixels, level_template), 0)


def index_dom(dom: Dom, level: int, extractor: Extractor, per_mpx: int):
    arr = dom.read(level)
    img, valid = dom_to_uint8(arr)
    feats = tile_features(img, valid, extractor, per_mpx)
    return img, valid, feats


def search_tiles(shape: tuple[int, int], keypoints: np.ndarray, tile: int) -> list[np.ndarray]:
    """Which DOM features lie in each tile (side ``tile``, half overlapping) of an image of ``shape``, as boolean
    masks; one tile holding everything when the image is no larger than two tiles' area."""
    h, w = shape
    if h * w <= 2 * tile * tile:
        return [np.ones(len(keypoints), bool)]
    step = tile // 2
    starts = lambda n: sorted({*range(0, max(n - tile, 0) + 1, step), max(n - tile, 0)})  # noqa: E731
    out = []
    for r0 in starts(h):
        for c0 in starts(w):
            inside = ((keypoints[:, 0] >= c0) & (keypoints[:, 0] < c0 + tile) & (keypoints[:, 1] >= r0)
                      & (keypoints[:, 1] < r0 + tile))
            if inside.sum() >= 8:
                out.append(inside)
    return out


def top_k_matches(d1: np.ndarray, d2: np.ndarray, k: int, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``d1`` the ``k`` most similar rows of ``d2`` (indices (N, k), similarities (N, k)),
    computed in chunks of ``d2`` so memory stays at N × chunk."""
    import torch

    a = torch.from_numpy(np.ascontiguousarray(d1, np.float32))
    best_s = torch.full((len(d1), k), -2.0)
    best_i = torch.zeros((len(d1), k), dtype=torch.long)
    with torch.inference_mode():
        for c0 in range(0, len(d2), chunk):
            b = torch.from_numpy(np.ascontiguousarray(d2[c0:c0 + chunk], np.float32))
            s, i = torch.topk(a @ b.T, min(k, len(b)), dim=1)
            s_all = torch.cat([best_s, s], 1)
            i_all = torch.cat([best_i, i + c0], 1)
            best_s, pos = torch.topk(s_all, k, dim=1)
            best_i = torch.gather(i_all, 1, pos)
    return best_i.numpy(), best_s.numpy()


def _best_in_tile(cand: np.ndarray, sims: np.ndarray, in_tile: np.ndarray) -> np.ndarray:
    """Matches (M, 2): each template feature with its most similar candidate inside the tile, one template
    feature per DOM feature (the most similar)."""
    ok = in_tile[cand]
    s = np.where(ok, sims, -np.inf)
    col = s.argmax(1)
    rows = np.flatnonzero(np.isfinite(s[np.arange(len(s)), col]))
    if not len(rows):
        return np.zeros((0, 2), np.int64)
    j = cand[rows, col[rows]]
    sv = s[rows, col[rows]]
    order = np.argsort(-sv, kind="stable")
    _, first = np.unique(j[order], return_index=True)
    keep = order[first]
    return np.stack([rows[keep], j[keep]], axis=1)


def coarse_search(dom: Dom, dom_img: np.ndarray, dom_valid: np.ndarray, dom_feats: Features, level: int,
                  views: list[View], camera: PinholeCamera, gf: GroundFrame, scale_m: float,
                  h_grounds: dict[str, float], rotations: int, extractor: Extractor, template_max: int = 1024,
                  scale_tolerance: float = 1.35, tile: int = 1024, top_k: int = 4) -> list[Hypothesis]:
    """Every (keyframe, heading, DOM tile) hypothesis with its RANSAC inlier count at pyramid level ``level``.

    A DOM no larger than two tiles is one tile: template and DOM features are matched as mutual nearest
    neighbours. A larger DOM is cut into half-overlapping tiles of ``tile`` pixels at this level (as the paper
    ranks DOM tiles): each template feature keeps its :func:`top_k_matches` over the whole DOM, and each tile
    fits its own model to the candidates that fall in it, so a correspondence that loses to a look-alike
    elsewhere in a mosaic of similar terrain still counts where it belongs."""
    f = 2 ** level
    tiles = search_tiles(dom_img.shape, dom_feats.keypoints, tile)
    c0, r0 = dom.shape[1] / 2, dom.shape[0] / 2
    lf = dom.local_frame(c0, r0)
    A = lf.jacobian(c0, r0) * f            # metres per level pixel
    hyps = []
    tol_rot = np.pi / rotations + np.radians(8)
    for view in views:
        for j in range(rotations):
            theta = 2 * np.pi * j / rotations
            t = make_template(view, camera, gf, scale_m, h_grounds[view.name], theta, A, template_max, level)
            if t is None:
                continue
            img = specify_histogram(t.image, t.valid, dom_img, dom_valid)
            ft = features_in_valid(extractor, img, t.valid, 2048)
            if len(ft) < 8:
                continue
            h, w = t.image.shape
            E = gf.matrix[:2]
            uv = np.linalg.solve(E @ t.G[:, :2], -(E @ (t.G[:, 2] - gf.origin)))
            if len(tiles) == 1:
                per_tile = [match(ft.descriptors, dom_feats.descriptors, extractor.name)]
            else:
                cand, sims = top_k_matches(ft.descriptors, dom_feats.descriptors, top_k)
                per_tile = [_best_in_tile(cand, sims, in_tile) for in_tile in tiles]
            for m in per_tile:
                if len(m) < 6:
                    continue
                src, dst = ft.keypoints[m[:, 0]], dom_feats.keypoints[m[:, 1]]
                M, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0,
                                                     maxIters=4000, confidence=0.999)
                if M is None:
                    continue
                s = float(np.hypot(M[0, 0], M[1, 0]))
                ang = float(np.arctan2(M[1, 0], M[0, 0]))   # rotation in image axes (rows down)
                n_in = int(inl.sum())
                if not (1 / scale_tolerance < s < scale_tolerance) or abs(ang) > tol_rot:
                    n_in = 0
                ctr = M @ np.array([(w - 1) / 2, (h - 1) / 2, 1.0])
                # image rotation by +ang (x right, y down) is a clockwise turn of the ground: theta decreases
                org = M @ np.array([uv[0], uv[1], 1.0])
                hyps.append(Hypothesis(view.name, float((theta - ang) % (2 * np.pi)), n_in, s,
                                       (ctr + 0.5) * f - 0.5, M, theta, origin_px=(org + 0.5) * f - 0.5))
    return hyps


def _agreeing(hyps: list[Hypothesis], i: int, radius_px: float, max_turn: float, max_scale_ratio: float):
    org = np.array([h.origin_px if h.origin_px is not None else h.center_px for h in hyps])
    th = np.array([h.theta for h in hyps])
    n = np.array([h.inliers for h in hyps])
    ls = np.log(np.array([h.scale_m if h.scale_m > 0 else 1.0 for h in hyps]))
    dth = np.abs((th - th[i] + np.pi) % (2 * np.pi) - np.pi)
    return ((np.linalg.norm(org - org[i], axis=1) < radius_px) & (dth < max_turn) & (n > 0)
            & (np.abs(ls - ls[i]) < np.log(max_scale_ratio)))


def cluster_scale(hyps: list[Hypothesis], best: Hypothesis, radius_px: float, max_turn: float = np.radians(20),
                  max_scale_ratio: float = 1.25) -> float:
    """Metres per reconstruction unit from every hypothesis that agrees with ``best`` (inlier-weighted
    geometric mean): steadier than the best one's own scale, which rests on one template at a coarse level."""
    i = next(k for k, h in enumerate(hyps) if h is best)
    near = _agreeing(hyps, i, radius_px, max_turn, max_scale_ratio)
    w = np.array([h.inliers for h in hyps], float)[near]
    ls = np.log(np.array([h.scale_m for h in hyps]))[near]
    return float(np.exp((w * ls).sum() / w.sum()))


def vote(hyps: list[Hypothesis], radius_px: float, max_turn: float = np.radians(20),
         max_scale_ratio: float = 1.25) -> np.ndarray:
    """Support of each hypothesis: the inliers of every keyframe that puts the landing ground within
    ``radius_px`` of where it does, with a heading within ``max_turn`` and a metric scale within
    ``max_scale_ratio`` of its own (each keyframe counted once, its best). Without the scale condition a
    hypothesis at a wrong trial altitude whose template happens to sit near the landing point would collect the
    support of the right ones."""
    n = np.array([h.inliers for h in hyps])
    kf = np.array([h.keyframe for h in hyps])
    out = np.zeros(len(hyps))
    for i in np.flatnonzero(n > 0):
        near = _agreeing(hyps, i, radius_px, max_turn, max_scale_ratio)
        out[i] = sum(n[near & (kf == k)].max() for k in set(kf[near]))
    return out


def best_hypothesis(hyps: list[Hypothesis], separation_px: float) -> tuple[Hypothesis | None, float, float]:
    """The best-supported hypothesis (:func:`vote`), the ratio of its support to the best support elsewhere
    (> separation_px away) and its support."""
    good = [h for h in hyps if h.inliers > 0]
    if not good:
        return None, 0.0, 0.0
    support = vote(good, separation_px / 4)
    # equal support (hypotheses that vote for each other): the one with most inliers of its own
    order = np.lexsort((-np.array([h.inliers for h in good]), -support))
    best = good[order[0]]
    org = lambda h: h.origin_px if h.origin_px is not None else h.center_px  # noqa: E731
    others = [support[k] for k in order[1:] if np.linalg.norm(org(good[k]) - org(best)) > separation_px]
    return best, float(support[order[0]] / max(others[0] if others else 1, 1)), float(support[order[0]])


def refine_on_dom(dom: Dom, view: View, camera: PinholeCamera, gf: GroundFrame, scale_m: float, h_ground: float,
                  theta: float, center_px: np.ndarray, extractor: Extractor, margin_px: int, template_max: int,
                  min_inliers: int):
    """Full-resolution homography template → DOM around a hypothesis. Returns (template, H_t2dom, inliers)."""
    lf = dom.local_frame(*center_px)
    A = lf.jacobian(*center_px)
    t = make_template(view, camera, gf, scale_m, h_ground, theta, A, template_max, 0)
    if t is None:
        return None, None, 0
    h, w = t.image.shape
    half = np.array([w, h]) / 2 + margin_px
    c0 = int(np.floor(center_px[0] - half[0]))
    r0 = int(np.floor(center_px[1] - half[1]))
    cw, rh = int(np.ceil(2 * half[0])), int(np.ceil(2 * half[1]))
    crop = dom.read(0, (c0, r0, cw, rh))
    crop_img, crop_valid = dom_to_uint8(crop)
    if crop_valid.mean() < 0.1:
        return t, None, 0
    img = specify_histogram(t.image, t.valid, crop_img, crop_valid)
    ft = features_in_valid(extractor, img, t.valid, 4096)
    per = max(int(4096 * crop_img.size / max(img.size, 1)), 1024)
    fd = tile_features(crop_img, crop_valid, extractor, int(per / max(crop_img.size / 1e6, 1e-6)))
    m = extractor.match_pair(ft, fd, img.shape[::-1], crop_img.shape[::-1])
    if len(m) < min_inliers:
        return t, None, 0
    src, dst = ft.keypoints[m[:, 0]], fd.keypoints[m[:, 1]] + [c0, r0]
    # the template is already orthorectified into DOM geometry: an affine model is enough and far more robust
    # than a homography when matches are few
    A2, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.5, maxIters=5000,
                                    confidence=0.999)
    if A2 is None:
        return t, None, 0
    H = np.vstack([A2, [0.0, 0.0, 1.0]])
    n_in = int(mask.sum())
    # sanity: the homography must be close to a translation (scale 1, no rotation) in DOM geometry
    J = H[:2, :2] / H[2, 2]
    sv = np.linalg.svd(J, compute_uv=False)
    if n_in < min_inliers or not (0.7 < sv[1] and sv[0] < 1.4):
        return t, None, n_in
    return t, H, n_in


def no_overlap_error(n_in: int, ratio: float | None = None, unconfirmed: str | None = None) -> InputError:
    if unconfirmed:
        why = f" ({ratio:.1f}× the best elsewhere) {unconfirmed}" if ratio is not None else f" {unconfirmed}"
    else:
        why = "" if ratio is None else f", only {ratio:.1f}× the best elsewhere"
    return InputError(f"the descent frames do not overlap the DOM (best map match: {n_in} consistent features{why})")
