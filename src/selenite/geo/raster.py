"""Raster I/O: one ``open_raster`` for GeoTIFF and PDS3, windowed reads, DEM heights, COG writing.

Pixel convention everywhere in selenite: (col, row) = (0, 0) is the *centre* of the top-left pixel, so the
map coordinates of pixel (c, r) are ``transform * (c + 0.5, r + 0.5)``.

DEM heights are metres above the lunar reference sphere (R = 1737.4 km, LOLA's convention). PDS3 LOLA
products (e.g. LDEM_4) label their values as radius = DN × 0.5 + 1737400; ``read_dem`` keeps the scale and
drops an offset equal to the reference radius, so it returns heights either way.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from pyproj import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from selenite.errors import InputError, RasterError
from selenite.geo.crs import MOON_RADIUS_M, as_crs, lonlat_to_map, map_to_lonlat, require_lunar
from selenite.runs import atomic_path


@dataclass(frozen=True)
class RasterInfo:
    """Georeferencing of a raster: CRS, affine transform (pixel corner → map), size, nodata, scale, offset."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int
    nodata: float | None = None
    scale: float = 1.0
    offset: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in map units."""
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (self.width, self.height)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    @property
    def ground_res_m(self) -> float:
        """Pixel size on the ground (metres): map units of a projected CRS, or the latitude spacing of a
        geographic one."""
        res = abs(self.transform.e)
        if self.crs is not None and as_crs(self.crs).is_geographic:
            return float(np.radians(res) * MOON_RADIUS_M)
        return res

    def pixel_to_map(self, col, row):
        """Map x, y of pixel coordinates (0, 0 = centre of the top-left pixel)."""
        col = np.asarray(col, float) + 0.5
        row = np.asarray(row, float) + 0.5
        t = self.transform
        return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f

    def map_to_pixel(self, x, y):
        """Fractional (col, row) of map coordinates (0, 0 = centre of the top-left pixel)."""
        inv = ~self.transform
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        col = inv.a * x + inv.b * y + inv.c - 0.5
        row = inv.d * x + inv.e * y + inv.f - 0.5
        return col, row

    def lonlat_to_pixel(self, lon, lat):
        x, y = lonlat_to_map(self.crs, lon, lat)
        return self.map_to_pixel(x, y)

    def pixel_to_lonlat(self, col, row):
        x, y = self.pixel_to_map(col, row)
        return map_to_lonlat(self.crs, x, y)


def _resolve_path(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"raster not found: {p}")
    if p.is_dir():
        raise InputError(f"expected a raster file, got a folder: {p}")
    if p.suffix.upper() == ".IMG":  # PDS3 detached label beside the image
        for suffix in (".LBL", ".lbl"):
            if p.with_suffix(suffix).is_file():
                return p.with_suffix(suffix)
    return p


@contextlib.contextmanager
def open_raster(path: str | Path, *, require_crs: bool = True) -> Iterator[rasterio.DatasetReader]:
    """Open a GeoTIFF or PDS3 raster, checking that it is readable and (by default) in a lunar CRS.

    Raises InputError / RasterError with one clear line for a missing, unreadable or non-lunar raster.
    """
    p = _resolve_path(path)
    try:
        with warnings.catch_warnings():   # a missing georeference is reported as one clear error below
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(p)
    except RasterioIOError:
        raise RasterError(f"cannot read {p} as a raster (not a GeoTIFF/PDS3 file, or corrupt)") from None
    try:
        if require_crs:
            require_lunar(ds.crs, f"raster {p}")
        yield ds
    finally:
        ds.close()


def info_of(ds: rasterio.DatasetReader, band: int = 1) -> RasterInfo:
    crs = as_crs(ds.crs) if ds.crs is not None else None
    return RasterInfo(
        crs=crs, transform=ds.transform, width=ds.width, height=ds.height, nodata=ds.nodatavals[band - 1],
        scale=float(ds.scales[band - 1] or 1.0), offset=float(ds.offsets[band - 1] or 0.0),
    )


def raster_info(path: str | Path, *, require_crs: bool = True) -> RasterInfo:
    with open_raster(path, require_crs=require_crs) as ds:
        return info_of(ds)


def _window_transform(info: RasterInfo, window: Window | None) -> RasterInfo:
    if window is None:
        return info
    t = rasterio.windows.transform(window, info.transform)
    return RasterInfo(info.crs, t, int(window.width), int(window.height), info.nodata, info.scale, info.offset)


def read_raster(
    path: str | Path, *, band: int = 1, window: Window | None = None, apply_scale: bool = True,
    require_crs: bool = True,
) -> tuple[np.ndarray, RasterInfo]:
    """Read one band (optionally a window) as float64 with nodata → NaN; scale/offset applied if asked."""
    with open_raster(path, require_crs=require_crs) as ds:
        info = info_of(ds, band)
        try:
            raw = ds.read(band, window=window)
        except (RasterioIOError, ValueError) as exc:
            raise RasterError(f"cannot read band {band} of {path}: {exc}") from None
    data = raw.astype(np.float64)
    if info.nodata is not None and not np.isnan(info.nodata):
        data[raw == info.nodata] = np.nan
    if apply_scale:
        data = data * info.scale + info.offset
    return data, _window_transform(info, window)


def read_dem(path: str | Path, *, window: Window | None = None,
             require_crs: bool = True) -> tuple[np.ndarray, RasterInfo]:
    """Read a DEM as heights in metres above the 1737.4 km reference sphere (nodata → NaN)."""
    data, info = read_raster(path, window=window, apply_scale=False, require_crs=require_crs)
    offset = info.offset
    if abs(offset - MOON_RADIUS_M) < 1.0:  # radius-valued product (PDS3 LOLA): keep heights
        offset = 0.0
    return data * info.scale + offset, info


def open_dataarray(path: str | Path, chunks: int | dict | str = 1024):
    """Open a large raster lazily as an xarray DataArray backed by dask (rioxarray), CRS checked."""
    import rioxarray  # noqa: F401 - registers the .rio accessor

    p = _resolve_path(path)
    with open_raster(p):
        pass
    try:
        return rioxarray.open_rasterio(p, chunks=chunks, masked=True)
    except RasterioIOError:
        raise RasterError(f"cannot read {p} as a raster") from None


def _describe(dst, scale: float | None, band_descriptions: list[str] | None) -> None:
    if scale is not None:
        dst.scales = [scale] * dst.count
    for i, desc in enumerate(band_descriptions or [], start=1):
        dst.set_band_description(i, desc)


def write_cog(
    path: str | Path, data: np.ndarray, *, crs: object, transform: Affine, nodata: float | None = None,
    dtype: str | None = None, band_descriptions: list[str] | None = None, compress: str = "DEFLATE",
    scale: float | None = None, overviews: bool = True, options: dict | None = None,
) -> Path:
    """Write a (bands, rows, cols) or (rows, cols) array as a Cloud-Optimized GeoTIFF, atomically; ``scale``
    is recorded as every band's scale factor (value = stored × scale)."""
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    dtype = dtype or arr.dtype.name
    if nodata is not None and np.issubdtype(np.dtype(dtype), np.floating):
        arr = np.where(np.isnan(arr), nodata, arr)
    crs_rio = rasterio.crs.CRS.from_wkt(as_crs(crs).to_wkt())
    cog_options = dict(compress=compress, BLOCKSIZE=512,
                       OVERVIEWS="AUTO" if overviews and min(arr.shape[1:]) > 1024 else "NONE", **(options or {}))
    with atomic_path(path) as tmp:
        if arr.nbytes <= 256 * 2**20:
            profile = dict(driver="COG", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=dtype,
                           crs=crs_rio, transform=transform, nodata=nodata, **cog_options)
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(arr.astype(dtype, copy=False))
                _describe(dst, scale, band_descriptions)
        else:
            # large: band by band into a tiled GeoTIFF on disk, then GDAL's COG copy streams it (no in-memory
            # copy of the whole raster)
            stage = Path(str(tmp) + ".stage.tif")
            try:
                with rasterio.open(stage, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                                   count=arr.shape[0], dtype=dtype, crs=crs_rio, transform=transform, nodata=nodata,
                                   tiled=True, blockxsize=512, blockysize=512, compress="NONE",
                                   BIGTIFF="YES") as dst:
                    for b in range(arr.shape[0]):
                        dst.write(arr[b].astype(dtype, copy=False), b + 1)
                    _describe(dst, scale, band_descriptions)
                rasterio.shutil.copy(stage, tmp, driver="COG", **cog_options)
            finally:
                stage.unlink(missing_ok=True)
    return Path(path)
