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
from selenite.locate.search import shrink_matrix

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


def _best_shrink(other: Features, image: tuple[np.ndarray, float], extractor: Extractor, size: tuple[int, int],
                 min_inliers: int, scales: tuple[float, ...], shrunk_second: bool):
    """The shrink of a frame (``image``: the frame at its features' size and that size's factor to full size)
    whose features best match ``other`` under the homography check: (inliers, scale, its features in full-size
    pixels, matches, homography), or None. Matches index (other, shrunk) when ``shrunk_second``, else the
    reverse."""
    img, q = image
    best = None
    for sc in scales:
        dsize = (max(int(round(img.shape[1] * sc)), 16), max(int(round(img.shape[0] * sc)), 16))
        small = cv2.resize(img, dsize, interpolation=cv2.INTER_AREA)
        f = extractor(small).scaled(q * img.shape[1] / small.shape[1])
        if len(f) < 8:
            continue
        a, b = (other, f) if shrunk_second else (f, other)
        m = extractor.match_pair(a, b, size, size)
        H, n_in = _homography_check(a.keypoints[m[:, 0]], b.keypoints[m[:, 1]], min_inliers)
        if H is not None and (best is None or n_in > best[0]):
            best = (n_in, sc, f, m, H)
    return best


def _append_features(feats: list[Features], k: int, f: Features) -> int:
    """Append ``f`` to frame k's features (its own keep their indices); returns the index of the first appended."""
    old = feats[k]
    feats[k] = Features(np.concatenate([old.keypoints, f.keypoints]),
                        np.concatenate([old.descriptors, f.descriptors.astype(old.descriptors.dtype)]),
                        np.concatenate([old.scores, f.scores]))
    return len(old)


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
    extra: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, int]] = {}
    for n, pm in enumerate(pair_matches):
        if pm.inliers >= min_inliers or pm.j - pm.i > max_gap:
            continue
        best = None
        for shrink_j in (True, False):                 # descending: the later frame is magnified; rising: the earlier
            got = _best_shrink(feats[pm.i] if shrink_j else feats[pm.j], load_image(pm.j if shrink_j else pm.i),
                               extractor, size, min_inliers, scales, shrunk_second=shrink_j)
            if got is not None and (best is None or got[0] > best[0]):
                best = (*got, shrink_j)
        if best is None:
            continue
        n_in, sc, f, m, H, shrink_j = best
        k_big = pm.j if shrink_j else pm.i
        base = _append_features(feats, k_big, f)
        m = m.copy()
        m[:, 1 if shrink_j else 0] += base
        pair_matches[n] = PairMatch(pm.i, pm.j, m, H, n_in)
        bridged.append({"i": pm.i, "j": pm.j, "shrunk": "later" if shrink_j else "earlier", "scale": sc,
                        "inliers_before": pm.inliers, "inliers": n_in})
        log.info("pair %d-%d bridged at scale %.2f: %d → %d inliers", pm.i, pm.j, sc, pm.inliers, n_in)
        if shrink_j:
            bridged.extend(_carry_forward(feats, pair_matches, load_image, extractor, size, min_inliers, scales,
                                          pm.j, base, base + len(f), extra))
    # the carried matches join their pairs' own (a pair that had failed takes the carried homography)
    for n, pm in enumerate(pair_matches):
        if (pm.i, pm.j) in extra:
            m, H, n_in = extra[(pm.i, pm.j)]
            ok = pm.H is not None and pm.inliers >= min_inliers
            own = pm.matches if ok else np.zeros((0, 2), m.dtype)
            pair_matches[n] = PairMatch(pm.i, pm.j, np.concatenate([own.astype(m.dtype), m]), pm.H if ok else H,
                                        max(pm.inliers if ok else 0, n_in))
    return bridged


