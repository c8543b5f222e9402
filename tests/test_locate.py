"""``selenite locate``: each step on synthetic inputs with known answers, the whole chain on a small world."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from tests.test_cli import assert_one_line_error, run_cli

from selenite.errors import InputError
from selenite.locate.frames import adaptive_sample, check_frames, detect_obscured, list_frames
from selenite.locate.geometry import (
    apply_similarity_2d,
    estimate_ground_frame,
    ransac_similarity_2d,
    similarity_2d,
)
from selenite.locate.maneuvers import detect_maneuvers


# -- frames ---------------------------------------------------------------------------------------------------
def test_frames_are_listed_in_natural_order_and_checked(tmp_path):
    for name in ("f10.png", "f2.png", "f1.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((20, 30), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_frames(tmp_path)] == ["f1.png", "f2.png", "f10.png"]
    check_frames(list_frames(tmp_path), 30, 20)
    cv2.imwrite(str(tmp_path / "f11.png"), np.zeros((21, 30), np.uint8))
    with pytest.raises(InputError, match="21 px but the camera"):
        check_frames(list_frames(tmp_path), 30, 20)
    (tmp_path / "f11.png").unlink()
    (tmp_path / "f12.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read frame"):
        check_frames(list_frames(tmp_path), 30, 20)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no frames"):
        list_frames(tmp_path / "empty")


def test_plume_frames_at_the_end_are_detected():
    rng = np.random.default_rng(0)
    stats, thumbs = [], []
    for k in range(30):
        img = rng.random((40, 40)).astype(np.float32)
        if k >= 24:                                   # veiled: blurred, brighter, less contrast
            img = cv2.GaussianBlur(img, (0, 0), 3) * 0.3 + 0.6
        lap = cv2.Laplacian(cv2.GaussianBlur(img, (0, 0), 1.0), cv2.CV_32F)
        stats.append({"index": k, "mean": float(img.mean()), "std": float(img.std()),
                      "sharpness": float(lap.std() / img.std())})
        thumbs.append(img)
    out = detect_obscured(stats, np.array(thumbs), 0.45, 0.6, 8)
    assert [s["index"] for s in out if s["obscured"]] == list(range(24, 30))


def test_ssim_sampling_skips_near_duplicates_and_keeps_changes():
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.random((64, 64)).astype(np.float32), (0, 0), 2)
    thumbs = [base + rng.normal(0, 0.001, base.shape).astype(np.float32) for _ in range(20)]
    thumbs += [cv2.GaussianBlur(rng.random((64, 64)).astype(np.float32), (0, 0), 2) for _ in range(5)]
    chosen = adaptive_sample(np.array(thumbs), list(range(25)), threshold=0.6, max_interval=8)
    assert chosen[0] == 0 and chosen[-1] == 24
    assert len([c for c in chosen if c < 20]) <= 5          # the static part is sampled sparsely
    assert all(c in chosen for c in range(20, 25))          # every changing frame is kept


def test_sampling_registers_thumbnails_so_a_pan_over_rich_texture_is_not_a_change():
    """A pan over fine texture: plain SSIM falls with a pixel of shift, the registered SSIM does not; the jump
    is then limited by the overlap."""
    from selenite.locate.frames import registered_ssim, ssim

    rng = np.random.default_rng(4)
    world = cv2.GaussianBlur(rng.random((160, 1200)).astype(np.float32), (0, 0), 0.8)
    # 160 × 120 thumbnails panning 7.3 px per frame: 8 frames = 58 px, 36 % of the width
    thumbs = np.array([cv2.warpAffine(world, np.float32([[1, 0, -7.3 * k], [0, 1, 0]]), (160, 120),
                                      flags=cv2.INTER_LINEAR) for k in range(60)])
    assert ssim(thumbs[0], thumbs[1]) < 0.5
    s, overlap = registered_ssim(thumbs[0], thumbs[4])
    assert s > 0.9 and overlap == pytest.approx(1 - 4 * 7.3 / 160, abs=0.01)
    chosen = adaptive_sample(thumbs, list(range(60)), threshold=0.55, max_interval=8, min_overlap=0.5)
    assert np.all(np.diff(chosen)[:-1] == 8)          # every jump is the longest allowed: still 64 % overlap
    tight = adaptive_sample(thumbs, list(range(60)), threshold=0.55, max_interval=8, min_overlap=0.75)
    assert np.all(np.diff(tight)[:12] == 4)           # 8 frames would overlap by 64 % only, 4 by 82 %


# -- geometry -------------------------------------------------------------------------------------------------
def test_similarity_fits_recover_a_known_transform():
    rng = np.random.default_rng(2)
    src = rng.uniform(-100, 100, (60, 2))
    dst = apply_similarity_2d(2.5, 0.7, np.array([10.0, -4.0]), src)
    s, a, t = similarity_2d(src, dst)
    assert s == pytest.approx(2.5, rel=1e-9) and a == pytest.approx(0.7, abs=1e-9)
    dst[:15] += rng.uniform(50, 80, (15, 2))                  # 25 % gross outliers
    s, a, t, inl = ransac_similarity_2d(src, dst, threshold=1.0)
    assert inl.sum() == 45 and s == pytest.approx(2.5, rel=1e-6) and np.allclose(t, [10, -4], atol=1e-4)


def test_ground_frame_from_a_vertical_final_descent():
    rng = np.random.default_rng(3)
    up = np.array([0.2, -0.3, 0.93])
    up /= np.linalg.norm(up)
    land = np.array([5.0, 2.0, 1.0])
    centers = land + np.outer(np.geomspace(60, 8, 10), up)
    e1 = np.cross(up, [1, 0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    pts = land + rng.uniform(-30, 30, (500, 1)) * e1 + rng.uniform(-30, 30, (500, 1)) * e2 + \
        rng.normal(0, 0.05, (500, 1)) * up
    gf, diag = estimate_ground_frame(centers, pts, 6)
    assert np.degrees(np.arccos(np.clip(gf.u @ up, -1, 1))) < 0.01
    assert np.linalg.norm(gf.origin - land) < 0.1


def test_maneuvers_of_a_known_trajectory():
    # approach east → west at 35° tilt, pitch-over at ~240 m, turn at 100 m, 23.5 m retreat at 134.8°, vertical
    alt = list(np.linspace(600, 250, 12)) + list(np.linspace(245, 235, 4)) + list(np.linspace(230, 100, 8))
    x = list(np.linspace(1400, 0, len(alt)))
    tilt = [35.0] * 12 + [28, 20, 12, 10] + [8.0] * 8
    ang = np.radians(270 + 134.8)
    d = np.array([np.sin(ang), np.cos(ang)])
    pos = [[xi, 0.0, a] for xi, a in zip(x, alt, strict=True)]
    for s in np.linspace(0.25, 1.0, 4):
        pos.append([23.5 * s * d[0], 23.5 * s * d[1], 100 - 25 * s])
        alt.append(100 - 25 * s)
        tilt.append(0.0)
    for a in np.geomspace(70, 9, 10):
        pos.append([pos[-1][0], pos[-1][1], a])
        alt.append(a)
        tilt.append(0.0)
    n = len(pos)
    m = detect_maneuvers(np.array(pos), np.array(alt), np.array(tilt), np.full(n, 270.0), list(range(n)))
    assert m["hover"]["altitude_m"] == pytest.approx(100, abs=1)
    assert m["retreat"]["distance_m"] == pytest.approx(23.5, abs=0.1)
    assert m["retreat"]["angle_to_track_deg"] == pytest.approx(134.8, abs=0.5)
    assert 230 <= m["pitch_over"]["altitude_m"] <= 250
    assert m["vertical_descent"]["start_altitude_m"] == pytest.approx(75, abs=1)


# -- the whole chain on a small synthetic world ----------------------------------------------------------------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from selenite.config import resolve_config
    from selenite.locate.config import LocateConfig
    from selenite.locate.config import confs as lconfs
    from selenite.locate.pipeline import run_locate
    from selenite.synth.world import WorldConfig, build_world, confs

    base = tmp_path_factory.mktemp("locate")
    world = build_world(resolve_config(WorldConfig, confs, stage="synth", preset="small"), base / "world")
    cfg = resolve_config(LocateConfig, lconfs, stage="locate", preset="default",
                         overrides={"start_altitude_m": 320.0})
    run_locate(world / "descent/frames", world / "orbital_map.tif", world / "descent/camera.json", base / "run", cfg)
    return world, base / "run"


@pytest.mark.slow
def test_small_world_is_located_sub_pixel(small_run):
    from selenite.locate.evaluate import evaluate_run

    world, run = small_run
    ev = evaluate_run(run, world / "descent/truth.json")
    # 1 m DOM pixels; the benchmark target is a median of 0.5 px over many cases, here one case must be < 1 px
    assert ev["fine"]["error_px"] < 1.0, ev
    assert ev["coarse"]["error_px"] < 15.0, ev
    assert ev["fine"]["error_px"] < ev["coarse"]["error_px"]
    # the reported fix comes from the low frames registered directly, and is no worse than the bundle adjustment's
    land = json.loads((run / "landing.json").read_text())
    assert land["method"] == "direct" and land["direct_fixes"] >= 3
    assert ev["fine"]["error_px"] < ev["bundle_adjustment"]["error_px"] + 0.25, ev
    m = ev["maneuvers"]
    assert m["pitch_over_altitude_m"]["found"] == pytest.approx(180, rel=0.1)
    assert m["hover_altitude_m"]["found"] == pytest.approx(80, rel=0.05)
    assert m["retreat_m"]["found"] == pytest.approx(15, abs=2.0)
    assert m["retreat_angle_deg"]["found"] == pytest.approx(134.8, abs=5)


@pytest.mark.slow
def test_small_world_without_start_altitude_takes_its_scale_from_the_map(small_run, tmp_path):
    """No --start-altitude: the map search tries altitudes 100 m–20 km and the DOM fixes the metric scale."""
    from selenite.config import resolve_config
    from selenite.locate.config import LocateConfig
    from selenite.locate.config import confs as lconfs
    from selenite.locate.evaluate import evaluate_run
    from selenite.locate.pipeline import run_locate

    world, _ = small_run
    cfg = resolve_config(LocateConfig, lconfs, stage="locate", preset="default")
    assert cfg.start_altitude_m is None
    run = tmp_path / "run"
    run_locate(world / "descent/frames", world / "orbital_map.tif", world / "descent/camera.json", run, cfg)
    search = json.loads((run / "search.json").read_text())
    assert search["scale_candidates"] > 10
    ev = evaluate_run(run, world / "descent/truth.json")
    assert ev["fine"]["error_px"] < 1.0, ev
    # altitudes in metres come out right to within the map's own pixel scale
    assert ev["trajectory"]["median_rel_altitude_error"] < 0.03, ev["trajectory"]


@pytest.mark.slow
def test_small_world_outputs_follow_the_contract(small_run):
    world, run = small_run
    truth = json.loads((world / "descent/truth.json").read_text())
    land = json.loads((run / "landing.json").read_text())
    for key in ("lon", "lat", "x", "y", "dom_col", "dom_row", "sigma_m", "coarse", "frames_used", "keyframes"):
        assert key in land
    assert 0 <= land["lon"] < 360 and abs(land["lon"] - truth["landing"]["lon"] % 360) < 1e-3
    first = truth["maneuvers"]["first_obscured_frame"]
    assert land["frames_obscured"][0] in (first, first + 1) and land["frames_obscured"][-1] == len(truth["frames"]) - 1
    header = (run / "trajectory.csv").read_text().splitlines()[0]
    assert header == "frame,x,y,z,altitude_m,gsd_m,roll,pitch,yaw,time_s"
    ph = json.loads((run / "phases.json").read_text())
    assert ph["time_source"] == "frame" and len(ph["speeds"]) == land["frames_reconstructed"]
    assert [p["name"] for p in ph["phases"]][1:] == ["powered descent", "final vertical descent"]
    gj = json.loads((run / "trajectory.geojson").read_text())
    assert gj["features"][0]["geometry"]["type"] == "LineString"
    assert (run / "report.html").read_text().count("data:image/png;base64,") >= 2
    proc = run_cli("verify", run)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("locate", "evaluate", run, "--truth", world / "descent/truth.json")
    assert proc.returncode == 0 and "fine" in proc.stdout


def test_locate_bad_inputs_exit_2_and_write_nothing(tmp_path, tiny_world):
    frames = tiny_world / "descent/frames"
    cam = tiny_world / "descent/camera.json"
    dom = tiny_world / "orbital_map.tif"
    out = tmp_path / "run"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_cli("locate", "run", "--frames", empty, "--dom", dom, "--camera", cam, "--out", out),
                          "no frames")
    bad_cam = tmp_path / "cam.json"
    bad_cam.write_text(json.dumps({"width": 192, "height": 144, "fx": 100}))
    assert_one_line_error(run_cli("locate", "run", "--frames", frames, "--dom", dom, "--camera", bad_cam,
                                  "--out", out), "lacks fy, cx, cy")
    # a plain image is a map without georeference (results in map pixels); a scale is only for such a map
    assert_one_line_error(run_cli("locate", "run", "--frames", frames, "--dom", dom, "--camera", cam,
                                  "--dom-gsd", "2", "--out", out), "is georeferenced")
    plain = tmp_path / "plain.png"
    cv2.imwrite(str(plain), np.zeros((50, 50), np.uint8))
    assert_one_line_error(run_cli("locate", "run", "--frames", frames, "--dom", plain, "--camera", cam,
                                  "--dom-gsd", "-1", "--out", out), "--dom-gsd must be")
    fov_only = tmp_path / "fov.json"
    fov_only.write_text(json.dumps({"model": "fisheye"}))
    assert_one_line_error(run_cli("locate", "run", "--frames", frames, "--dom", dom, "--camera", fov_only,
                                  "--out", out), "needs the intrinsics")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for k, shape in enumerate([(144, 192), (144, 192), (100, 192)]):
        cv2.imwrite(str(mixed / f"{k:03d}.png"), np.zeros(shape, np.uint8))
    assert_one_line_error(run_cli("locate", "run", "--frames", mixed, "--dom", dom, "--camera", cam,
                                  "--out", out), "but the camera")
    assert not out.exists()


# -- map search voting, direct fixes ----------------------------------------------------------------------------
def _hyp(kf, n, org, theta=0.5, scale_m=1.0):
    from selenite.locate.search import Hypothesis

    return Hypothesis(kf, theta, n, 1.0, np.array(org, float), np.eye(2, 3), theta, scale_m=scale_m,
                      origin_px=np.array(org, float))


def test_voting_prefers_keyframes_that_agree_over_one_strong_coincidence():
    from selenite.locate.search import best_hypothesis, vote

    true = [_hyp("a", 9, (500, 500)), _hyp("b", 8, (503, 498)), _hyp("c", 7, (498, 503)),
            _hyp("a", 5, (501, 500), theta=0.6)]            # a neighbouring heading of the same keyframe counts once
    wrong = [_hyp("d", 15, (2000, 300)), _hyp("b", 6, (900, 1500)), _hyp("c", 4, (500, 500), theta=2.5)]
    support = vote(true + wrong, radius_px=40)
    assert support[0] == 9 + 8 + 7 and support[4] == 15 and support[6] == 4   # the turned one is not counted
    best, ratio, sup = best_hypothesis(true + wrong, separation_px=160)
    assert best.keyframe == "a" and sup == 24 and ratio == pytest.approx(24 / 15)
    assert best_hypothesis([_hyp("a", 0, (0, 0))], 10)[0] is None


def test_voting_needs_a_common_scale_when_the_altitude_is_searched():
    """Without --start-altitude a keyframe tried at a wrong altitude can land near the landing point by chance;
    it must not borrow the support of the hypotheses that agree on the scale (a failure seen in about one run in
    six on the small world before scale agreement was required)."""
    from selenite.locate.search import best_hypothesis, cluster_scale, vote

    wrong = [_hyp("e", 10, (501, 499), scale_m=8.8)]                       # first in the list, most inliers
    right = [_hyp("a", 9, (500, 500), scale_m=23.7), _hyp("b", 8, (503, 498), scale_m=22.1),
             _hyp("c", 7, (498, 503), scale_m=25.0)]
    support = vote(wrong + right, radius_px=40)
    assert support[0] == 10 and support[1] == 9 + 8 + 7
    best, _, sup = best_hypothesis(wrong + right, separation_px=160)
    assert best.keyframe == "a" and sup == 24
    # the metric scale comes from the three that agree, weighted by their inliers, not from the best alone
    expected = np.exp((9 * np.log(23.7) + 8 * np.log(22.1) + 7 * np.log(25.0)) / 24)
    assert cluster_scale(wrong + right, best, radius_px=40) == pytest.approx(expected, rel=1e-12)


class _Grid:
    """DOM pixel → local metres for a 0.5 m DOM with north up."""

    def pixel_to_local(self, col, row):
        return np.column_stack([np.asarray(col) * 0.5, -np.asarray(row) * 0.5])


def test_search_tiles_cover_a_large_map_with_half_overlap_and_leave_a_small_one_whole():
    from selenite.locate.search import search_tiles

    rng = np.random.default_rng(5)
    kp = rng.uniform([0, 0], [2600, 13000], (20000, 2))
    tiles = search_tiles((13000, 2600), kp, 1024)
    covered = np.zeros(len(kp), int)
    for idx in tiles:
        covered[idx] += 1
        ext = kp[idx].max(0) - kp[idx].min(0)
        assert np.all(ext < 1024)
    assert covered.min() >= 1                      # every feature is in some tile ...
    assert np.median(covered) >= 3                 # ... and most in several (half-overlapping in both axes)
    assert len(tiles) == 5 * 25
    small = search_tiles((1152, 1152), kp[:500] / 12, 1024)
    assert len(small) == 1 and len(small[0]) == 500


def test_top_k_matches_equal_a_brute_force_search_done_in_chunks():
    from selenite.locate.search import top_k_matches

    rng = np.random.default_rng(6)
    d1 = rng.normal(size=(300, 64)).astype(np.float32)
    d2 = rng.normal(size=(5000, 64)).astype(np.float32)
    idx, sim = top_k_matches(d1, d2, 4, chunk=700)
    full = d1 @ d2.T
    ref = np.argsort(-full, axis=1)[:, :4]
    assert np.array_equal(idx, ref)
    assert np.allclose(sim, np.take_along_axis(full, ref, 1), atol=1e-4)


def test_direct_fixes_combine_robustly_with_a_systematic_sigma():
    from selenite.locate.fine import PointFix
    from selenite.locate.solve import combine_fixes

    rng = np.random.default_rng(0)
    fixes = [PointFix(f"{k}", 100 + rng.normal(0, 0.1), 200 + rng.normal(0, 0.1), 40, 0.6, 0.3) for k in range(8)]
    fixes.append(PointFix("bad", 130.0, 180.0, 40, 0.6, 0.3))          # one frame registered wrongly
    en, cov = combine_fixes(fixes, _Grid(), 0.5, sys_rms=0.5)
    assert en == pytest.approx([50.0, -100.0], abs=0.1)               # the outlier is ignored
    sys_var = (0.5 * 0.6 * 0.5) ** 2                                   # 0.5 × RMS 0.6 px × 0.5 m/px, per axis
    assert np.diag(cov) == pytest.approx([sys_var + 0.05**2 * 0.5**2 / 0.25] * 2, rel=0.8)
    assert np.all(np.diag(cov) >= sys_var)
    assert combine_fixes(fixes[:2], _Grid(), 0.5, 0.5) is None


# -- features --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["xfeat", "aliked", "sift"])
def test_each_feature_kind_recovers_a_known_rotation_and_shift(kind, tiny_world):
    """Every extractor with its pair matcher finds a map crop in a turned, shifted, darker copy of it.

    Sub-pixel only without the turn: learned detectors are not rotation-covariant to the sub-pixel (measured
    0.75 px at 25° for XFeat and ALIKED), which is why the fine fix matches each frame against the map rendered
    into that frame's own view."""
    import rasterio

    from selenite.locate.features import make_extractor

    with rasterio.open(tiny_world / "orbital_map.tif") as ds:
        img = ds.read(1)
    img = cv2.normalize(img.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)[:320, :400]
    ext = make_extractor(kind, 1024, 2)
    a = ext(img)
    c = np.array([200.0, 160.0, 1.0])
    for angle, shift, tol_px in [(25.0, (6.0, -4.0), 1.5), (0.0, (6.4, -3.7), 0.25)]:
        M = cv2.getRotationMatrix2D((200.0, 160.0), angle, 1.0)
        M[:, 2] += shift
        moved = (cv2.warpAffine(img, M, (400, 320), flags=cv2.INTER_CUBIC) * 0.7).astype(np.uint8)
        b = ext(moved)
        m = ext.match_pair(a, b, (400, 320), (400, 320))
        A, inl = cv2.estimateAffinePartial2D(a.keypoints[m[:, 0]], b.keypoints[m[:, 1]], method=cv2.RANSAC,
                                             ransacReprojThreshold=2.0)
        assert inl.sum() >= 40, (kind, angle, int(inl.sum()))
        assert np.degrees(np.arctan2(-A[1, 0], A[0, 0])) == pytest.approx(angle, abs=0.3)
        # the crop centre lands where the true map sends it
        assert np.linalg.norm(A @ c - M @ c) < tol_px, (kind, angle, A @ c - M @ c)


