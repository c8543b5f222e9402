"""The numerical steps of ``selenite locate`` between reconstruction and outputs (see pipeline.py)."""

from __future__ import annotations

import logging
import time

import numpy as np

from selenite.errors import RunError
from selenite.geo.camera import PinholeCamera
from selenite.geo.crs import normalize_lon
from selenite.locate.config import LocateConfig
from selenite.locate.dom import Dom, LocalFrame
from selenite.locate.features import Features, make_extractor, resize_for_matching
from selenite.locate.frames import read_frame, to_uint8
from selenite.locate.geometry import (
    GroundFrame,
    estimate_ground_frame,
    fit_line,
    frame_altitudes,
    similarity_2d,
)
from selenite.locate.search import (
    View,
    best_hypothesis,
    choose_level,
    cluster_scale,
    coarse_search,
    footprint_ground,
    index_dom,
    make_template,
    no_overlap_error,
    refine_on_dom,
    scaled_K,
)
from selenite.locate.sfm import points_from_reconstruction, poses_from_reconstruction

log = logging.getLogger(__name__)


def _gf(geo: dict) -> GroundFrame:
    g = geo["ground_frame"]
    return GroundFrame(np.array(g["origin"]), np.array(g["e1"]), np.array(g["e2"]), np.array(g["u"]))


def _views(geo: dict) -> dict[str, View]:
    return {f["name"]: View(f["name"], f["index"], np.array(f["R"]), np.array(f["t"])) for f in geo["frames"]}


# -----------------------------------------------------------------------------------------------------------
def geometry(rec, names: list[str], finfo: dict, camera: PinholeCamera, dom: Dom, cfg: LocateConfig) -> dict:
    """Local vertical, ground frame, per-frame altitude (reconstruction units and metres when scaled)."""
    poses = poses_from_reconstruction(rec)
    reg = [n for n in names if n in poses]
    if len(reg) < 3:
        raise RunError(f"only {len(reg)} frames could be reconstructed; the frames do not overlap enough")
    xyz, _, _ = points_from_reconstruction(rec)
    centers = np.array([-poses[n][0].T @ poses[n][1] for n in reg])
    gf, diag = estimate_ground_frame(centers, xyz, cfg.vertical_frames)
    alt = frame_altitudes(gf, centers, xyz)
    loc = gf.to_local(xyz)
    ground = [float(c[2] - a) for c, a in zip(gf.to_local(centers), alt, strict=True)]
    scale = None
    first_name = names[0]
    if cfg.start_altitude_m is not None:
        if first_name not in poses:
            raise RunError(f"the first frame {first_name} could not be reconstructed, so --start-altitude cannot "
                           "scale the descent; run without it to take the scale from the map")
        scale = cfg.start_altitude_m / alt[0]
    index = {paths_name: k for k, paths_name in enumerate(f["file"] for f in finfo["frames"])}
    frames = []
    for n, c, a, g in zip(reg, centers, alt, ground, strict=True):
        R, t = poses[n]
        axis = R[2] @ gf.matrix.T
        tilt = float(np.degrees(np.arccos(np.clip(-axis[2], -1, 1))))
        frames.append({"name": n, "index": index[n], "R": R.tolist(), "t": t.tolist(), "center": c.tolist(),
                       "altitude_units": float(a), "ground_h_units": g, "tilt_deg": tilt})
    q = max(camera.width, camera.height) / min(max(camera.width, camera.height), cfg.max_side)
    return {"ground_frame": {"origin": gf.origin.tolist(), "e1": gf.e1.tolist(), "e2": gf.e2.tolist(),
                             "u": gf.u.tolist()},
            "frames": frames, "scale_m": scale, "dom_px_m": dom.pixel_size_m(), "work_scale": q,
            "points_height_spread_units": float(np.ptp(loc[:, 2])) if len(loc) else 0.0,
            "registered": len(reg), "sampled": len(names), **diag}


