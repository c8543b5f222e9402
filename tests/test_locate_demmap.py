"""A DEM as the map (``selenite locate run --dem``): the shaded relief against closed forms, the input checks, and
an end-to-end fix on the second generator's descent over real relief (the 10 m Connecting Ridge DEM) with the
frames rendered by a different reflectance law and shadow code than the map."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from selenite.geo.crs import local_stereographic


def _write_dem(path, z, res=10.0):
    h, w = z.shape
    crs = local_stereographic(30.0, -10.0)
    tf = Affine(res, 0, -w / 2 * res, 0, -res, h / 2 * res)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32", crs=crs.to_wkt(),
                       transform=tf) as ds:
        ds.write(z.astype(np.float32), 1)


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_a_tilted_plane_is_shaded_by_the_cosine_of_incidence(tmp_path):
    from selenite.locate.demmap import AMBIENT, render_dem_map

    # a plane rising to the east at 10°: facing west; a Sun in the west at 20° lights it at incidence 90°-30°
    cols = np.arange(96)[None, :] * 10.0
    z = np.repeat(cols * np.tan(np.radians(10.0)), 96, axis=0)
    _write_dem(tmp_path / "dem.tif", z)
    for az, el, expect in [(270.0, 20.0, np.sin(np.radians(30.0))), (90.0, 20.0, np.sin(np.radians(10.0))),
                           (0.0, 20.0, np.sin(np.radians(20.0)) * np.cos(np.radians(10.0)))]:
        info = render_dem_map(tmp_path / "dem.tif", tmp_path / f"m{az:.0f}.tif", az, el)
        m = _read(tmp_path / f"m{az:.0f}.tif")[10:-10, 10:-10]
        assert np.allclose(m, AMBIENT + (1 - AMBIENT) * expect, atol=1e-4), (az, m.mean())
        assert abs(info["grid_convergence_deg"] % 360 - 0) < 0.5 or abs(info["grid_convergence_deg"] - 360) < 0.5


def test_a_wall_casts_its_shadow_as_far_as_its_height_over_the_tangent_of_the_sun(tmp_path):
    from selenite.locate.demmap import AMBIENT, render_dem_map

    z = np.zeros((64, 200))
    z[:, 100] = 100.0                      # a 100 m wall one pixel thick, running north–south
    _write_dem(tmp_path / "wall.tif", z)
    render_dem_map(tmp_path / "wall.tif", tmp_path / "m.tif", 90.0, 30.0)   # Sun in the east
    row = _read(tmp_path / "m.tif")[32]
    dark = np.flatnonzero(np.isclose(row[:100], AMBIENT, atol=1e-6))
    # shadow west of the wall for 100 / tan 30° = 173 m = 17.3 px (Moon's curvature: a few cm over 170 m)
    assert dark.min() in (82, 83) and dark.max() == 98 + (row[99] <= AMBIENT + 1e-6)
    assert np.allclose(row[:80], AMBIENT + (1 - AMBIENT) * np.sin(np.radians(30.0)), atol=1e-4)


def test_the_map_options_are_checked_before_any_work(tmp_path):
    import subprocess
    import sys

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:04d}.png"), np.full((64, 64), 100, np.uint8))
    (tmp_path / "cam.json").write_text(json.dumps({"model": "pinhole", "fov_deg": 60}))
    _write_dem(tmp_path / "dem.tif", np.zeros((64, 64)))
    base = [sys.executable, "-m", "selenite", "locate", "run", "--frames", str(frames), "--camera",
            str(tmp_path / "cam.json")]
    cases = [([], "one of them"),
             (["--dom", str(tmp_path / "dem.tif"), "--dem", str(tmp_path / "dem.tif")], "one of them"),
             (["--dem", str(tmp_path / "dem.tif"), "--sun-el", "95"], "--sun-el"),
             (["--dom", str(tmp_path / "dem.tif"), "--sun-az", "90"], "--sun-az"),
             (["--dem", str(tmp_path / "nothing.tif")], "nothing.tif")]
    for k, (extra, words) in enumerate(cases):
        out = tmp_path / f"run{k}"
        p = subprocess.run([*base, *extra, "--out", str(out)], capture_output=True, text=True, timeout=300)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, (extra, p.stderr)
        assert words in p.stderr, (extra, p.stderr)
        assert not out.exists()


@pytest.mark.slow
def test_a_descent_over_real_relief_is_located_on_its_dem(tmp_path, shared_data):
    from selenite.config import resolve_config
    from selenite.geo.camera import FisheyeCamera
    from selenite.locate.config import LocateConfig, confs
    from selenite.locate.evaluate import evaluate_run
    from selenite.locate.pipeline import run_locate
    from selenite.synth.drape import DrapeDescent, DrapedWorld, sunlit_relief, write_case

    with rasterio.open(shared_data / "dem/pgda_site01_connecting_ridge_10m.tif") as ds:
        z = ds.read(1, window=rasterio.windows.Window(500, 500, 600, 600)).astype(np.float64)
    z -= z[300, 300]
    rng = np.random.default_rng(4)
    albedo = 0.9 + 0.1 * cv2.GaussianBlur(rng.normal(0, 1, z.shape), (0, 0), 3)
    world = DrapedWorld(sunlit_relief(z, 10.0, 200.0, 15.0) * albedo, 10.0, z, detail=0.06)
    lens = FisheyeCamera.from_fov(384, 384, 90)
    # measured: 0.60 px with these 18 frames to 300 m; 1.7 px when they stop at 400 m, 5.2 px with 12 frames of
    # 320² to 400 m (the 10 m relief holds little to register once the frames are finer than ~1.5 m/px)
    plan = DrapeDescent(start_m=2500, end_m=300, frames=18, drift_m=300, vertical_from_m=600, swing_deg=5,
                        swing_period=7, seed=2)
    case = tmp_path / "case"
    truth = write_case(case, world, lens, plan, dom_image=z, map_is_dem=True, frame_photometry={"noise": 1.5})
    cfg = resolve_config(LocateConfig, confs, stage="locate", preset="default",
                         overrides={"start_altitude_m": 2500.0})
    run = tmp_path / "run"
    # the Sun given as a mission knows it (the azimuth search is measured by bench locate-drape)
    run_locate(case / "frames", None, case / "camera.json", run, cfg, dem_path=case / "dem.tif", sun_az_deg=200.0,
               sun_el_deg=15.0)
    land = json.loads((run / "landing.json").read_text())
    assert land["map_from_dem"]["sun_azimuth_deg"] == 200.0 and not land["map_from_dem"]["azimuth_estimated"]
    assert land["level"] == "fine"
    ev = evaluate_run(run, case / "truth.json")
    # within 2 DOM pixels (20 m) of the truth, from frames no lower than 300 m
    assert ev["fine"]["error_px"] < 2.0, ev
    assert truth["landing"]["dom_col"] == pytest.approx(299.5)