def test_sift_keypoints_sit_on_the_features_they_describe():
    """Gaussian blobs at known sub-pixel positions (pixel centres at integers): SIFT's keypoints within 0.06 px of
    them on average (OpenCV's raw positions are 0.25 px off; a constant offset turns every camera by offset / f)."""
    from selenite.locate.features import make_extractor

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:256, 0:256].astype(float)
    img = np.full((256, 256), 128.0)
    pts = []
    for i in range(6):
        for j in range(6):
            cx, cy = 30 + j * 38 + rng.uniform(-0.5, 0.5), 30 + i * 38 + rng.uniform(-0.5, 0.5)
            img += 100 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 18.0) * (1 if (i + j) % 2 else -1)
            pts.append((cx, cy))
    pts = np.array(pts)
    f = make_extractor("sift", 2048, 1)(np.clip(img, 0, 255).astype(np.uint8))
    d = np.linalg.norm(pts[:, None] - f.keypoints[None], axis=2)
    j = d.argmin(1)
    near = d[np.arange(len(pts)), j] < 1.0
    assert near.sum() >= 30
    bias = (f.keypoints[j[near]] - pts[near]).mean(0)
    assert np.all(np.abs(bias) < 0.06), bias


def test_a_pair_too_far_apart_in_scale_is_bridged_by_shrinking_the_magnified_frame(shared_data):
    """A frame 2.6× closer to the ground than the one before (Mars 2020's last powered-descent frames are 2–3×
    apart): XFeat matches 15 points, fewer than a pair needs; the magnified frame's features from a shrunk copy,
    appended to its own, tie the pair with the homography of the true zoom."""
    from selenite.locate.features import make_extractor
    from selenite.locate.sfm import bridge_scale_gaps, match_pairs

    img = cv2.imread(str(shared_data / "images/nac_change4_crops/train/M1229577647_mosaic_train_small.png"),
                     cv2.IMREAD_GRAYSCALE)
    z = 2.6
    near = cv2.warpAffine(img, np.array([[z, 0, 192 - z * 400], [0, z, 192 - z * 400]]), (384, 384),
                          flags=cv2.INTER_CUBIC)
    far = cv2.warpAffine(img, np.array([[1.0, 0, -208], [0, 1.0, -208]]), (384, 384), flags=cv2.INTER_AREA)
    ext = make_extractor("xfeat", 2048, 1)
    imgs = [far, near]
    feats = [ext(im) for im in imgs]
    n_near = len(feats[1])
    pms = match_pairs(feats, [(0, 1)], ext, (384, 384), 25)
    assert pms[0].inliers < 25 and pms[0].H is None
    done = bridge_scale_gaps(feats, pms, lambda k: (imgs[k], 1.0), ext, (384, 384), 25, 3)
    assert len(done) == 1 and done[0]["shrunk"] == "later" and pms[0].inliers >= 50
    m = pms[0].matches
    assert m[:, 1].min() >= n_near            # the pair points at the appended features, the old ones untouched
    # the appended keypoints are in the near frame's own pixels: the true zoom carries the far ones onto them
    p_far, p_near = feats[0].keypoints[m[:, 0]], feats[1].keypoints[m[:, 1]]
    err = np.linalg.norm(z * (p_far - 191.5) + 191.5 - p_near, axis=1)
    assert (err < 2.0).sum() >= 50, np.sort(err)[:60]


