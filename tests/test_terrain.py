"""selenite terrain: ephemeris, horizons, visibility and attributes against closed forms and skyfield."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine

from selenite.geo.crs import MOON_RADIUS_M, as_crs, lonlat_to_map
from selenite.geo.raster import RasterInfo, read_raster, write_cog
from test_cli import assert_one_line_error, run_cli

PS = "IAU_2015:30135"


def _info(n, res, lon, lat, crs=PS):
    c = as_crs(crs)
    x0, y0 = lonlat_to_map(c, lon, lat)
    return RasterInfo(c, Affine(res, 0, x0 - n * res / 2, 0, -res, y0 + n * res / 2), n, n)


@pytest.fixture(scope="module")
def year():
    from selenite.terrain.ephemeris import body_tracks, parse_time, time_grid

    t = time_grid(parse_time("2026-01-01"), parse_time("2027-01-01"), 6.0)
    return body_tracks(t)


# -- ephemeris -------------------------------------------------------------------------------------------------
def test_sub_solar_and_sub_earth_points_follow_the_moons_obliquity_and_librations(year):
    """Published check (data/README): over 2026 the sub-solar latitude stays within −1.56…+1.59° and the
    sub-Earth point within ±6.8° latitude, ±7.9° longitude."""
    sun, earth = year
    _, lat = sun.sub_point_deg()
    assert lat.min() == pytest.approx(-1.56, abs=0.01) and lat.max() == pytest.approx(1.59, abs=0.01)
    lon, lat = earth.sub_point_deg()
    assert lat.min() == pytest.approx(-6.8, abs=0.1) and lat.max() == pytest.approx(6.8, abs=0.1)
    assert np.abs(lon).max() == pytest.approx(7.9, abs=0.1)


def test_sun_elevation_at_the_pole_agrees_with_skyfields_own_topocentric_altitude(year):
    from selenite.terrain.ephemeris import _kernels, _pc
    from selenite.terrain.visibility import local_directions

    sun, _ = year
    info = _info(64, 20.0, 0.0, -90.0)
    el, _ = local_directions(info, [31.5], [31.5], [0.0], sun.position_km[::97])
    eph, frame, ts = _kernels()
    # skyfield's own route: a surface place on the Moon, apparent altitude (light time and aberration: < 0.01°)
    pc = _pc()
    pc.variables.setdefault("BODY301_RADII", [1737.4] * 3)    # the sphere of the DEMs
    pc_place = eph["moon"] + pc.build_latlon_degrees(frame, -90.0, 0.0)
    secs = (sun.times[::97] - np.datetime64("2000-01-01T00:00:00", "s")).astype(float)
    t = ts.utc(2000, 1, 1, 0, 0, secs)
    alt, _, _ = pc_place.at(t).observe(eph["sun"]).apparent().altaz()
    assert np.abs(el[:, 0] - alt.degrees).max() < 0.01


# -- horizons --------------------------------------------------------------------------------------------------
def test_horizon_of_a_tilted_plane_is_exact_in_every_azimuth():
    from selenite.terrain.horizon import horizon_one

    n, res = 300, 5.0
    r, c = np.mgrid[0:n, 0:n].astype(float)
    gx, gy = 0.12, -0.07                       # dz/dx (east), dz/dy (north; rows grow southwards)
    z = gx * c * res + gy * (-r * res)
    for az in (0, 17, 45, 90, 133, 200, 271, 333):
        h = horizon_one(z, az, res, radius_m=1e15)
        a = np.radians(az)
        expected = np.degrees(np.arctan(gx * np.sin(a) + gy * np.cos(a)))
        inner = h[20:-20, 20:-20]
        assert np.nanmax(np.abs(inner - expected)) < 0.006, az   # int16 centidegrees: ≤ 0.005° rounding


def test_horizon_accounts_for_the_curvature_of_the_moon():
    """A 300 m wall 4 km away: the sphere's drop d²/2R (4.6 m) lowers it by 0.066°."""
    from selenite.terrain.horizon import horizon_one

    n, res = 1000, 5.0
    z = np.zeros((n, n))
    z[:, 900:] = 300.0
    h = horizon_one(z, 90.0, res)              # looking east, along the rows
    d = (900 - 100) * res
    expected = np.degrees(np.arctan((300.0 - d * d / (2 * MOON_RADIUS_M)) / d))
    flat = np.degrees(np.arctan(300.0 / d))
    assert abs(h[500, 100] - expected) < 0.006 and abs(flat - expected) > 0.06
    assert np.isnan(h[:, -1]).all() and not np.isnan(h[:, :-1]).any()   # only the east edge has nothing ahead
    for az, edge in ((0, (0, slice(None))), (180, (-1, slice(None))), (270, (slice(None), 0))):
        h = horizon_one(z, az, res)                # axis directions: sin/cos rounding must not lose a row
        assert np.isnan(h[edge]).all() and np.isnan(h).sum() == n, az