def _gsd(frame: dict, scale: float, camera: PinholeCamera) -> float:
    """Ground sample distance (m/px) at the image centre, geometric mean of the two directions."""
    rng = frame["altitude_units"] * scale / max(np.cos(np.radians(frame["tilt_deg"])), 0.2)
    return float(rng / camera.fx / np.sqrt(max(np.cos(np.radians(frame["tilt_deg"])), 0.2)))


def _choose_keyframes(geo: dict, scale: float, camera: PinholeCamera, n: int) -> list[dict]:
    px = geo["dom_px_m"]
    ranked = sorted(geo["frames"], key=lambda f: abs(np.log(_gsd(f, scale, camera) / px)))
    return ranked[:n]


def _load_view(view: View, paths) -> View:
    """The view with its image read (once)."""
    if view.image is None:
        view.image = to_uint8(read_frame(paths[view.index]))
    return view


# -----------------------------------------------------------------------------------------------------------
def search(rec, geo: dict, paths, camera: PinholeCamera, dom: Dom, cfg: LocateConfig, notify) -> dict:
    """Find the descent on the DOM and register the keyframes at full resolution."""
    t0 = time.perf_counter()
    gf = _gf(geo)
    views = _views(geo)
    hg = {f["name"]: f["ground_h_units"] for f in geo["frames"]}
    ext = make_extractor(cfg.features, cfg.max_keypoints, cfg.threads)
    px = geo["dom_px_m"]
    if geo["scale_m"] is not None:
        # the keyframes' own footprint sets how far the DOM may be decimated and keep the templates big enough
        gsd = min(_gsd(f, geo["scale_m"], camera) for f in _choose_keyframes(geo, geo["scale_m"], camera,
                                                                            cfg.keyframes))
    else:
        gsd = px     # keyframes are chosen at each trial scale for a GSD close to the DOM's
    level = choose_level(dom, min(camera.width, camera.height) * gsd, cfg.search_max_pixels, cfg.template_min_side)
    notify("map search", 0.0)
    dom_img, dom_valid, dom_feats = index_dom(dom, level, ext, cfg.dom_keypoints_per_mpx)
    t_index = time.perf_counter() - t0
    first_alt = geo["frames"][0]["altitude_units"]
    if geo["scale_m"] is not None:
        scales = [geo["scale_m"]]
        per_scale = cfg.keyframes
    else:
        lo, hi = cfg.altitude_search_m
        alts = np.geomspace(lo, hi, max(int(np.ceil(np.log(hi / lo) / np.log(1.3))) + 1, 2))
        scales = list(alts / first_alt)
        per_scale = 2
    hyps = []
    for k, s in enumerate(scales):
        kfs = _choose_keyframes(geo, s, camera, per_scale)
        kviews = [_load_view(views[f["name"]], paths) for f in kfs]
        for h in coarse_search(dom, dom_img, dom_valid, dom_feats, level, kviews, camera, gf, s, hg,
                               cfg.rotations, ext, tile=cfg.search_tile):
            h.scale_m = s * h.scale
            hyps.append(h)
        notify("map search", (k + 1) / (len(scales) + 1))
    sep = min(camera.width, camera.height) / 2
    best, ratio, support = best_hypothesis(hyps, sep)
    if best is None or support < cfg.min_map_inliers:
        raise no_overlap_error(int(support))
    if ratio < cfg.min_peak_ratio:
        # no place on the map stands out: a chance match, not a fix (a mismatched pair measured 12 and 1.2×)
        raise no_overlap_error(int(support), ratio)
    scale_m = cluster_scale([h for h in hyps if h.inliers > 0], best, sep / 4) if geo["scale_m"] is None \
        else float(best.scale_m)
    lf = dom.local_frame(*best.center_px)
    # an initial alignment ground frame → local metres from the best hypothesis' template
    A = lf.jacobian(*best.center_px) * 2 ** level
    bview = views[best.keyframe]
    theta_grid = float(best.theta_grid)
    t = make_template(bview, camera, gf, float(best.scale_m / best.scale), hg[best.keyframe], theta_grid, A,
                      1024, level)
    ab, en = _template_correspondences(t, gf, best.A_t2d, level, lf)
    s0, phi0, t0v = similarity_2d(ab, en)
    # refine every keyframe at full resolution
    kfs = _choose_keyframes(geo, scale_m, camera, cfg.keyframes)
    refined = []
    for f in kfs:
        v = _load_view(views[f["name"]], paths)
        centre_ab = np.median(footprint_ground(v, camera, gf, hg[v.name]), axis=0)
        e, n = s0 * _rot(phi0) @ centre_ab + t0v
        cpx = lf.local_to_pixel(np.array([e]), np.array([n]))[0]
        theta = phi0  # ground frame → (east, north) rotation
        tm, H, n_in = refine_on_dom(dom, v, camera, gf, scale_m, hg[v.name], theta, cpx, ext,
                                    margin_px=int(16 + 4 * 2 ** level), template_max=4096,
                                    min_inliers=cfg.min_map_inliers)
        refined.append({"name": v.name, "index": v.index, "inliers": n_in, "gsd_m": _gsd(f, scale_m, camera),
                        "H_t2dom": None if H is None else H.tolist(),
                        "H_t2f": None if tm is None else tm.H_t2f.tolist(),
                        "G": None if tm is None else tm.G.tolist(), "theta": theta})
        notify("map search", 1.0 - 0.5 / (len(kfs) + 1))
    good = [r for r in refined if r["H_t2dom"] is not None]
    if not good:
        raise no_overlap_error(max((r["inliers"] for r in refined), default=0))
    bestk = max(good, key=lambda r: r["inliers"])
    # alignment from the best full-resolution registration
    tm_G = np.array(bestk["G"])
    ab, en = _homography_correspondences(tm_G, np.array(bestk["H_t2dom"]), gf, lf, views[bestk["name"]], camera,
                                         hg[bestk["name"]])
    s1, phi1, t1 = similarity_2d(ab, en)
    notify("map search", 1.0)
    top = sorted(hyps, key=lambda h: -h.inliers)[:10]
    return {
        "level": level, "dom_px_m": px, "lon0": lf.lon0, "lat0": lf.lat0, "peak_ratio": ratio,
        "dom_keypoints": len(dom_feats), "scale_candidates": len(scales),
        "best": {"keyframe": best.keyframe, "inliers": best.inliers, "support": support,
                 "theta_deg": float(np.degrees(best.theta)),
                 "center_px": best.center_px.tolist(), "scale": best.scale},
        "hypotheses": [{"keyframe": h.keyframe, "inliers": h.inliers, "theta_deg": float(np.degrees(h.theta)),
                        "center_px": h.center_px.tolist(), "scale_m": float(h.scale_m)} for h in top],
        "keyframes": refined, "best_keyframe": bestk["name"], "scale_m": float(s1),
        "alignment": {"scale": float(s1), "phi": float(phi1), "t": [float(t1[0]), float(t1[1])]},
        "seconds": {"index": t_index, "total": time.perf_counter() - t0},
    }