def _zoomed_views(img: np.ndarray, specs, size: int = 384):
    """Views of ``img`` (zoom, rotation °, sub-pixel shift) about a common centre; each view's 3×3 affine map
    from image pixels to view pixels."""
    views, maps = [], []
    for z, rot, (dx, dy) in specs:
        a = np.radians(rot)
        R = z * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        c = np.array([400.0, 400.0])
        t = np.array([size / 2 - 0.5 + dx, size / 2 - 0.5 + dy]) - R @ c
        M = np.vstack([np.c_[R, t], [0, 0, 1]])
        views.append(cv2.warpAffine(img, M[:2], (size, size), flags=cv2.INTER_CUBIC))
        maps.append(M)
    return views, maps


def test_lucas_kanade_through_the_homography_places_matches_to_a_tenth_of_a_pixel(shared_data):
    """Two views of a real NAC crop 1.3× apart in scale and 6° in rotation: matches placed 1 px off at random
    come back to within 0.1 px (median) of the true correspondence; a point whose window leaves the image is
    not kept."""
    from selenite.locate.sfm import _apply_h, lk_refine

    img = cv2.imread(str(shared_data / "images/nac_change4_crops/train/M1229577647_mosaic_train_small.png"),
                     cv2.IMREAD_GRAYSCALE)
    (a, b), (Ma, Mb) = _zoomed_views(img, [(1.0, 0.0, (0.0, 0.0)), (1.3, 6.0, (0.37, -0.21))])
    H = Mb @ np.linalg.inv(Ma)
    pa = cv2.goodFeaturesToTrack(a, 400, 0.01, 8).reshape(-1, 2).astype(float)
    pa = pa[(pa.min(1) > 40) & (pa.max(1) < 340)]
    truth = _apply_h(H, pa)
    rng = np.random.default_rng(0)
    start = truth + rng.normal(0, 0.7, truth.shape)
    H_noisy = H @ np.array([[1.0, 0.002, 0.3], [-0.002, 1.0, -0.2], [0, 0, 1]])   # a fitted, not a true, homography
    got, ok = lk_refine(a, b, pa, start, H_noisy)
    assert ok.mean() > 0.8
    before = np.median(np.linalg.norm(start - truth, axis=1))
    after = np.median(np.linalg.norm(got[ok] - truth[ok], axis=1))
    assert before > 0.7 and after < 0.1, (before, after)
    edge = np.array([[2.0, 190.0]])
    _, ok_edge = lk_refine(a, b, edge, _apply_h(H, edge), H)
    assert not ok_edge[0]


