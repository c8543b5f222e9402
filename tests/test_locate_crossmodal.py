"""Matching across sensors on real data: the default features (XFeat) register a real orbital image with a hillshade
rendered from a DEM of the same ground (the two LunarReg pairs in ``../shared/data/images/cross_modal_lunarreg``).

The reference transforms come from crater centres picked by eye on 7–10× zooms (±1.5 px; four of them ±2.5 px); a
similarity through them leaves 1.9 px RMS (loc_2, max 4.1) and 2.3 px RMS (loc_7, max 4.3), because the two
products differ by a few per cent of shear no similarity models. A registration counts as right when its mean
distance from the reference similarity at those points is within 4 px, about twice the reference's own RMS."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

# (original image x, y) -> (generated hillshade x, y), pixel centres
REFERENCE = {
    "loc_2_256x256": [((73.3, 85.3), (93.6, 64.3)), ((80.0, 98.5), (101.8, 70.6)), ((78.0, 137.3), (110.0, 94.8)),
                      ((87.6, 150.3), (120.05, 100.1)), ((181.2, 209.9), (190.45, 107.2)),
                      ((233.4, 113.8), (194.5, 32.1)), ((247.2, 92.6), (197.3, 17.5)), ((221.3, 70.0), (175.2, 10.8)),
                      ((159.8, 133.7), (158.6, 66.0)), ((123.5, 225.5), (159.7, 134.9)),
                      ((28.2, 109.9), (74.4, 92.5)), ((29.5, 141.8), (84.2, 110.8))],
    "loc_7_256x512": [((151.5, 53.3), (143.5, 109.6)), ((204.4, 262.7), (179.3, 257.9)),
                      ((66.3, 212.7), (79.9, 222.0)), ((133.6, 435.3), (126.7, 377.1)),
                      ((36.0, 472.4), (57.8, 403.8)), ((112.1, 295.7), (113.7, 279.0)),
                      ((44.7, 327.9), (64.1, 302.8)), ((199.1, 488.6), (174.4, 414.6)),
                      ((16.9, 31.0), (42.6, 97.4)), ((216.3, 393.0), (188.5, 349.0))],
}


def _similarity_lsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least-squares similarity a → b (2 × 3)."""
    ca, cb = a.mean(0), b.mean(0)
    za = (a - ca) @ np.array([1, 1j])
    zb = (b - cb) @ np.array([1, 1j])
    s = (np.conj(za) @ zb) / (np.conj(za) @ za)
    M = np.array([[s.real, -s.imag], [s.imag, s.real]])
    return np.column_stack([M, cb - M @ ca])


@pytest.mark.parametrize("pair", sorted(REFERENCE))
def test_xfeat_registers_a_real_orbital_image_with_a_dem_hillshade(pair, shared_data):
    from selenite.locate.features import make_extractor

    folder = shared_data / "images/cross_modal_lunarreg"
    a = cv2.imread(str(folder / f"original_{pair}.png"), cv2.IMREAD_GRAYSCALE)
    b = cv2.imread(str(folder / f"generated_{pair}.png"), cv2.IMREAD_GRAYSCALE)
    ref = np.array(REFERENCE[pair], float)
    M_ref = _similarity_lsq(ref[:, 0], ref[:, 1])
    # the reference itself: a similarity leaves a couple of pixels (shear between the products)
    resid = np.hypot(*(ref[:, 0] @ M_ref[:, :2].T + M_ref[:, 2] - ref[:, 1]).T)
    assert np.sqrt((resid ** 2).mean()) < 2.5
    ext = make_extractor("xfeat", 2048, threads=1)
    fa, fb = ext(a), ext(b)
    m = ext.match_pair(fa, fb, a.shape[::-1], b.shape[::-1])
    M, inl = cv2.estimateAffinePartial2D(fa.keypoints[m[:, 0]], fb.keypoints[m[:, 1]], method=cv2.RANSAC,
                                         ransacReprojThreshold=3.0, maxIters=5000, confidence=0.999)
    assert M is not None and inl.sum() >= 50, inl.sum()
    err = np.hypot(*(ref[:, 0] @ (M[:, :2] - M_ref[:, :2]).T + (M[:, 2] - M_ref[:, 2])).T).mean()
    assert err < 4.0, err