def _rot(a: float) -> np.ndarray:
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def _template_correspondences(t, gf: GroundFrame, A_t2d: np.ndarray, level: int, lf: LocalFrame):
    h, w = t.image.shape
    cc, rr = np.meshgrid(np.linspace(0, w - 1, 9), np.linspace(0, h - 1, 9))
    pts = np.column_stack([cc.ravel(), rr.ravel(), np.ones(cc.size)])
    X = (t.G @ pts.T).T
    ab = gf.to_local(X)[:, :2]
    dl = (A_t2d @ pts.T).T                       # DOM level pixels
    d0 = (dl + 0.5) * 2 ** level - 0.5
    en = lf.pixel_to_local(d0[:, 0], d0[:, 1])
    return ab, en


def _homography_correspondences(G: np.ndarray, H: np.ndarray, gf: GroundFrame, lf: LocalFrame, view, camera, h):
    ab_fp = footprint_ground(view, camera, gf, h)
    # template pixels of footprint points: invert G restricted to the plane (3x3, homogeneous)
    X = gf.to_world(np.column_stack([ab_fp, np.full(len(ab_fp), h)]))
    B = G[:, :2]
    cr = (np.linalg.pinv(B) @ (X - G[:, 2]).T).T
    tp = np.column_stack([cr, np.ones(len(cr))])
    d = (H @ tp.T).T
    d = d[:, :2] / d[:, 2:3]
    en = lf.pixel_to_local(d[:, 0], d[:, 1])
    return ab_fp, en


