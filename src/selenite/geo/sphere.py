"""Distances, bearings and areas on the lunar sphere (R = 1737.4 km).

Great-circle distance uses the haversine formula (stable at short range); polygon areas use the spherical
excess computed by PROJ's geodesic routines on a sphere (Karney 2013, J. Geodesy 87:43).
"""

from __future__ import annotations

import numpy as np
from pyproj import Geod

from selenite.geo.crs import MOON_RADIUS_M

_GEOD = Geod(a=MOON_RADIUS_M, b=MOON_RADIUS_M)


def great_circle_distance_m(lon1, lat1, lon2, lat2, radius_m: float = MOON_RADIUS_M):
    """Great-circle distance in metres between points given in degrees (broadcasts like numpy)."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    d = 2 * radius_m * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return d if d.ndim else float(d)


def initial_bearing_deg(lon1, lat1, lon2, lat2):
    """Initial bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2))
    y = np.sin(lon2 - lon1) * np.cos(lat2)
    x = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(lon2 - lon1)
    b = np.mod(np.degrees(np.arctan2(y, x)), 360.0)
    return b if b.ndim else float(b)


def destination(lon, lat, bearing_deg, distance_m, radius_m: float = MOON_RADIUS_M):
    """Point reached from (lon, lat) along a great circle with the given initial bearing and distance."""
    lon1, lat1, brg = (np.radians(np.asarray(v, dtype=float)) for v in (lon, lat, bearing_deg))
    delta = np.asarray(distance_m, dtype=float) / radius_m
    lat2 = np.arcsin(np.sin(lat1) * np.cos(delta) + np.cos(lat1) * np.sin(delta) * np.cos(brg))
    lon2 = lon1 + np.arctan2(np.sin(brg) * np.sin(delta) * np.cos(lat1), np.cos(delta) - np.sin(lat1) * np.sin(lat2))
    lon2 = np.mod(np.degrees(lon2) + 180.0, 360.0) - 180.0
    return lon2, np.degrees(lat2)


def polygon_area_m2(lon, lat) -> float:
    """Area in m² of a simple polygon on the sphere, vertices in degrees (any orientation)."""
    area, _ = _GEOD.polygon_area_perimeter(np.asarray(lon, float), np.asarray(lat, float))
    return abs(float(area))


def geometry_area_m2(geometry) -> float:
    """Area in m² of a shapely (Multi)Polygon whose coordinates are lon/lat degrees on the Moon sphere."""
    area, _ = _GEOD.geometry_area_perimeter(geometry)
    return abs(float(area))