def test_an_observer_above_the_ground_sees_a_wall_lower_and_a_plane_to_its_dip():
    """From h above a plane, a wall of height W at distance d stands at atan((W − h − d²/2R)/d); with nothing
    ahead but the plane, the horizon is the dip of the curved Moon, −√(2h/R), reached √(2hR) away."""
    from selenite.terrain.horizon import horizon_one

    n, res = 1200, 20.0
    z = np.zeros((n, n))
    z[:, 1100:] = 300.0
    for h in (0.0, 2.0, 10.0, 50.0):
        east = horizon_one(z, 90.0, res, observer_m=h)
        d = (1100 - 100) * res
        assert east[600, 100] == pytest.approx(np.degrees(np.arctan((300.0 - h - d * d / (2 * MOON_RADIUS_M)) / d)),
                                               abs=0.006), h
        west = horizon_one(z, 270.0, res, observer_m=h)            # 22 km of plane behind: enough for h ≤ 50 m
        dip = -np.degrees(np.sqrt(2 * h / MOON_RADIUS_M))
        assert west[600, 1000] == pytest.approx(dip, abs=0.006 + 0.002), h
    # on rough ground the elevated eye never sees a higher horizon, and sees lower where the near ground decides
    rng = np.random.default_rng(3)
    rough = np.cumsum(np.cumsum(rng.normal(size=(300, 300)), 0), 1)
    low, high = horizon_one(rough, 33.0, 5.0), horizon_one(rough, 33.0, 5.0, observer_m=10.0)
    ok = np.isfinite(low)
    assert (high[ok] <= low[ok] + 0.005).all() and (high[ok] < low[ok] - 0.01).mean() > 0.3


# -- visibility ------------------------------------------------------------------------------------------------
def _fraction_series(info, col, row, track):
    """Visible fraction of the body's disk over flat ground, straight from the exact local direction."""
    from selenite.terrain.visibility import angular_radius_deg, disk_fraction, local_directions

    el, _ = local_directions(info, [col], [row], [0.0], track.position_km)
    rho = angular_radius_deg(track)
    return np.array([disk_fraction(e, r) for e, r in zip(el[:, 0], rho, strict=True)])


def _longest_run(mask):
    best = run = 0
    for m in mask:
        run = run + 1 if m else 0
        best = max(best, run)
    return best


def test_flat_ground_at_88s_sees_the_sun_and_earth_as_the_ephemeris_says(year):
    from selenite.terrain.horizon import horizons
    from selenite.terrain.visibility import visibility

    sun, earth = year
    n, res = 96, 20.0
    info = _info(n, res, 120.0, -88.0)
    z = np.zeros((n, n))
    vp = visibility(horizons(z, 72, res), z, info, sun, earth, 6.0)
    for col, row in ((48, 48), (10, 80), (90, 5)):
        fs, fe = _fraction_series(info, col, row, sun), _fraction_series(info, col, row, earth)
        assert vp.sun_pct[row, col] == pytest.approx(100 * fs.mean(), abs=0.05)
        month = round(29.530589 * 4)                   # instants of a synodic month at 6 h
        worst = 100 * np.convolve(fs, np.ones(month) / month, mode="valid").min()
        assert vp.sun_min_month_pct[row, col] == pytest.approx(worst, abs=0.05)
        assert vp.earth_pct[row, col] == pytest.approx(100 * fe.mean(), abs=0.05)
        assert vp.longest_dark_days[row, col] == pytest.approx(_longest_run(fs == 0) * 0.25, abs=0.25)
        assert vp.longest_sun_days[row, col] == pytest.approx(_longest_run(fs > 0) * 0.25, abs=0.25)
        both = _longest_run((fs > 0) & (fe > 0)) * 0.25
        assert vp.sun_earth_longest_days[row, col] == pytest.approx(both, abs=0.25)
        # a 6.5-day stay spans 27 instants at 6 h: the share of start times whose 27 instants all see the body
        stay = 27
        starts = len(fs) - stay + 1
        sun_ok = np.convolve(fs > 0, np.ones(stay), mode="valid") == stay
        both_ok = np.convolve((fs > 0) & (fe > 0), np.ones(stay), mode="valid") == stay
        assert vp.sun_stay_pct[row, col] == pytest.approx(100 * sun_ok.sum() / starts, abs=100 / starts)
        assert vp.sun_earth_stay_pct[row, col] == pytest.approx(100 * both_ok.sum() / starts, abs=100 / starts)
        assert 0 < vp.sun_earth_stay_pct[row, col] < vp.sun_stay_pct[row, col] < 100
    assert vp.psr.max() == 0