def _carry_forward(feats: list[Features], pair_matches: list[PairMatch], load_image, extractor: Extractor,
                   size: tuple[int, int], min_inliers: int, scales: tuple[float, ...], k: int, start: int, end: int,
                   extra: dict, max_steps: int = 8) -> list[dict]:
    """Continue a bridge down the sequence. Frame ``k``'s appended features ``start:end`` (from its shrunk copy)
    carry the tracks of the frames above; its own features do not (they matched nothing above across the gap).
    So the appended ones are matched, in turn, to shrunk copies of the next frames (k+1, k+2, … while a shrink
    ties them), each new set appended to its frame and its matches kept in ``extra`` for the sequential pair (they
    join the pair's own at the end): the frames below a scale gap then see the 3-D points of the frames above it,
    and structure from motion can register them."""
    pos = {(pm.i, pm.j): n for n, pm in enumerate(pair_matches)}
    out = []
    for _ in range(max_steps):
        nxt = k + 1
        if nxt >= len(feats) or (k, nxt) not in pos:
            break
        a = Features(feats[k].keypoints[start:end], feats[k].descriptors[start:end], feats[k].scores[start:end])
        best = _best_shrink(a, load_image(nxt), extractor, size, min_inliers, scales, shrunk_second=True)
        if best is None:
            break
        n_in, sc, f, m, H = best
        base = _append_features(feats, nxt, f)
        m = m + np.array([start, base])
        if (k, nxt) in extra:
            m0, H0, n0 = extra[(k, nxt)]
            m, H, n_in = np.concatenate([m0, m]), H0, n0 + n_in
        extra[(k, nxt)] = (m, H, n_in)
        out.append({"i": k, "j": nxt, "shrunk": "carried", "scale": sc,
                    "inliers_before": pair_matches[pos[(k, nxt)]].inliers, "inliers": int(best[0])})
        log.info("bridge carried %d-%d at scale %.2f: %d inliers", k, nxt, sc, n_in)
        k, start, end = nxt, base, base + len(f)
    return out