# -----------------------------------------------------------------------------------------------------------
def _apply_h(H: np.ndarray, p: np.ndarray) -> np.ndarray:
    v = H @ np.array([p[0], p[1], 1.0])
    return v[:2] / v[2]


def coarse(geo: dict, s: dict, pairs: dict, names: list[str], camera: PinholeCamera, dom: Dom) -> dict:
    """The published coarse fix: the last clear frame's centre pixel carried by homographies to the keyframe
    that best matched the DOM, then onto the DOM. When no chain of pairwise homographies reaches that keyframe,
    the best-matched keyframe that one reaches is used; when none is reachable the result holds only ``error``
    (the coarse fix is a baseline: the fine fix does not depend on it)."""
    import heapq

    pos = {n: k for k, n in enumerate(names)}
    start = len(names) - 1
    edges: dict[int, list[tuple[int, np.ndarray, float]]] = {}
    for i, j, n_in, H in zip(pairs["i"], pairs["j"], pairs["inliers"], pairs["H"], strict=True):
        if not np.isfinite(H).all():
            continue
        cost = 1.0 + 50.0 / max(n_in, 1)
        edges.setdefault(int(i), []).append((int(j), H, cost))
        edges.setdefault(int(j), []).append((int(i), np.linalg.inv(H), cost))
    dist = {start: 0.0}
    prev: dict[int, tuple[int, np.ndarray]] = {}
    heap = [(0.0, start)]
    while heap:
        d, node = heapq.heappop(heap)
        if d > dist.get(node, np.inf):
            continue
        for nxt, H, c in edges.get(node, []):
            if d + c < dist.get(nxt, np.inf):
                dist[nxt] = d + c
                prev[nxt] = (node, H)
                heapq.heappush(heap, (d + c, nxt))
    registered = sorted((k for k in s["keyframes"] if k["H_t2dom"] is not None), key=lambda k: -k["inliers"])
    reachable = [k for k in registered if pos[k["name"]] in dist]
    if not reachable:
        return {"error": "no chain of matched frames links the last clear frame to a keyframe registered on the DOM"}

    def through(kf):
        chain, node = [], pos[kf["name"]]
        while node != start:
            p_, H = prev[node]
            chain.append(H)
            node = p_
        p = np.array([camera.cx, camera.cy])
        for H in reversed(chain):
            p = _apply_h(H, p)
        tp = _apply_h(np.linalg.inv(np.array(kf["H_t2f"])), p)
        return _apply_h(np.array(kf["H_t2dom"]), tp), len(chain)

    fixes = [through(k) for k in reachable]
    kf = reachable[0]
    d, chain_length = fixes[0]
    # σ: the scatter of the same point carried through every other registered keyframe (each has its own chain
    # and its own registration); unknown with a single keyframe
    px_m = dom.pixel_size_m(d[0], d[1])
    pts = np.array([f[0] for f in fixes])
    sigma_px = float(np.sqrt(np.mean(np.sum((pts[1:] - d) ** 2, axis=1)))) if len(pts) > 1 else None
    x, y = dom.info.pixel_to_map(d[0], d[1])
    out = {"dom_col": float(d[0]), "dom_row": float(d[1]), "x": float(x), "y": float(y),
           "chain_length": chain_length, "keyframe": kf["name"], "start_frame": names[start],
           "keyframes_reached": len(reachable),
           "sigma_m": None if sigma_px is None else max(sigma_px, 1.0) * px_m,
           "sigma_basis": ("RMS distance of the fixes through the other registered keyframes (at least 1 DOM px)"
                           if sigma_px is not None else "unknown: a single keyframe reached")}
    if dom.georeferenced:
        lon, lat = dom.info.pixel_to_lonlat(np.array([d[0]]), np.array([d[1]]))
        out.update({"lon": normalize_lon(float(lon[0]), east_360=True), "lat": float(lat[0])})
    return out