def _bowl(n, res, a, depth):
    """A spherical-cap crater of rim radius a and given depth centred in an n × n DEM (height 0 outside)."""
    rs = (a * a + depth * depth) / (2 * depth)            # sphere radius of the cap
    r, c = np.mgrid[0:n, 0:n].astype(float)
    rho2 = ((c - (n - 1) / 2) ** 2 + (r - (n - 1) / 2) ** 2) * res * res
    return np.where(rho2 < a * a, (rs - depth) - np.sqrt(np.clip(rs * rs - rho2, 0, None)), 0.0)


def test_a_polar_crater_floor_is_permanently_shadowed_exactly_below_the_computable_depth(year):
    """At the pole the Sun's elevation never exceeds e_max (≈1.59° + its radius); the centre of a crater of rim
    radius a is never lit when its rim stands higher than that: depth > a·tan(e_max + ρ) + a²/2R."""
    from selenite.terrain.horizon import horizons
    from selenite.terrain.visibility import angular_radius_deg, visibility

    sun, earth = year
    e_top = np.degrees(np.arcsin(-sun.direction[:, 2]) + np.radians(angular_radius_deg(sun))).max()
    n, res, a = 161, 5.0, 300.0
    info = _info(n, res, 0.0, -90.0)
    d_star = a * np.tan(np.radians(e_top)) + a * a / (2 * MOON_RADIUS_M)
    centre = n // 2
    for factor, dark in ((1.06, 1), (0.94, 0)):
        z = _bowl(n, res, a, factor * d_star)
        vp = visibility(horizons(z, 180, res), z, info, sun, earth, 6.0)
        assert vp.psr[centre, centre] == dark, (factor, d_star)


# -- attributes ------------------------------------------------------------------------------------------------
def _write_dem(path, z, res=5.0, lon=0.0, lat=-87.0, crs=PS, nodata=-9999.0):
    c = as_crs(crs)
    x0, y0 = lonlat_to_map(c, lon, lat)
    write_cog(path, z.astype(np.float32), crs=c, transform=Affine(res, 0, x0, 0, -res, y0), nodata=nodata)
    return path


def test_attributes_match_closed_forms_and_do_not_depend_on_the_chunking(tmp_path):
    from selenite.terrain.attributes import scale_factor
    from selenite.terrain.config import TerrainConfig
    from selenite.terrain.pipeline import ATTRIBUTES, run_attributes

    n, res = 600, 5.0
    r, c = np.mgrid[0:n, 0:n].astype(float)
    x, y = c * res, -r * res
    bowl = 0.002 * ((x - 1500) ** 2 + (y + 1500) ** 2)      # a paraboloid: curvature and roughness known
    z = np.where(c < 300, 0.2 * x - 0.1 * y, bowl)
    z[100:110, 100:110] = np.nan
    dem = _write_dem(tmp_path / "dem.tif", z, res)
    runs = {}
    for chunk in (256, 2048):
        runs[chunk] = run_attributes(dem, tmp_path / f"a{chunk}", TerrainConfig(chunk=chunk, baseline_m=20.0))
    for name in ATTRIBUTES:
        a = read_raster(runs[256] / f"{name}.tif")[0]
        b = read_raster(runs[2048] / f"{name}.tif")[0]
        assert np.array_equal(np.isnan(a), np.isnan(b)) and np.nanmax(np.abs(a - b)) < 1e-4, name
    get = {name: read_raster(runs[256] / f"{name}.tif")[0] for name in ATTRIBUTES}
    from selenite.geo.raster import raster_info

    k = scale_factor(raster_info(dem), 300, 300)              # map metres per true metre
    plane = (slice(150, 250), slice(150, 250))
    expected = np.degrees(np.arctan(k * np.hypot(0.2, 0.1)))
    assert np.abs(get["slope"][plane] - expected).max() < 1e-3
    assert np.abs(get["slope_baseline"][plane] - expected).max() < 1e-3
    assert np.nanmax(get["roughness"][plane]) < 1e-3
    # curvature of z = a(x² + y²): −2(D + E) = −4a per map metre² (scale factor squared for true metres)
    inner = (slice(200, 400), slice(350, 550))
    assert np.nanmedian(get["curvature"][inner]) == pytest.approx(-4 * 0.002 * k * k, rel=1e-3)
    # plane fit over 5 × 5 (20 m baseline at 5 m): RMS residual of a(x² + y²) is a·√(2·var(x²)), x ∈ {0, ±5, ±10}
    # map metres (heights are not rescaled by the projection)
    xs = np.array([-10, -5, 0, 5, 10.0])
    assert np.nanmedian(get["roughness"][inner]) == pytest.approx(0.002 * np.sqrt(2 * np.var(xs ** 2)), rel=1e-3)
    assert np.isnan(get["slope"][100:110, 100:110]).all() and np.isnan(get["tri"][99:111, 99:111]).all()
    manifest = json.loads((runs[256] / "attributes.json").read_text())
    assert manifest["window_px"] == 5