def _apply_h(H: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.c_[p, np.ones(len(p))] @ H.T
    return q[:, :2] / q[:, 2:]


def lk_refine(img_a: np.ndarray, img_b: np.ndarray, pa: np.ndarray, pb: np.ndarray, H: np.ndarray | None = None,
              win: int = 15, max_move: float = 3.0, max_fb: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel positions in ``img_b`` of the points ``pa`` of ``img_a`` (pixel centres at integers), starting
    from their matches ``pb``: Lucas–Kanade on ``img_b`` warped into ``img_a``'s frame by the homography ``H``
    (a → b; None: the images already share their geometry), so that only the small shifts the homography leaves
    (relief parallax, a detector's placement) are left to the translational tracker. A point is kept when the
    tracker converges both ways, comes back to within ``max_fb`` px and moved at most ``max_move`` px; its window
    must lie on ``img_b``. Returns the refined ``pb`` and the mask of points kept.

    Learned detectors place a point only to the pixel of their grid (XFeat on two frames of a drape descent:
    1.4–1.7 px RMS against the true correspondence); the tracker on the warped image places it to about 0.1 px
    (median, same frames)."""
    h, w = img_a.shape
    if H is None:
        warped, valid, init = img_b, np.ones(img_b.shape, np.uint8), pb
    else:
        zoom = float(np.sqrt(abs(np.linalg.det(H[:2, :2] / H[2, 2]))))
        # img_b sampled every ``zoom`` pixels: low-pass it first so the warp does not alias
        src = cv2.GaussianBlur(img_b, (0, 0), 0.5 * np.sqrt(zoom ** 2 - 1)) if zoom > 1.2 else img_b
        warped = cv2.warpPerspective(src, H, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        valid = cv2.warpPerspective(np.ones(img_b.shape, np.uint8), H, (w, h),
                                    flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
        init = _apply_h(np.linalg.inv(H), pb)
    valid = cv2.erode(valid, np.ones((win + 2, win + 2), np.uint8))
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 0.005)
    a32, i32 = pa.astype(np.float32).reshape(-1, 1, 2), init.astype(np.float32).reshape(-1, 1, 2)
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(img_a, warped, a32, i32.copy(), winSize=(win, win), maxLevel=1,
                                           criteria=crit, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(warped, img_a, fwd, a32.copy(), winSize=(win, win), maxLevel=1,
                                            criteria=crit, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    fwd, back = fwd.reshape(-1, 2).astype(float), back.reshape(-1, 2)
    ij = np.round(fwd).astype(int)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
    on = np.zeros(len(fwd), bool)
    on[inside] = valid[ij[inside, 1], ij[inside, 0]] > 0
    ok = ((st1.ravel() == 1) & (st2.ravel() == 1) & on & (np.linalg.norm(back - pa, axis=1) < max_fb)
          & (np.linalg.norm(fwd - init, axis=1) < max_move))
    out = pb.astype(float).copy()
    out[ok] = fwd[ok] if H is None else _apply_h(H, fwd[ok])
    return out, ok


class _Tracks:
    """Union–find over (frame, keypoint) observations."""

    def __init__(self):
        self.parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, x, y):
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)


def _pair_homography(H_of: dict, i: int, j: int) -> np.ndarray | None:
    """Homography frame i → frame j (full-size pixels): the pair's own, else composed along the checked pairs
    in between (shortest steps first)."""
    if (i, j) in H_of:
        return H_of[(i, j)]
    H, k = np.eye(3), i
    while k < j:
        step = next((m for m in range(j, k, -1) if (k, m) in H_of), None)
        if step is None:
            return None
        H, k = H_of[(k, step)] @ H, step
    return H / H[2, 2]


def refine_keypoints(feats: list[Features], pair_matches: list[PairMatch], load_image, min_inliers: int,
                     max_zoom: float = 3.0, max_residual: float = 4.0,
                     keep_refined: float = 0.5, cache_frames: int = 24) -> tuple[list[Features], list[PairMatch], dict]:
    """Keypoints moved onto one another along every track, so that structure from motion sees each ground point
    at the same place in every frame.

    Tracks are the connected sets of matched keypoints (homography inliers, within ``max_residual`` px, of the
    pairs that passed the check). In each, the observation in the earliest frame is the reference; in every other
    frame the track's keypoint nearest to where the homography between the two frames (the pair's own, else
    composed along the pairs in between) carries the reference is tracked from it by :func:`lk_refine`, when the
    frames differ in scale by less than ``max_zoom``. A pair then keeps only the matches inside refined tracks
    when they are at least ``keep_refined`` of its homography inliers (and ``min_inliers``), so the
    reconstruction builds the same tracks; otherwise (blur, a scale gap the tracker cannot cross) it keeps its
    detector matches too, less any that join a refined track to another: a frame is never left with fewer
    constraints than without refinement.

    Why: a learned detector places a point only to its grid, and differently at another scale; matching frames
    several steps apart then joins into one track detections up to a few pixels apart (a drape descent: 2.3 px
    median between observations seven frames apart, measured against the true geometry), and the bundle
    adjustment trades camera tilt against position to absorb them. ``load_image(k)`` gives frame k at the size
    its features were found on (8 bit) and that size's factor to full size; ``feats`` hold full-size pixels.
    Returns new features (descriptors unchanged), the filtered pair matches and counts."""
    from collections import OrderedDict

    good = [pm for pm in pair_matches if pm.H is not None and pm.inliers >= min_inliers and len(pm.matches)]
    uf = _Tracks()
    for pm in good:
        # only the pair's homography inliers (the matches kept for it are all mutual nearest neighbours)
        pa, pb = feats[pm.i].keypoints[pm.matches[:, 0]], feats[pm.j].keypoints[pm.matches[:, 1]]
        near = np.linalg.norm(_apply_h(pm.H, pa) - pb, axis=1) < max_residual
        for a, b in pm.matches[near]:
            uf.union((pm.i, int(a)), (pm.j, int(b)))
    comps: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for x in list(uf.parent):
        comps.setdefault(uf.find(x), []).append(x)
    H_of = {(pm.i, pm.j): pm.H for pm in good}
    H_cache: dict[tuple[int, int], np.ndarray | None] = {}

    def hom(i, j):
        if (i, j) not in H_cache:
            H_cache[(i, j)] = _pair_homography(H_of, i, j)
        return H_cache[(i, j)]

    # per (reference frame, other frame): (reference keypoint, candidate keypoint, track id)
    work: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for tid, obs in enumerate(comps.values()):
        ref = min(obs)
        by_frame: dict[int, list[int]] = {}
        for f, k in obs:
            if f != ref[0]:
                by_frame.setdefault(f, []).append(k)
        for f, ks in by_frame.items():
            if len(ks) > 1:
                H = hom(ref[0], f)
                if H is None:
                    continue
                to = _apply_h(H, feats[ref[0]].keypoints[[ref[1]]])[0]
                ks = [min(ks, key=lambda k: float(np.linalg.norm(feats[f].keypoints[k] - to)))]
            work.setdefault((ref[0], f), []).append((ref[1], ks[0], tid))
    out = [f.keypoints.astype(float).copy() for f in feats]
    track_of: list[dict[int, int]] = [{} for _ in feats]
    cache: OrderedDict[int, tuple[np.ndarray, float]] = OrderedDict()

    def image(k):
        if k in cache:
            cache.move_to_end(k)
        else:
            cache[k] = load_image(k)
            if len(cache) > cache_frames:
                cache.popitem(last=False)
        return cache[k]

    tried = kept = 0
    moves = []
    for (i, j), abt in sorted(work.items()):
        H_full = hom(i, j)
        if H_full is None:
            continue
        zoom = float(np.sqrt(abs(np.linalg.det(H_full[:2, :2] / H_full[2, 2]))))
        if not 1 / max_zoom < zoom < max_zoom:
            continue
        abt = np.array(abt)
        (img_i, qi), (img_j, qj) = image(i), image(j)
        Si, Sj = shrink_matrix(qi), shrink_matrix(qj)
        H = Sj @ H_full @ np.linalg.inv(Si)                 # small i → small j
        pa = _apply_h(Si, feats[i].keypoints[abt[:, 0]])
        pb = _apply_h(Sj, feats[j].keypoints[abt[:, 1]])
        pb_new, ok = lk_refine(img_i, img_j, pa, pb, H)
        tried += len(abt)
        kept += int(ok.sum())
        moves.append(np.linalg.norm(pb_new[ok] - pb[ok], axis=1) * qj)
        out[j][abt[ok, 1]] = _apply_h(np.linalg.inv(Sj), pb_new[ok])
        for a, b, tid in abt[ok]:
            track_of[i][int(a)] = int(tid)
            track_of[j][int(b)] = int(tid)
    # matches touching a refined observation must stay inside its track
    dropped = 0
    new_pms = []
    for pm in pair_matches:
        if not len(pm.matches):
            new_pms.append(pm)
            continue
        ta = np.array([track_of[pm.i].get(int(a), -1) for a in pm.matches[:, 0]])
        tb = np.array([track_of[pm.j].get(int(b), -1) for b in pm.matches[:, 1]])
        same = (ta == tb) & (ta >= 0)
        # a pair with enough refined tracks gives only those; another (a scale gap the tracker cannot cross)
        # keeps its detector matches, less those that would join a refined track to another
        keep = same if same.sum() >= max(min_inliers, keep_refined * pm.inliers) else same | ((ta < 0) & (tb < 0))
        dropped += int((~keep).sum())
        new_pms.append(PairMatch(pm.i, pm.j, pm.matches[keep], pm.H, pm.inliers))
    m = np.concatenate(moves) if moves else np.zeros(0)
    stats = {"observations": tried, "refined": kept, "matches_dropped": dropped,
             "median_move_px": float(np.median(m)) if len(m) else 0.0}
    log.info("keypoints refined along tracks: %d of %d (median move %.2f px); %d matches left their track",
             kept, tried, stats["median_move_px"], dropped)
    return [Features(k, f.descriptors, f.scores) for k, f in zip(out, feats, strict=True)], new_pms, stats


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
    # fixed RANSAC seeds: COLMAP's default (-1) seeds from the clock, and two runs on the same input then differ
    verify = pycolmap.TwoViewGeometryOptions()
    verify.ransac.random_seed = seed
    pycolmap.verify_matches(str(db_path), str(pairs_path), options=verify)
    opts = pycolmap.IncrementalPipelineOptions()
    opts.ba_refine_focal_length = refine_intrinsics
    opts.ba_refine_principal_point = False
    opts.ba_refine_extra_params = refine_intrinsics
    opts.extract_colors = False
    opts.num_threads = threads
    opts.random_seed = seed
    opts.mapper.random_seed = seed
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