def test_keypoints_refined_along_tracks_agree_across_frames(shared_data):
    """Four views zooming in (as a descent does) matched by XFeat, whose points sit about a pixel from the true
    correspondence: after refinement every match kept is within 0.15 px (median) of where the true mapping
    carries its first observation, and matches leaving their track are gone."""
    from selenite.locate.features import make_extractor
    from selenite.locate.sfm import _apply_h, frame_pairs, match_pairs, refine_keypoints

    img = cv2.imread(str(shared_data / "images/nac_change4_crops/train/M1229577647_mosaic_train_small.png"),
                     cv2.IMREAD_GRAYSCALE)
    specs = [(1.0, 0.0, (0.0, 0.0)), (1.15, 4.0, (0.3, 0.1)), (1.32, 8.0, (-0.2, 0.4)), (1.52, 11.0, (0.1, -0.3))]
    views, maps = _zoomed_views(img, specs)
    ext = make_extractor("xfeat", 2048, 1)
    feats = [ext(v) for v in views]
    pms = match_pairs(feats, frame_pairs(4, 3, []), ext, (384, 384), 25)

    def errors(fs, pm_list):
        out = []
        for pm in pm_list:
            H = maps[pm.j] @ np.linalg.inv(maps[pm.i])
            pa, pb = fs[pm.i].keypoints[pm.matches[:, 0]], fs[pm.j].keypoints[pm.matches[:, 1]]
            out.append(np.linalg.norm(_apply_h(H, pa) - pb, axis=1))
        return np.concatenate(out)

    before = errors(feats, pms)
    refined, kept, stats = refine_keypoints(feats, pms, lambda k: (views[k], 1.0), 25)
    after = errors(refined, kept)
    assert stats["refined"] > 1000 and stats["matches_dropped"] > 0
    assert np.median(before) > 0.5 and np.median(after) < 0.15, (np.median(before), np.median(after))
    assert len(after) > 0.4 * len(before)