def test_aspect_is_measured_from_true_north(tmp_path):
    """A plane rising towards the pole (grid centre) faces away from it: downslope = true north everywhere."""
    from selenite.terrain.config import TerrainConfig
    from selenite.terrain.pipeline import run_attributes

    n, res = 200, 50.0
    c = as_crs(PS)
    r, cc = np.mgrid[0:n, 0:n].astype(float)
    x0 = -n * res / 2
    x, y = x0 + (cc + 0.5) * res, -x0 - (r + 0.5) * res
    z = -0.05 * np.hypot(x, y)                  # a cone around the pole, rising towards it
    path = tmp_path / "pole.tif"
    write_cog(path, z.astype(np.float32), crs=c, transform=Affine(res, 0, x0, 0, -res, -x0), nodata=-9999.0)
    run = run_attributes(path, tmp_path / "a", TerrainConfig(chunk=256))
    aspect = read_raster(run / "aspect.tif")[0]
    ring = (np.hypot(x, y) > 1000) & np.isfinite(aspect)
    dev = (aspect[ring] + 180) % 360 - 180
    assert np.abs(dev).max() < 0.5


# -- bad input -------------------------------------------------------------------------------------------------
def test_terrain_bad_input_is_one_line_and_exit_2(tmp_path):
    import rasterio

    z = np.zeros((64, 64), np.float32)
    raw = tmp_path / "nocrs.tif"
    with rasterio.open(raw, "w", driver="GTiff", width=64, height=64, count=1, dtype="float32") as ds:
        ds.write(z, 1)
    out = tmp_path / "o"
    assert_one_line_error(run_cli("terrain", "attributes", "--dem", raw, "--out", out), "no CRS")
    geo = tmp_path / "geo.tif"
    write_cog(geo, z, crs="IAU_2015:30100", transform=Affine(0.01, 0, 10, 0, -0.01, -80), nodata=-9999.0)
    assert_one_line_error(run_cli("terrain", "visibility", "--dem", geo, "--out", out), "reproject")
    empty = _write_dem(tmp_path / "empty.tif", np.full((64, 64), -9999.0))
    assert_one_line_error(run_cli("terrain", "attributes", "--dem", empty, "--out", out), "no valid heights")
    dem = _write_dem(tmp_path / "dem.tif", z)
    assert_one_line_error(run_cli("terrain", "visibility", "--dem", dem, "--start", "2049-06-01", "--end",
                                  "2051-01-01", "--out", out), "outside the offline ephemeris")
    assert_one_line_error(run_cli("terrain", "visibility", "--dem", dem, "--step", "often", "--out", out),
                          "time step")
    assert not out.exists() or not any(p.suffix == ".tif" for p in out.iterdir())


# -- comparison with a reference, reprojection ---------------------------------------------------------------
def test_compare_reports_chance_agreement_and_kappa_for_masks(tmp_path):
    from selenite.terrain.compare import compare_rasters

    rng = np.random.default_rng(4)
    a = (rng.random((200, 200)) < 0.1).astype(np.float32)
    b = (rng.random((200, 200)) < 0.1).astype(np.float32)        # independent: agreement ≈ chance, kappa ≈ 0
    pa, pb = _write_dem(tmp_path / "a.tif", a, nodata=255), _write_dem(tmp_path / "b.tif", b, nodata=255)
    c = compare_rasters(pa, pb)
    assert c["kind"] == "mask" and c["agreement"] > 0.8              # a high raw agreement ...
    assert abs(c["agreement"] - c["chance_agreement"]) < 0.01 and abs(c["kappa"]) < 0.03   # ... worth nothing
    assert compare_rasters(pa, pa)["kappa"] == 1.0
    z = rng.normal(size=(200, 200)).astype(np.float32)
    pz, pz2 = _write_dem(tmp_path / "z.tif", z), _write_dem(tmp_path / "z2.tif", z + 0.5)
    c = compare_rasters(pz, pz2)
    assert c["kind"] == "continuous" and c["bias"] == pytest.approx(-0.5, abs=1e-5)
    assert c["rmse"] == pytest.approx(0.5, abs=1e-5) and c["pearson_r"] == pytest.approx(1.0, abs=1e-6)
    proc = run_cli("terrain", "compare", pa, pb)
    assert proc.returncode == 0 and "chance" in proc.stdout


