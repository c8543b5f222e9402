"""selenite.geo: lunar CRSs, raster and vector I/O, and geometry on the lunar sphere.

The names below are loaded on first use, so importing one light submodule (``selenite.geo.camera``) does not
pull in rasterio, pyproj and geopandas.
"""

from importlib import import_module

_WHERE = {
    "GEOGRAPHIC": "crs", "MOON_RADIUS_M": "crs", "SOUTH_POLAR_STEREOGRAPHIC": "crs", "as_crs": "crs",
    "is_lunar": "crs", "local_stereographic": "crs", "lonlat_to_map": "crs", "map_to_lonlat": "crs",
    "normalize_lon": "crs", "polar_stereographic": "crs", "require_lunar": "crs",
    "RasterInfo": "raster", "open_dataarray": "raster", "open_raster": "raster", "raster_info": "raster",
    "read_dem": "raster", "read_raster": "raster", "write_cog": "raster",
    "destination": "sphere", "geometry_area_m2": "sphere", "great_circle_distance_m": "sphere",
    "polygon_area_m2": "sphere",
    "read_vector": "vector", "write_vector": "vector",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"selenite.geo.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'selenite.geo' has no attribute {name!r}")
