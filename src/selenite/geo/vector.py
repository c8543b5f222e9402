"""Vector I/O with geopandas: GeoPackage, GeoParquet, GeoJSON, shapefiles, CRS-checked.

GeoJSON cannot name a lunar CRS (RFC 7946 fixes WGS 84 lon/lat), so GeoJSON read without a lunar CRS is
taken to hold planetocentric lon/lat on the IAU 2015 Moon sphere (IAU_2015:30100); every other format must
carry a lunar CRS.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from selenite.errors import InputError, VectorError
from selenite.geo.crs import GEOGRAPHIC, as_crs, is_lunar
from selenite.runs import atomic_path

_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}


def read_vector(path: str | Path, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a vector file into a GeoDataFrame in a lunar CRS (see the module note on GeoJSON)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"vector file not found: {p}")
    try:
        if p.suffix.lower() == ".parquet":
            gdf = gpd.read_parquet(p)
        else:
            gdf = gpd.read_file(p, layer=layer)
    except Exception as exc:  # noqa: BLE001 - pyogrio/pyarrow raise many types; all mean "unreadable"
        raise VectorError(f"cannot read {p} as vector data: {str(exc).splitlines()[0]}") from None
    if p.suffix.lower() in (".geojson", ".json") and (gdf.crs is None or gdf.crs.to_epsg() == 4326):
        gdf = gdf.set_crs(GEOGRAPHIC, allow_override=True)
    if gdf.crs is None:
        raise VectorError(f"{p} has no CRS")
    if not is_lunar(gdf.crs):
        raise VectorError(f"{p} is not in a lunar CRS (found '{gdf.crs.name}')")
    return gdf


def write_vector(gdf: gpd.GeoDataFrame, path: str | Path, layer: str | None = None) -> Path:
    """Write a GeoDataFrame atomically; the format follows the suffix (.gpkg, .parquet, .geojson)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if gdf.crs is None or not is_lunar(gdf.crs):
        raise VectorError("refusing to write vector data without a lunar CRS")
    with atomic_path(p) as tmp:
        if suffix == ".parquet":
            gdf.to_parquet(tmp)
        elif suffix in _DRIVERS:
            out = gdf
            if _DRIVERS[suffix] == "GeoJSON":
                out = gdf.to_crs(as_crs(GEOGRAPHIC))
            kwargs = {"layer": layer or p.stem} if _DRIVERS[suffix] == "GPKG" else {}
            out.to_file(tmp, driver=_DRIVERS[suffix], **kwargs)
        else:
            raise VectorError(f"unsupported vector format: {p.suffix} (use .gpkg, .parquet or .geojson)")
    return p