def test_a_geographic_dem_can_be_reprojected_and_then_used(tmp_path):
    """The global 0.35° DEM cropped to 80–90°S: reprojected to polar stereographic, heights preserved."""
    from selenite.geo.raster import raster_info
    from selenite.terrain.compare import reproject_dem

    lon = np.arange(-180, 180, 0.5) + 0.25
    lat = np.arange(-80, -90, -0.5) - 0.25
    zz = 100 * np.cos(np.radians(lon))[None, :] * np.ones((len(lat), 1))
    geo = tmp_path / "geo.tif"
    write_cog(geo, zz.astype(np.float32), crs="IAU_2015:30100", transform=Affine(0.5, 0, -180, 0, -0.5, -80),
              nodata=-32768.0)
    r = reproject_dem(geo, tmp_path / "ps.tif", res_m=2000.0)
    assert r["crs"].lower().startswith("moon") and r["pixel_m"] == 2000.0
    info = raster_info(tmp_path / "ps.tif")
    z, _ = read_raster(tmp_path / "ps.tif")
    c, rr = info.lonlat_to_pixel(np.array([0.0, 180.0]), np.array([-84.0, -84.0]))
    vals = z[np.round(rr).astype(int), np.round(c).astype(int)]
    assert vals[0] == pytest.approx(100, abs=3) and vals[1] == pytest.approx(-100, abs=3)


def test_far_field_from_a_coarse_dem_adds_a_distant_massif_exactly(tmp_path):
    """A flat 4 km tile at the pole and, 55–65 km to the grid east, a 3 km mesa in a 1 km 'global' DEM: every
    pixel's horizon towards it is the mesa's near edge seen over the curved Moon."""
    from selenite.terrain.farfield import apply_far_field
    from selenite.terrain.horizon import horizons, to_degrees

    n, res = 200, 20.0
    info = _info(n, res, 0.0, -90.0)
    z = np.zeros((n, n))
    # the far DEM on 250 m pixels aligned with the coarse grid (no resampling: the test isolates the far field)
    fr = 250.0
    xs = -122375.0 + fr * np.arange(980)
    X, Y = np.meshgrid(xs, -xs)
    mesa = np.where(np.hypot(X - 60000, Y) < 5000, 3000.0, 0.0)
    far = tmp_path / "far.tif"
    write_cog(far, mesa.astype(np.float32), crs=as_crs(PS), nodata=-32768.0,
              transform=Affine(fr, 0, -122500.0, 0, -fr, 122500.0))
    hz = horizons(z, 360, res)
    before = to_degrees(hz)
    meta = apply_far_field(hz, z, info, res, 1.0, -1.0, far, far_res_m=250.0, far_max_km=120.0)
    after = to_degrees(hz)
    assert np.nanmax(np.abs(before)) < 0.01 and meta["rays_with_terrain"] == 1.0

    from scipy.interpolate import RegularGridInterpolator

    # the far DEM knows the mesa as 250 m pixels: the reference reads it bilinearly too, along each pixel's own ray
    surface = RegularGridInterpolator((xs, xs), mesa, bounds_error=False, fill_value=0.0)   # (−y, x) axes

    def exact(r, c, az):
        x, y = info.pixel_to_map(c, r)
        d = np.arange(10.0, 120000, 10.0)
        px, py = x + np.sin(np.radians(az)) * d, y + np.cos(np.radians(az)) * d
        hh = surface(np.column_stack([-py, px]))
        return np.degrees(np.arctan((hh / d - d / (2 * MOON_RADIUS_M)).max()))

    for r, c, az in ((100, 100, 90), (0, 0, 90), (199, 199, 92), (37, 150, 86), (150, 20, 95)):
        assert after[az, r, c] == pytest.approx(exact(r, c, az), abs=0.02), (r, c, az)
    assert np.abs(after[270]).max() < 0.02             # nothing to the west (flat ground beyond: −d/2R)


