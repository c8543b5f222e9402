"""The synthetic world's physics and geometry."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from selenite.cratering import chronology
from selenite.geo import raster_info, read_dem
from selenite.geo.camera import PinholeCamera, attitude_deg, pose_from_axis
from selenite.synth.render import build_scene, render_perspective, shadow_height
from selenite.synth.terrain import cratered_terrain, sample_crater_population


def _shadow_length(z, el, az=270.0):
    """Sub-pixel length of the cast shadow along the row through the centre (sun from the west)."""
    h = shadow_height(z, 1.0, az, [el])[0][z.shape[0] // 2]
    inside = np.where(h > 0)[0]
    a, b = inside.min(), inside.max()
    start = a - h[a] / (h[a] - h[a - 1]) if h[a - 1] <= 0 else a   # zero crossings by linear interpolation
    end = b + h[b] / (h[b] - h[b + 1])
    return end - start


@pytest.mark.parametrize("el", [5.0, 12.0, 25.0])
def test_pit_shadow_length_is_depth_over_tan_elevation(el):
    n, R, d = 301, 100.0, 10.0  # d / tan(e) stays shorter than the pit for every e below
    yy, xx = np.mgrid[0:n, 0:n]
    z = np.where(np.hypot(xx - 150, yy - 150) < R, -d, 0.0)
    # the shadow starts at the wall (inside the first pixel) and ends d / tan(e) further on
    assert _shadow_length(z, el) == pytest.approx(d / np.tan(np.radians(el)), abs=1.0)


@pytest.mark.parametrize("el", [8.0, 15.0])
def test_bowl_crater_shadow_matches_closed_form(el):
    """Paraboloid bowl of radius R and depth d: the rim's shadow reaches 2R - R² tan(e) / d."""
    n, R, d = 401, 100.0, 40.0
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(xx - 200, yy - 200)
    z = np.where(r < R, d * ((r / R) ** 2 - 1), 0.0)
    assert _shadow_length(z, el) == pytest.approx(2 * R - R * R * np.tan(np.radians(el)) / d, abs=1.0)


def test_crater_population_follows_the_production_function():
    rng = np.random.default_rng(0)
    area, age = 50.0, 1.0
    diam, ages = sample_crater_population(area, age, 20.0, 2000.0, rng)
    c = chronology()
    for d_m in (20.0, 40.0, 100.0):
        expected = area * (c.production.cumulative(d_m / 1000, c.n1(age)) - c.production.cumulative(2.0, c.n1(age)))
        observed = (diam >= d_m).sum()
        assert abs(observed - expected) < 4 * np.sqrt(expected)   # Poisson, 4 sigma
    # formation ages follow the flux: with a near-constant flux over 1 Ga the median is close to 0.5 Ga
    assert np.median(ages) == pytest.approx(500.0, rel=0.05)


def test_fresh_crater_depth_to_diameter_is_0_2():
    res = cratered_terrain((512, 512), 1.0, age_ga=3.0, seed=3, rms_slope_deg=0.0, diffusivity_m2_per_myr=0.0,
                           d_min_m=60.0, d_max_m=120.0)
    cat = res.craters
    assert len(cat) >= 1
    c = cat.iloc[0]
    r, col = int(round(c.row)), int(round(c.col))
    R = c.diameter_m / 2
    w = int(1.2 * R)
    patch = res.dem[max(r - w, 0): r + w, max(col - w, 0): col + w]
    floor = res.dem[r, col]
    # rim-to-floor depth over D: 0.2 within the pixel discretisation and overlap with neighbours
    assert (patch.max() - floor) / c.diameter_m == pytest.approx(0.2, abs=0.03)


def test_catalogue_classes_agree_with_visibility():
    cat = cratered_terrain((256, 256), 1.0, age_ga=1.0, seed=2).craters
    assert set(cat.loc[cat.visible, "class"]) <= {"A", "AB", "B", "BC", "C"}
    assert (cat.loc[~cat.visible, "class"] == "-").mean() > 0.95


def test_pinhole_projection_of_a_known_point():
    cam = PinholeCamera.from_fov(640, 480, 60.0)
    R, t = pose_from_axis(np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 100.0]))
    uv = cam.project(np.array([[10.0, 20.0, 0.0]]), R, t)[0]
    # nadir camera 100 m up, image-up = north: east → +u, north → -v
    assert uv == pytest.approx([cam.cx + cam.fx * 10 / 100, cam.cy - cam.fy * 20 / 100])
    assert attitude_deg(R) == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)


def test_rendered_marker_appears_where_the_pinhole_model_puts_it():
    """A bright 1-px albedo dot on a tilted plane, seen by an oblique camera, lands at its projection."""
    n = 201
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    dem = (0.05 * xx + 0.02 * yy).astype(np.float32)
    albedo = np.full((n, n), 0.1, np.float32)
    albedo[120, 80] = 5.0
    scene = build_scene(dem, 1.0, -100.0, 100.0, albedo, 90.0, 60.0, origin=(0.0, 0.0), detail_amplitude=0.0)
    cam = PinholeCamera.from_fov(320, 240, 50.0)
    center = np.array([-30.0, 10.0, 120.0])
    R, t = pose_from_axis(np.array([0.2, -0.1, -1.0]), np.array([0.0, 1.0, 0.0]), center)
    img, hit = render_perspective(scene, cam, R, center)
    x, y = -100.0 + 80, 100.0 - 120
    z = dem[120, 80] - (x * x + y * y) / (2 * 1737400.0)
    u, v = cam.project(np.array([[x, y, z]]), R, t)[0]
    peak = np.unravel_index(np.argmax(img), img.shape)
    assert abs(peak[1] - u) <= 1.0 and abs(peak[0] - v) <= 1.0
    # every hit point lies on the surface: its height equals the DEM's there
    assert np.nanmax(np.abs(hit[..., 2] - (0.05 * (hit[..., 0] + 100) + 0.02 * (100 - hit[..., 1])
                                          - (hit[..., 0] ** 2 + hit[..., 1] ** 2) / (2 * 1737400.0)))) < 0.01


