"""A map rendered from a DEM under the descent's Sun (``selenite locate run --dem``).

When the only map of the landing area is a DEM, or the orbital image was taken under another Sun, the frames and
the map share no appearance to match. Rendering the DEM under the Sun the descent camera saw brings them back to
one modality: Lambertian shading of the DEM's facets with the shadows cast by the relief (the horizon in the Sun's
direction from :func:`selenite.terrain.horizon.horizon_one`, the same kernel as ``terrain visibility``), plus a
little ambient light so the shadows keep some texture for the histogram specification.

The Sun is given (``--sun-az``, ``--sun-el``: true azimuth clockwise from north, elevation above the horizon, at
the landing area, as a mission computes them from the descent's time) or, when its azimuth is not given, estimated
by the map search itself: the DEM is rendered under ``SUN_AZIMUTHS`` and the search keeps the azimuth whose best
place on the map is supported most (every candidate's support is reported).
"""

from __future__ import annotations

import numpy as np

from selenite.errors import InputError
from selenite.geo.raster import read_dem, write_cog

SUN_AZIMUTHS = tuple(range(0, 360, 45))
DEFAULT_SUN_ELEVATION = 15.0
AMBIENT = 0.03


def _shading(z: np.ndarray, res: tuple[float, float], grid_az_deg: float, sun_el_deg: float,
             sign_x: float, sign_y: float) -> np.ndarray:
    from selenite.terrain.horizon import horizon_one

    gy, gx = np.gradient(z, res[1], res[0])          # per row (south for north-up), per column (east)
    # slopes in (east, north): a north-up grid has rows running south (sign_y = -1)
    dzdx, dzdy = gx * sign_x, gy * sign_y
    n = np.stack([-dzdx, -dzdy, np.ones_like(z)], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    az, el = np.radians(grid_az_deg), np.radians(sun_el_deg)
    s = np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])
    lit = np.clip(n @ s, 0.0, None)
    hz = horizon_one(np.nan_to_num(z, nan=float(np.nanmean(z))), grid_az_deg, float(np.sqrt(res[0] * res[1])),
                     sign_x=sign_x, sign_y=sign_y)
    lit[np.isfinite(hz) & (hz > sun_el_deg)] = 0.0
    return (AMBIENT + (1.0 - AMBIENT) * lit).astype(np.float32)


def render_dem_map(dem_path, out_path, sun_az_deg: float, sun_el_deg: float) -> dict:
    """Shaded relief of the DEM under a Sun at true azimuth/elevation (degrees), written as a float32 GeoTIFF
    on the DEM's grid (NaN where the DEM has no data). Returns what was rendered."""
    from selenite.terrain.attributes import grid_convergence_deg

    if not (0.0 < sun_el_deg < 90.0):
        raise InputError(f"--sun-el must be between 0 and 90 degrees, not {sun_el_deg}")
    z, info = read_dem(dem_path)
    if min(z.shape) < 32 or not np.isfinite(z).any():
        raise InputError(f"DEM {dem_path} is too small or has no data to render a map from")
    sign_x = float(np.sign(info.transform.a)) or 1.0
    sign_y = float(np.sign(info.transform.e)) or -1.0
    # grid azimuth of the Sun: true azimuth minus the true azimuth of grid north (at the DEM's centre)
    conv = float(grid_convergence_deg(info, np.array(info.width / 2), np.array(info.height / 2)))
    grid_az = (sun_az_deg - conv) % 360.0
    shade = _shading(z, (abs(info.transform.a), abs(info.transform.e)), grid_az, sun_el_deg, sign_x, sign_y)
    shade[~np.isfinite(z)] = np.nan
    write_cog(out_path, shade, crs=info.crs, transform=info.transform, nodata=float("nan"), dtype="float32",
              overviews=False)
    return {"sun_azimuth_deg": float(sun_az_deg) % 360.0, "sun_elevation_deg": float(sun_el_deg),
            "grid_azimuth_deg": grid_az, "grid_convergence_deg": conv, "dem": str(dem_path),
            "lit_fraction": float(np.mean(shade[np.isfinite(shade)] > AMBIENT + 1e-6))}