def test_far_field_nodes_follow_the_coarse_dem_not_metres(tmp_path):
    """On a coarse DEM (240 m) with a 1.79 km far DEM the observer nodes are a far cell apart (not every 160 m),
    and an eye 100 m up sees the distant mesa lower by h/d."""
    from selenite.terrain.farfield import apply_far_field
    from selenite.terrain.horizon import horizons, to_degrees

    n, res, fr = 120, 240.0, 1786.875
    info = _info(n, res, 0.0, -90.0)
    z = np.zeros((n, n))
    xs = -200 * fr + fr * (np.arange(400) + 0.5)
    X, Y = np.meshgrid(xs, -xs)
    mesa = np.where(np.hypot(X - 60000, Y) < 8000, 3000.0, 0.0)
    far = tmp_path / "cap.tif"
    write_cog(far, mesa.astype(np.float32), crs=as_crs(PS), nodata=-32768.0,
              transform=Affine(fr, 0, -200 * fr, 0, -fr, 200 * fr))
    out = {}
    for h in (0.0, 100.0):
        hz = horizons(z, 90, res, observer_m=h)
        meta = apply_far_field(hz, z, info, res, 1.0, -1.0, far, far_max_km=120.0, observer_m=h)
        out[h] = to_degrees(hz)[22][50:75]             # azimuth 88°, rows whose rays cross the mesa well inside
    assert meta["coarse_m"] == pytest.approx(fr) and meta["node_px"] == round(fr / res)
    x = info.pixel_to_map(np.arange(n, dtype=float), np.zeros(n))[0]
    lowered = np.degrees(100.0 / (60000 - 8000 - x))                  # h/d towards the mesa's near edge
    assert np.nanmean(out[0.0] - out[100.0], axis=0) == pytest.approx(lowered, rel=0.1, abs=0.01)
    assert np.nanmin(out[0.0]) > 1.0                                    # the mesa is in every pixel's view


def test_the_linear_models_of_sun_and_earth_hold_across_a_block(year):
    """Blocks of a 240 m DEM are 128 px (30.7 km) a side; at the block's corners the linear model of the body's
    elevation and grid azimuth stays within 0.003° of the exact direction (the residual is ≈ (L/R)²/2)."""
    from selenite.terrain.visibility import block_layout, linearise, local_directions

    n, res = 256, 240.0
    info = _info(n, res, 45.0, -87.0)
    size, centres = block_layout((n, n), res)
    assert size == 128 and len(centres) == 4
    for track in year:
        bl = linearise(info, np.zeros((n, n)), track, size, centres)
        for b, (cc, rc) in enumerate(centres):
            for dc, dr in ((-63.5, -63.5), (63.5, 63.5), (63.5, -63.5)):
                el, az = local_directions(info, [cc + dc], [rc + dr], [0.0], track.position_km)
                c = bl.coef[b].astype(float)
                el_lin = c[:, 0] + c[:, 1] * dc + c[:, 2] * dr
                az_lin = c[:, 3] + c[:, 4] * dc + c[:, 5] * dr
                assert np.abs(el_lin - el[:, 0]).max() < 0.003
                assert np.abs((az_lin - az[:, 0] + 180) % 360 - 180).max() < 0.003


def test_the_fast_disk_fraction_matches_the_closed_form():
    from selenite.terrain.visibility import _arcsin_series, disk_fraction, disk_fraction_scaled

    rho = 0.2666
    for d in np.linspace(-0.3, 0.3, 4001):
        assert abs(disk_fraction_scaled(np.float32(d / rho)) - disk_fraction(d, rho)) < 1e-6
    # exactly nothing below the horizon and the whole disk above it, whatever the rounding
    assert disk_fraction_scaled(np.float32(-1.0)) == 0.0 and disk_fraction_scaled(np.float32(1.0)) == 1.0
    assert disk_fraction(0.0, rho) == pytest.approx(0.5) and disk_fraction(rho, rho) == 1.0
    y = np.linspace(0.0, np.sqrt(0.5), 1001)
    c = np.asarray(_arcsin_series(), float)
    assert np.abs(y * np.polyval(c[::-1], y * y) - np.arcsin(y)).max() < 3e-7