def test_tiny_world_outputs_and_truth_are_consistent(tiny_world):
    w = tiny_world
    for name in ("dem.tif", "craters.csv", "albedo.tif", "orbital_map.tif", "descent/truth.json",
                 "descent/camera.json", "report.html", "manifest.json"):
        assert (w / name).is_file(), name
    truth = json.loads((w / "descent" / "truth.json").read_text())
    frames = truth["frames"]
    assert len(frames) == len(list((w / "descent" / "frames").glob("*.png"))) > 20
    cam = PinholeCamera.from_dict(truth["camera"])
    for f in frames:
        assert f["gsd_m"] == pytest.approx(f["altitude_m"] / cam.fx)
        assert Image.open(w / "descent" / f["file"]).size == (cam.width, cam.height)
    # the CE-6 maneuvers: pitch-over near 140 m (tiny preset), hover, retreat, plume at the end
    phases = [f["phase"] for f in frames]
    assert phases.index("approach") < phases.index("pitch-over") < phases.index("hover") < phases.index("vertical")
    assert all(f["obscured"] == (f["altitude_m"] < 8.6) for f in frames)
    assert frames[-1]["altitude_m"] == pytest.approx(2.0, abs=0.01)
    # landing point: DOM pixel ↔ map ↔ lon/lat agree
    land = truth["landing"]
    dom = raster_info(w / "orbital_map.tif")
    x, y = dom.pixel_to_map(land["dom_col"], land["dom_row"])
    assert (x, y) == pytest.approx((land["x"], land["y"]), abs=1e-6)
    lon, lat = dom.pixel_to_lonlat(land["dom_col"], land["dom_row"])
    assert (lon, lat) == pytest.approx((land["lon"], land["lat"]), abs=1e-9)
    # retreat vector between hover and landing: 10 m (tiny preset) at 134.8° from the travel direction (west)
    hover = next(f for f in frames if f["phase"] == "hover")
    v = np.array([land["x"] - hover["x"], land["y"] - hover["y"]])
    assert np.linalg.norm(v) == pytest.approx(10.0, abs=0.01)
    travel = np.array([-1.0, 0.0])
    ang = np.degrees(np.arccos(v @ travel / np.linalg.norm(v)))
    assert ang == pytest.approx(134.8, abs=0.01)
    # the crater catalogue's map coordinates match the DEM's georeferencing
    cat = pd.read_csv(w / "craters.csv")
    dem, info = read_dem(w / "dem.tif")
    xs, ys = info.pixel_to_map(cat.col.to_numpy(), cat.row.to_numpy())
    np.testing.assert_allclose(xs, cat.x_m, atol=1e-4)
    np.testing.assert_allclose(ys, cat.y_m, atol=1e-4)


def test_albedo_texture_is_stretched_once_with_its_shadows_floored(tmp_path):
    from selenite.synth.world import _texture_cover

    ramp = np.tile(np.linspace(0, 255, 120), (80, 1)).astype(np.uint8)   # wider than tall: a square is cut out
    Image.fromarray(ramp).save(tmp_path / "t.png")
    f = _texture_cover(str(tmp_path / "t.png"), (64, 64), gamma=0.6)
    assert f.shape == (64, 64) and f.mean() == pytest.approx(1.0)
    assert np.all(np.diff(f[0]) >= -1e-9)                  # one monotonic ramp: stretched, not tiled
    assert f.min() / f.max() >= (0.25 / 4.0) ** 0.6 - 1e-9   # black shadows do not become black ground
    with pytest.raises(Exception, match="cannot be read"):
        _texture_cover(str(tmp_path / "missing.png"), (8, 8), 0.6)


def test_correlated_jitter_keeps_its_sigma_but_turns_smoothly():
    """With ``jitter_frames`` the attitude noise is an AR(1) process: the same spread, small frame-to-frame steps."""
    from selenite.synth.descent import DescentPlan, plan_descent

    def tilts(frames: float):
        plan = DescentPlan(footprint_step=0.02, altitude_ratio_step=0.99, attitude_step_deg=0.5, jitter_deg=0.3,
                           jitter_frames=frames)
        poses = plan_descent(plan, np.zeros(2), lambda x, y: np.zeros_like(x), 60.0, np.random.default_rng(3))
        # roll about the optical axis is free of the planned tilt: it is pure jitter
        return np.array([p.attitude[0] for p in poses if p.phase == "vertical"])

    white, smooth = tilts(0.0), tilts(10.0)
    assert len(white) > 200
    step_white, step_smooth = np.std(np.diff(white)), np.std(np.diff(smooth))
    # AR(1) with rho = exp(-1/10): steps shrink by sqrt((1 - rho) / 1) ≈ 0.31 relative to white noise
    assert step_smooth / step_white == pytest.approx(np.sqrt(1 - np.exp(-0.1)), rel=0.2)
    assert np.std(smooth) == pytest.approx(np.std(white), rel=0.35)
