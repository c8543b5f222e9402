"""selenite.geo: lunar CRSs, raster and vector I/O, and geometry on the lunar sphere."""

from selenite.geo.crs import (
    GEOGRAPHIC,
    MOON_RADIUS_M,
    SOUTH_POLAR_STEREOGRAPHIC,
    as_crs,
    is_lunar,
    local_stereographic,
    lonlat_to_map,
    map_to_lonlat,
    normalize_lon,
    polar_stereographic,
    require_lunar,
)
from selenite.geo.raster import (
    RasterInfo,
    open_dataarray,
    open_raster,
    raster_info,
    read_dem,
    read_raster,
    write_cog,
)
from selenite.geo.sphere import destination, geometry_area_m2, great_circle_distance_m, polygon_area_m2
from selenite.geo.vector import read_vector, write_vector

__all__ = [
    "GEOGRAPHIC", "MOON_RADIUS_M", "SOUTH_POLAR_STEREOGRAPHIC", "RasterInfo", "as_crs", "destination",
    "geometry_area_m2", "great_circle_distance_m", "is_lunar", "local_stereographic", "lonlat_to_map",
    "map_to_lonlat", "normalize_lon", "open_dataarray", "open_raster", "polar_stereographic",
    "polygon_area_m2", "raster_info", "read_dem", "read_raster", "read_vector", "require_lunar", "write_cog",
    "write_vector",
]