def test_visibility_run_writes_every_product_verifies_and_resumes(tmp_path):
    n = 96
    r, c = np.mgrid[0:n, 0:n].astype(float)
    z = 60.0 * np.exp(-((r - 48) ** 2 + (c - 48) ** 2) / 300.0)        # a hill
    dem = _write_dem(tmp_path / "hill.tif", z, res=20.0, lat=-88.5)
    out = tmp_path / "v"
    args = ("terrain", "visibility", "--dem", dem, "--start", "2026-01-01", "--end", "2026-03-01", "--step", "12h",
            "--azimuths", "36", "--out", out)
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    for name in ("horizon", "sun_visibility", "sun_min_month", "earth_visibility", "psr", "longest_dark_days",
                 "longest_sun_days", "sun_earth_longest_days", "sun_stay", "sun_earth_stay"):
        assert (out / f"{name}.tif").is_file(), name
    meta = json.loads((out / "visibility.json").read_text())
    assert meta["period"]["instants"] == 118 and meta["azimuths"] == 36
    hz, _ = read_raster(out / "horizon.tif", band=10)            # scale applied: degrees
    # the default eye is 2 m up: at the DEM's edge the only ground ahead is the next pixel, 20 m away
    assert np.nanmax(hz) < 10 and np.nanmin(hz) == pytest.approx(-np.degrees(np.arctan(2.0 / 20.0)), abs=0.05)
    assert meta["observer_height_m"] == 2.0
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 2
    assert run_cli("verify", out).returncode == 0
    before = json.loads((out / "manifest.json").read_text())["steps"]["visibility"]["seconds"]
    assert run_cli(*args).returncode == 0                          # resumed: the step is skipped
    assert json.loads((out / "manifest.json").read_text())["steps"]["visibility"]["seconds"] == before
    proc = run_cli("terrain", "visibility", "--dem", dem, "--start", "2026-01-01", "--end", "2026-01-05",
                   "--azimuths", "36", "--no-horizon-file", "--out", tmp_path / "v2")
    assert proc.returncode == 0 and not (tmp_path / "v2" / "horizon.tif").exists()


def test_horizon_towards_a_conical_peak_is_its_apex_seen_over_the_curved_moon():
    """Outside a cone of height H and base radius b, the steepest point towards the axis is the apex (the flank's
    slope H/b is shallower than the line of sight's H/r for r > b): e = atan((H − r²/2R)/r)."""
    from selenite.terrain.horizon import horizon_one

    n, res, H, b = 801, 10.0, 1500.0, 1000.0
    r, c = np.mgrid[0:n, 0:n].astype(float)
    ctr = (n - 1) / 2
    z = np.clip(H * (1 - np.hypot(r - ctr, c - ctr) * res / b), 0, None)
    east = horizon_one(z, 90.0, res)            # observers west of the cone, looking east along a row
    ne = horizon_one(z, 45.0, res)              # south-west of it, looking north-east along the diagonal
    for k in (150, 220, 300):                   # pixels from the apex
        d = k * res
        assert east[400, 400 - k] == pytest.approx(np.degrees(np.arctan((H - d * d / (2 * MOON_RADIUS_M)) / d)),
                                                   abs=0.006)
        d = k * res * np.sqrt(2)
        assert ne[400 + k, 400 - k] == pytest.approx(np.degrees(np.arctan((H - d * d / (2 * MOON_RADIUS_M)) / d)),
                                                     abs=0.006)


def test_tiled_visibility_matches_the_whole_dem_run(tmp_path):
    """Tiles whose halo covers the DEM give the whole-DEM products; a short halo, with the rest of the DEM as a
    decimated far field, stays close (the mode used where the horizons would not fit in memory)."""
    from selenite.terrain.config import TerrainConfig
    from selenite.terrain.pipeline import run_visibility

    n = 240
    r, c = np.mgrid[0:n, 0:n].astype(float)
    z = (400.0 * np.exp(-((r - 60) ** 2 + (c - 180) ** 2) / 900.0) - 300.0 * np.exp(-((r - 170) ** 2 + (c - 90) ** 2)
                                                                                      / 600.0))
    dem = _write_dem(tmp_path / "relief.tif", z, res=20.0, lat=-88.5)
    base = dict(start="2026-01-01", end="2026-04-01", step="12h", azimuths=72, far_res_m=100.0)
    whole = run_visibility(dem, tmp_path / "whole", TerrainConfig(**base))
    full_halo = run_visibility(dem, tmp_path / "t1", TerrainConfig(**base, tile=100, halo=240))
    short_halo = run_visibility(dem, tmp_path / "t2", TerrainConfig(**base, tile=80, halo=20))
    assert json.loads((full_halo / "visibility.json").read_text())["tiled"]["tiles"] == 9
    assert not (full_halo / "horizon.tif").exists()
    a = read_raster(whole / "sun_visibility.tif")[0]
    b = read_raster(full_halo / "sun_visibility.tif")[0]
    s = read_raster(short_halo / "sun_visibility.tif")[0]
    assert np.nanmax(np.abs(a - b)) < 0.05
    assert (read_raster(whole / "psr.tif")[0] == read_raster(full_halo / "psr.tif")[0]).mean() > 0.999
    assert np.nanmean(np.abs(a - s)) < 1.0 and np.nanmean(np.abs(a - s)) < 0.2 * np.nanmean(np.abs(a - 50))