def test_a_fine_fix_far_from_the_coarse_one_gets_a_sigma_that_covers_both():
    from selenite.locate.outputs import _fine_coarse_agreement

    fine = {"dom_col": 100.0, "dom_row": 100.0, "sigma_m": 0.3}
    cov = np.diag([0.045, 0.045])
    near = {"dom_col": 101.0, "dom_row": 100.5, "sigma_m": 0.6}          # 0.56 m apart: agree
    agree, cov1 = _fine_coarse_agreement(dict(fine), near, cov, 0.5)
    assert not agree["widened"] and np.allclose(cov1, cov)
    far = {"dom_col": 112.0, "dom_row": 91.0, "sigma_m": None}           # 7.5 m apart, σ floor 1 px = 0.5 m
    land = dict(fine)
    agree, cov2 = _fine_coarse_agreement(land, far, cov, 0.5)
    assert agree["widened"] and agree["coarse_fine_gap_m"] == pytest.approx(7.5)
    assert land["sigma_m"] == pytest.approx(7.5) and np.sqrt(np.trace(cov2)) == pytest.approx(7.5)


def test_a_bridge_is_carried_down_so_the_frames_below_the_gap_share_tracks_with_those_above(shared_data):
    """Frames 1.0×, 2.6× and 3.4× (a fall across a scale gap, then on): the bridge 0→1 gives frame 1 features
    from its shrunk copy that carry frame 0's tracks; they are matched on to a shrunk copy of frame 2, so frame 2
    sees those tracks too (its own features match only frame 1's own)."""
    from selenite.locate.features import make_extractor
    from selenite.locate.sfm import _apply_h, bridge_scale_gaps, match_pairs

    img = cv2.imread(str(shared_data / "images/nac_change4_crops/train/M1229577647_mosaic_train_small.png"),
                     cv2.IMREAD_GRAYSCALE)
    views, maps = _zoomed_views(img, [(1.0, 0.0, (0.0, 0.0)), (2.6, 3.0, (0.2, 0.1)), (3.4, 5.0, (-0.3, 0.2))])
    ext = make_extractor("xfeat", 2048, 1)
    feats = [ext(v) for v in views]
    n_own = [len(f) for f in feats]
    pms = match_pairs(feats, [(0, 1), (1, 2)], ext, (384, 384), 25)
    assert pms[0].H is None and pms[1].H is not None
    done = bridge_scale_gaps(feats, pms, lambda k: (views[k], 1.0), ext, (384, 384), 25, 3)
    assert [d["shrunk"] for d in done] == ["later", "carried"]
    m = pms[1].matches
    carried = m[(m[:, 0] >= n_own[1]) & (m[:, 1] >= n_own[2])]
    H = maps[2] @ np.linalg.inv(maps[1])
    err = np.linalg.norm(_apply_h(H, feats[1].keypoints[carried[:, 0]]) - feats[2].keypoints[carried[:, 1]], axis=1)
    assert (err < 3.0).sum() >= 25, np.sort(err)[:30]
    own = m[(m[:, 0] < n_own[1]) & (m[:, 1] < n_own[2])]
    assert len(own) >= 25                    # the pair keeps its own matches beside the carried ones
