"""Camera models against OpenCV's own projection, and camera files that give only a field of view."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from selenite.errors import InputError
from selenite.geo.camera import (
    FisheyeCamera,
    PinholeCamera,
    camera_spec_from_dict,
    load_camera_spec,
    pinhole_for,
    undistort_maps,
)


def _points(rng, n, max_off_axis_deg):
    th = np.radians(rng.uniform(0, max_off_axis_deg, n))
    ph = rng.uniform(0, 2 * np.pi, n)
    r = rng.uniform(2, 50, n)
    return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], 1) * r[:, None]


def _pose(rng):
    rvec = rng.normal(0, 0.2, 3)
    R, _ = cv2.Rodrigues(rvec)
    t = rng.normal(0, 1, 3)
    return rvec, R, t


def test_pinhole_with_radial_and_tangential_distortion_projects_like_opencv():
    rng = np.random.default_rng(1)
    cam = PinholeCamera(1024, 768, 900.0, 905.0, 515.3, 380.1, k1=-0.21, k2=0.08, p1=0.0012, p2=-0.0009,
                        k3=-0.013)
    rvec, R, t = _pose(rng)
    Xc = _points(rng, 500, 35)                                 # camera-frame points within 35° off axis
    X = (Xc - t) @ R                                           # the same points in the world
    mine = cam.project(X, R, t)
    ref, _ = cv2.projectPoints(X.reshape(-1, 1, 3), rvec, t, cam.K, cam.distortion)
    assert np.abs(mine - ref.reshape(-1, 2)).max() < 1e-6
    # and back: the rays through those pixels are the points' directions
    d = cam.pixel_rays_camera(mine[:, 0], mine[:, 1])
    unit = Xc / np.linalg.norm(Xc, axis=1, keepdims=True)
    assert np.degrees(np.arcsin(np.linalg.norm(np.cross(d, unit), axis=1))).max() < 1e-5


def test_fisheye_projects_like_opencv_fisheye_and_its_rays_invert_it():
    rng = np.random.default_rng(2)
    cam = FisheyeCamera(800, 800, 291.0, 292.5, 401.2, 398.7, k1=0.031, k2=-0.012, k3=0.004, k4=-0.0007)
    rvec, R, t = _pose(rng)
    Xc = _points(rng, 500, 62)                                 # a 124° cone: past any pinhole's reach
    X = (Xc - t) @ R
    mine = cam.project(X, R, t)
    ref, _ = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), rvec, t, cam.K, cam.distortion)
    assert np.abs(mine - ref.reshape(-1, 2)).max() < 1e-6
    d = cam.pixel_rays_camera(mine[:, 0], mine[:, 1])
    unit = Xc / np.linalg.norm(Xc, axis=1, keepdims=True)
    assert np.degrees(np.arcsin(np.linalg.norm(np.cross(d, unit), axis=1))).max() < 1e-7
    # OpenCV's own inverse agrees with ours
    und = cv2.fisheye.undistortPoints(mine.reshape(-1, 1, 2), cam.K, cam.distortion).reshape(-1, 2)
    assert np.abs(und - unit[:, :2] / unit[:, 2:]).max() < 1e-5


def test_a_field_of_view_alone_makes_an_equidistant_fisheye_to_self_calibrate(tmp_path):
    p = tmp_path / "lcam.json"
    p.write_text(json.dumps({"model": "fisheye", "fov_deg": 90}))
    spec = load_camera_spec(p)
    assert spec.self_calibrate
    cam = spec.resolve(800, 800)
    assert isinstance(cam, FisheyeCamera)
    assert cam.fx == pytest.approx(400 / (np.pi / 4))
    assert cam.half_fov_deg() == pytest.approx(45.0, abs=1e-9)
    # a sensor and focal length: LCAM's 5.8 mm lens; a pinhole of the same numbers is narrower
    fe = camera_spec_from_dict({"model": "fisheye", "focal_mm": 5.8, "sensor_width_mm": 9.1}).resolve(1024, 1024)
    ph = camera_spec_from_dict({"model": "pinhole", "focal_mm": 5.8, "sensor_width_mm": 9.1}).resolve(1024, 1024)
    assert fe.half_fov_deg() == pytest.approx(np.degrees(4.55 / 5.8), abs=1e-9)
    assert ph.fx == pytest.approx(1024 * 5.8 / 9.1)
    # a full pinhole file keeps today's meaning: no self-calibration unless asked
    full = camera_spec_from_dict({"width": 64, "height": 48, "fx": 50, "fy": 50, "cx": 31.5, "cy": 23.5})
    assert not full.self_calibrate and isinstance(full.camera, PinholeCamera)
    with pytest.raises(InputError, match="frames are"):
        full.resolve(80, 48)


@pytest.mark.parametrize("bad", [{"model": "fisheye"}, {"model": "fisheye", "fov_deg": -3},
                                 {"model": "pinhole", "fov_deg": 190}, {"model": "cahvore", "fov_deg": 90},
                                 {"model": "fisheye", "fov_deg": 90, "zoom": 2},
                                 {"model": "fisheye", "fov_deg": 90, "self_calibrate": "yes"}])
def test_bad_camera_files_are_refused_in_one_line(bad):
    with pytest.raises(InputError):
        camera_spec_from_dict(bad)


def test_undistorting_a_fisheye_frame_gives_the_pinhole_view():
    fe = FisheyeCamera(400, 400, 150.0, 150.0, 199.5, 199.5, k1=0.05, k2=-0.01)
    ph = pinhole_for(fe)
    assert ph.fx == pytest.approx(200 / np.tan(np.radians(min(fe.half_fov_deg(), 50.0))))
    mx, my = undistort_maps(fe, ph)
    # a world point seen by both: the pinhole pixel maps to the fish-eye pixel of the same ray
    rng = np.random.default_rng(3)
    X = _points(rng, 200, 40)
    uv_p = ph.project(X, np.eye(3), np.zeros(3))
    uv_f = fe.project(X, np.eye(3), np.zeros(3))
    inside = (uv_p >= 0).all(1) & (uv_p <= 399).all(1)
    got = np.stack([cv2.remap(m, uv_p[inside, :1].astype(np.float32), uv_p[inside, 1:].astype(np.float32),
                              cv2.INTER_LINEAR).ravel() for m in (mx, my)], 1)
    assert np.abs(got - uv_f[inside]).max() < 0.02