# -- the real south pole against published references (LOLA 240 m shipped in the package) -----------------------
def _real_light(tmp_path, window, height_m, name):
    """Light of a window of the shipped LOLA south pole, the rest of it and the 1.8 km cap as the far field,
    over the 18.6-year cycle every 48 h (180 azimuths)."""
    from rasterio.windows import Window

    from selenite.embedded import south_pole
    from selenite.geo.raster import read_dem
    from selenite.terrain.ephemeris import body_tracks, parse_time, time_grid
    from selenite.terrain.farfield import apply_far_field
    from selenite.terrain.horizon import horizons
    from selenite.terrain.pipeline import PRODUCT_FIELDS
    from selenite.terrain.visibility import visibility

    sp = south_pole()
    z, info = read_dem(sp.dem, window=Window(*window))
    hz = horizons(z, 180, 240.0, observer_m=height_m)
    apply_far_field(hz, z, info, 240.0, 1.0, -1.0, [sp.dem, sp.cap], far_res_m=1000.0, observer_m=height_m)
    sun, earth = body_tracks(time_grid(parse_time("2026-01-01"), parse_time("2044-08-01"), 48.0))
    vp = visibility(hz, z, info, sun, earth, 48.0)
    out = tmp_path / name
    out.mkdir()
    for product, field in PRODUCT_FIELDS.items():
        psr = product == "psr"
        write_cog(out / f"{product}.tif", getattr(vp, field), crs=info.crs, transform=info.transform,
                  nodata=255 if psr else np.nan, **({"dtype": "uint8"} if psr else {}))
    return out


def test_cold_trap_psr_areas_on_the_real_pole_match_the_published_ones(tmp_path):
    """The 144 km around the pole hold five of the cold traps of Tye 2015 / Cannon 2020 whole: the connected PSR at
    each published centroid has the published area within ±15 %; Sverdrup's PSR spills past its rim circle, so
    counting the PSR inside the rim instead would miss a quarter of it."""
    from selenite.embedded import south_pole
    from selenite.terrain.references import psr_areas, read_cold_traps

    run = _real_light(tmp_path, (768 - 300, 768 - 300, 600, 600), 0.0, "pole")
    rows = {r["crater"]: r for r in psr_areas(run / "psr.tif", read_cold_traps(south_pole().cold_traps))}
    assert set(rows) == {"Shoemaker", "de Gerlache", "Slater", "Sverdrup", "Shackleton"}
    for r in rows.values():
        assert r["ratio"] == pytest.approx(1.0, abs=0.15), r
    assert rows["Sverdrup"]["in_rim_ratio"] < 0.85 and rows["Shackleton"]["theirs_km2"] == pytest.approx(233.698)


def test_light_at_wueller_sites_ranks_like_their_days_of_sunlight(tmp_path):
    """The Malapert – Mons Mouton window holds 17 of Wueller et al. 2026's sites; our Sun visibility ranks them as
    their days of sunlight do (their days: the mean of the eight yearly columns, whatever their case)."""
    from selenite.embedded import south_pole
    from selenite.terrain.references import read_reference_sites, site_correlations

    sites = read_reference_sites(south_pole().reference_sites)
    k2023 = sites[sites["name"] == "MMA_K2023"].iloc[0]
    assert k2023["sun_days"] == pytest.approx(np.mean([32, 21, 31, 17, 18, 31, 21, 30]))
    assert k2023["sun_earth_days"] == pytest.approx(25.0)
    run = _real_light(tmp_path, (720, 190, 390, 170), 2.0, "malapert")
    c = site_correlations(run, sites)
    sun = c["sun_visibility_vs_sun_days"]
    assert sun["n"] == 17 and sun["rho"] > 0.6 and sun["p_value"] < 0.01
    assert c["sun_earth_longest_days_vs_sun_earth_days"]["rho"] > 0.6
    inside = [v for v in c["values"]["sun_visibility"] if v is not None]
    assert len(inside) == 17 and 0 < min(inside) < max(inside) < 100
