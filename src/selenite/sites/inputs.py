"""Readers for the vector inputs of ``selenite sites``: crater catalogues and region polygons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from selenite.errors import InputError

# column names seen in public catalogues (Robbins 2019, LROC via DeepMoon, Head et al. 2010, selenite craters)
_LON = ("lon", "long", "longitude", "lon_circ_img", "lon_deg", "lon (deg)")
_LAT = ("lat", "latitude", "lat_circ_img", "lat_deg", "lat (deg)")
_D_M = ("diameter_m", "diam_m", "d_m")
_D_KM = ("diameter (km)", "diameter_km", "diam_km", "diam (km)", "diam_circ_img", "d_km", "diameter")


def _find(cols: dict[str, str], names: tuple[str, ...]) -> str | None:
    for n in names:
        if n in cols:
            return cols[n]
    return None


def read_craters(path: str | Path) -> pd.DataFrame:
    """A crater catalogue (CSV/TSV) → DataFrame with lon, lat (degrees) and diameter_m. Longitudes in 0–360
    or −180–180; diameters in km unless the column says metres (``diameter_m``: selenite craters output)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"crater catalogue not found: {p}")
    try:
        import io

        head = p.read_bytes()[:65536].decode("utf-8", "replace")
        old_mac = "\r" in head and "\n" not in head                  # old-Mac line endings
        first = head.replace("\r", "\n").split("\n", 1)[0]
        sep = next((c for c in ("\t", ",", ";", "|") if c in first), r"\s+")
        source = io.StringIO(p.read_text("utf-8").replace("\r", "\n")) if old_mac else p
        header = pd.read_csv(io.StringIO(head.replace("\r", "\n")), sep=sep, nrows=0)
        cols = {c.strip().lower(): c for c in header.columns}
        wanted = [c for c in (_find(cols, _LON), _find(cols, _LAT), _find(cols, _D_M), _find(cols, _D_KM))
                  if c is not None]
        df = pd.read_csv(source, sep=sep, usecols=wanted if len(wanted) >= 3 else None, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the crater catalogue {p}: {exc}") from None
    cols = {c.strip().lower(): c for c in df.columns}
    lon, lat = _find(cols, _LON), _find(cols, _LAT)
    dm, dkm = _find(cols, _D_M), _find(cols, _D_KM)
    if lon is None or lat is None or (dm is None and dkm is None):
        raise InputError(f"the crater catalogue {p} lacks columns: needs longitude ({'/'.join(_LON)}), latitude "
                         f"({'/'.join(_LAT)}) and diameter (diameter_m, or km: {'/'.join(_D_KM)}); "
                         f"found {', '.join(map(str, df.columns))}")
    out = pd.DataFrame({
        "lon": pd.to_numeric(df[lon], errors="coerce"),
        "lat": pd.to_numeric(df[lat], errors="coerce"),
        "diameter_m": (pd.to_numeric(df[dm], errors="coerce") if dm is not None
                       else 1000.0 * pd.to_numeric(df[dkm], errors="coerce")),
    })
    out["lon"] = np.mod(out["lon"] + 180.0, 360.0) - 180.0
    bad = ~(np.isfinite(out["lon"]) & out["lat"].between(-90, 90) & (out["diameter_m"] > 0))
    if bad.all():
        raise InputError(f"the crater catalogue {p} has no valid rows (lon, lat in degrees, diameter > 0)")
    return out[~bad].reset_index(drop=True)


def read_regions(path: str | Path):
    """Region polygons (GeoJSON, GeoPackage, shapefile) → GeoDataFrame in Moon lon/lat with a ``name`` column."""
    from selenite.geo.crs import GEOGRAPHIC, as_crs
    from selenite.geo.vector import read_vector

    gdf = read_vector(path)
    if not gdf.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        raise InputError(f"the region file {path} must hold polygons")
    name = next((c for c in gdf.columns if c.lower() in ("region", "name", "site", "label")), None)
    gdf = gdf.to_crs(as_crs(GEOGRAPHIC))
    gdf["name"] = gdf[name].astype(str) if name else [f"region {i + 1}" for i in range(len(gdf))]
    return gdf[["name", "geometry"]].reset_index(drop=True)