# -----------------------------------------------------------------------------------------------------------
def landing_from(centers_en_z: np.ndarray, points: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Landing (E, N) where the final descent line meets the ground, and the ground height there."""
    tail = centers_en_z[-k:]
    c, d = fit_line(tail)
    if d[2] > 0:
        d = -d
    near = points[np.hypot(points[:, 0] - tail[-1, 0], points[:, 1] - tail[-1, 1]) <
                  max(0.3 * (tail[-1, 2] - np.median(points[:, 2])), 1e-6)]
    zg = float(np.median(near[:, 2])) if len(near) >= 5 else float(np.median(points[:, 2]))
    if abs(d[2]) < 1e-6:
        return tail[-1, :2].copy(), zg
    lam = (zg - c[2]) / d[2]
    return (c + lam * d)[:2], zg


def fine(rec, geo: dict, s: dict, feats: dict, paths, finfo: dict, camera: PinholeCamera, dom: Dom,
         cfg: LocateConfig, notify):
    """Ties to the DOM, robust alignment, bundle adjustment with the DOM; landing point and its σ."""
    from selenite.locate.fine import HeightField, MapAlignment, bundle_adjust_with_dom, fit_alignment, ties_for_view

    gf = _gf(geo)
    lf = LocalFrame(dom, s["lon0"], s["lat0"])
    px = s["dom_px_m"]
    a0 = s["alignment"]
    align = MapAlignment(a0["scale"], a0["phi"], np.array(a0["t"]), np.zeros(2))
    xyz, ids, obs = points_from_reconstruction(rec)
    hf = HeightField(gf.to_local(xyz))
    ext = make_extractor(cfg.features, cfg.max_keypoints, cfg.threads)
    lo, hi = cfg.tie_gsd_ratio
    cands = []
    for f in geo["frames"]:
        q = feats[f["name"]][1]
        ratio = _gsd(f, align.scale, camera) * q / px
        if lo <= ratio <= hi:
            cands.append((abs(np.log(ratio)), f))
    cands = [f for _, f in sorted(cands, key=lambda c: c[0])][: cfg.tie_frames]
    if not cands:
        raise RunError("no reconstructed frame has a resolution close enough to the DOM's to tie them")
    views = _views(geo)
    smalls, kps = {}, {}
    images = {im.name: im for im in rec.images.values()}
    for f in cands:
        small, q = resize_for_matching(to_uint8(read_frame(paths[f["index"]])), cfg.max_side)
        smalls[f["name"]] = (small, scaled_K(camera.K, q))
        # the keypoints where the reconstruction has them (refined along their tracks), at the matching size
        fe = feats[f["name"]][0]
        xy = np.array([p.xy for p in images[f["name"]].points2D], float).reshape(-1, 2)
        # (a frame's bridged features are appended after its own: the first len(fe) are the same keypoints)
        kps[f["name"]] = fe if len(xy) < len(fe) else Features(xy[:len(fe)] / q - 0.5, fe.descriptors, fe.scores)
    ties_per_frame = {}
    inl = np.zeros(0, bool)
    for it in range(2):
        all_ties = []
        for k, f in enumerate(cands):
            small, Ks = smalls[f["name"]]
            t = ties_for_view(views[f["name"]], small, kps[f["name"]], obs.get(f["name"], {}), Ks, dom, lf,
                              align, gf, hf, ext)
            ties_per_frame[f["name"]] = len(t)
            all_ties.extend((*tie, f["name"]) for tie in t)
            notify("fine", (it * len(cands) + k + 1) / (2 * len(cands) + 2))
        if len(all_ties) < 8:
            raise RunError(f"only {len(all_ties)} tie points between the frames and the DOM; cannot refine")
        pid = np.array([t[0] for t in all_ties])
        cr = np.array([[t[1], t[2]] for t in all_ties])
        upid, inv = np.unique(pid, return_inverse=True)
        med = np.array([np.median(cr[inv == k], axis=0) for k in range(len(upid))])
        en = lf.pixel_to_local(med[:, 0], med[:, 1])
        pos = {int(p): k for k, p in enumerate(ids)}
        abh = gf.to_local(xyz[[pos[int(p)] for p in upid]])
        align, inl = fit_alignment(abh, en, align, threshold_m=2.5 * px)
    if inl.sum() < cfg.min_map_inliers:
        raise RunError(f"only {int(inl.sum())} of {len(inl)} tie points agree on one alignment with the DOM; "
                       "cannot refine")
    pre = align.apply(abh)
    pre_res = np.linalg.norm(pre[:, :2] - en, axis=1)
    # landing from the alignment alone (before bundle adjustment), with bootstrap σ
    order = [f["name"] for f in geo["frames"]]
    cen_local = gf.to_local(np.array([f["center"] for f in geo["frames"]]))
    pts_local = gf.to_local(xyz)

    def landing_for(al: MapAlignment):
        return landing_from(al.apply(cen_local), al.apply(pts_local), cfg.vertical_frames)

    land_pre, _ = landing_for(align)
    rng = np.random.default_rng(cfg.seed)
    idx_in = np.flatnonzero(inl)
    boots = []
    for _ in range(cfg.bootstrap):
        pick = rng.choice(idx_in, len(idx_in), replace=True)
        sb, pb, tb = similarity_2d(abh[pick, :2], en[pick])
        delta = MapAlignment(sb, pb, tb, align.tilt)
        boots.append(landing_for(delta)[0])
    boots = np.array(boots)
    cov_boot = np.cov(boots.T)
    # frame jackknife: ties of one frame share that frame's pose error, which the bootstrap over points ignores
    tie_frame = np.array([t[3] for t in all_ties])
    jack = []
    frames_with_ties = sorted(set(tie_frame))
    for fname in frames_with_ties if len(frames_with_ties) >= 3 else []:
        keep_pid = np.unique(pid[tie_frame != fname])
        sel = np.isin(upid, keep_pid) & inl
        if sel.sum() < 6:
            continue
        sj, pj, tj = similarity_2d(abh[sel, :2], en[sel])
        jack.append(landing_for(MapAlignment(sj, pj, tj, align.tilt))[0])
    cov_jack = np.zeros((2, 2))
    if len(jack) >= 3:
        jack = np.array(jack)
        cov_jack = (len(jack) - 1) / len(jack) * (jack - jack.mean(0)).T @ (jack - jack.mean(0))
    cov = cov_boot + cov_jack
    notify("fine", 0.95)
    # bundle adjustment with the DOM as a fixed camera
    rec_ba, dom_image_id, ba_res = bundle_adjust_with_dom(rec, gf, align, upid[inl], en[inl], px, cfg.threads)
    rec_ba.deregister_frame(rec_ba.image(dom_image_id).frame_id)
    poses = poses_from_reconstruction(rec_ba)
    reg = [n for n in order if n in poses]
    cen_m = np.array([-poses[n][0].T @ poses[n][1] for n in reg])
    xyz_m = np.array([p.xyz for p in rec_ba.points3D.values()])
    land, zg = landing_from(cen_m, xyz_m, cfg.vertical_frames)
    # direct fixes: the landing point seen in the lower frames, each registered to the DOM on its own
    (a_l, b_l), z_l = landing_from(cen_local, pts_local, cfg.vertical_frames)
    X_land = gf.to_world(np.array([[a_l, b_l, z_l]]))[0]
    fixes = direct_fixes(X_land, geo, views, paths, camera, dom, lf, align, gf, hf, ext, cfg, px)
    direct = combine_fixes(fixes, lf, px, cfg.direct_sys_rms)
    method = "bundle adjustment"
    # the landing point is carried below the lowest reconstructed frame along the final descent line; whether the
    # lander kept that slant or dropped vertically is not observed, so their difference enters σ along the track
    cov_x, extrap = extrapolation_cov(cen_m, zg, cfg.vertical_frames)
    cov = cov + cov_x
    land_ba, cov_ba = land.copy(), cov.copy()
    if direct is not None:
        method, land, cov = "direct", direct[0], direct[1] + cov_x
    notify("fine", 1.0)
    return {
        "extrapolation": extrap,
        "method": method, "landing_en": land.tolist(), "ground_z": zg,
        "landing_en_before_ba": land_pre.tolist(), "landing_en_ba": land_ba.tolist(),
        "sigma_m_ba": float(np.sqrt(np.trace(cov_ba))),
        "sigma_en": np.sqrt(np.diag(cov)).tolist(), "cov_en": cov.tolist(),
        "sigma_m": float(np.sqrt(np.trace(cov))),
        "sigma_m_bootstrap": float(np.sqrt(np.trace(cov_boot))),
        "sigma_m_frame_jackknife": float(np.sqrt(np.trace(cov_jack))),
        "ties": int(len(upid)), "tie_inliers": int(inl.sum()), "ties_per_frame": ties_per_frame,
        "tie_rms_m_before_ba": float(np.sqrt(np.mean(pre_res[inl] ** 2))),
        "tie_rms_m_after_ba": float(np.sqrt(np.mean(ba_res ** 2))),
        "alignment": {"scale_m": align.scale, "phi_deg": float(np.degrees(align.phi)), "t": align.t.tolist(),
                      "tilt_deg": np.degrees(align.tilt).tolist()},
        "lon0": s["lon0"], "lat0": s["lat0"], "dom_px_m": px,
        "direct_fixes": [vars(f) for f in fixes],
    }, rec_ba


def unrefined(rec, geo: dict, s: dict, cfg: LocateConfig, error: str):
    """When the fine step cannot tie the frames to the map: the reconstruction placed by the map search's
    alignment alone (its best keyframe's registration), so the trajectory and a landing point still come out."""
    from selenite.locate.fine import MapAlignment, to_local_metric

    a0 = s["alignment"]
    align = MapAlignment(a0["scale"], a0["phi"], np.array(a0["t"]), np.zeros(2))
    rec_m = to_local_metric(rec, _gf(geo), align)
    poses = poses_from_reconstruction(rec_m)
    reg = [f["name"] for f in geo["frames"] if f["name"] in poses]
    cen = np.array([-poses[n][0].T @ poses[n][1] for n in reg])
    xyz = np.array([p.xyz for p in rec_m.points3D.values()])
    land, zg = landing_from(cen, xyz, cfg.vertical_frames)
    return {"error": error, "ground_z": zg, "landing_en_search": land.tolist(), "lon0": s["lon0"],
            "lat0": s["lat0"], "dom_px_m": s["dom_px_m"]}, rec_m


def extrapolation_cov(centers: np.ndarray, ground_z: float, k: int) -> tuple[np.ndarray, dict]:
    """Covariance (E, N) of carrying the landing point from the lowest frame to the ground: (h · slope)² along the
    horizontal direction of the final descent line, h the lowest frame's height and slope its horizontal/vertical
    ratio (zero for a vertical terminal descent)."""
    tail = centers[-k:]
    h = float(tail[-1, 2] - ground_z)
    none = np.zeros((2, 2)), {"lowest_height": h, "slope": 0.0, "sigma": 0.0}
    if len(tail) < 2 or h <= 0:
        return none
    _, d = fit_line(tail)
    horiz = np.hypot(d[0], d[1])
    if horiz < 1e-9:
        return none
    slope = horiz / max(abs(d[2]), 1e-6)
    u = d[:2] / horiz
    sig = h * slope
    return sig ** 2 * np.outer(u, u), {"lowest_height": h, "slope": float(slope), "sigma": float(sig)}


def combine_fixes(fixes: list, lf: LocalFrame, px: float, sys_rms: float, min_frames: int = 3):
    """Landing (E, N) and its covariance from the frames' own fixes, or None with fewer than ``min_frames``.

    The median fix (robust to a frame registered wrongly). Its covariance: the scatter of the fixes (not divided
    by their number: consecutive frames share the same map features and reconstruction, so their errors are not
    independent) plus a systematic term per axis of ``sys_rms`` × the median residual of the frames' local
    registrations, which accounts for what all frames share (the same map features, the appearance change
    between the map and the descent); the factor was set on development worlds, never on benchmark cases.
    """
    if len(fixes) < min_frames:
        return None
    cr = np.array([[f.dom_col, f.dom_row] for f in fixes])
    med = np.median(cr, axis=0)
    dev = np.linalg.norm(cr - med, axis=1)
    keep = dev <= max(3.0 * 1.4826 * np.median(dev), 0.25)
    cr = cr[keep]
    med = np.median(cr, axis=0)
    en = lf.pixel_to_local(np.array([med[0]]), np.array([med[1]]))[0]
    en_all = lf.pixel_to_local(cr[:, 0], cr[:, 1])
    scatter = np.cov(en_all.T) if len(en_all) >= 3 else np.zeros((2, 2))
    rms = float(np.median([f.rms_dom_px for f, k in zip(fixes, keep, strict=True) if k]))
    cov = scatter + np.eye(2) * (sys_rms * rms * px) ** 2
    return np.asarray(en, float), cov


def direct_fixes(X: np.ndarray, geo: dict, views: dict, paths, camera: PinholeCamera, dom: Dom, lf: LocalFrame,
                 align, gf, hf, ext, cfg: LocateConfig, px: float) -> list:
    """Register every reconstructed frame that sees the point X (reconstruction units) sharply enough, on its
    own, to the DOM; each gives the DOM pixel of X. At most ``direct_max_frames`` frames, spread evenly over
    those that qualify, each cropped to ``direct_window`` pixels (after shrinking) around the point."""
    from selenite.locate.fine import locate_point_in_view

    out = []
    margin = cfg.direct_margin
    todo = []
    for f in geo["frames"]:
        ratio = _gsd(f, align.scale, camera) / px
        q = max(cfg.direct_target_ratio / ratio, 1.0)
        if min(camera.width, camera.height) / q < cfg.direct_min_side or ratio > cfg.direct_max_ratio:
            continue
        v = views[f["name"]]
        xc = v.R @ X + v.t
        if xc[2] <= 0:
            continue
        p = (camera.K @ xc)[:2] / xc[2]
        if not (margin * camera.width <= p[0] <= (1 - margin) * camera.width
                and margin * camera.height <= p[1] <= (1 - margin) * camera.height):
            continue
        todo.append((f, v, p, ratio, q))
    if len(todo) > cfg.direct_max_frames:
        todo = [todo[int(k)] for k in np.round(np.linspace(0, len(todo) - 1, cfg.direct_max_frames))]
    for f, v, p, ratio, q in todo:
        frame = to_uint8(read_frame(paths[f["index"]]))
        # the window around the point, in full-frame pixels; the intrinsics follow the crop
        half = cfg.direct_window * q / 2
        x0, y0 = int(max(np.floor(p[0] - half), 0)), int(max(np.floor(p[1] - half), 0))
        x1, y1 = int(min(np.ceil(p[0] + half), camera.width)), int(min(np.ceil(p[1] + half), camera.height))
        K = camera.K.copy()
        K[0, 2] -= x0
        K[1, 2] -= y0
        fix = locate_point_in_view(v, frame[y0:y1, x0:x1], K, p - [x0, y0], ratio, cfg.direct_target_ratio, dom,
                                   lf, align, gf, hf, ext)
        if fix is not None:
            out.append(fix)
    return out
