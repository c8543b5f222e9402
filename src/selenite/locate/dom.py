"""The orbital map (DOM): georeference, a local metric frame, decimated reads and feature indexing.

Matching and alignment happen in a *local* conformal frame: a stereographic projection of the Moon centred on
the found landing area (metres, x east, y north). DOM pixels are carried there through the DOM's own CRS, so a
DOM in any lunar CRS (equirectangular, polar stereographic, ...) is handled without assuming square pixels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning

from selenite.errors import InputError
from selenite.geo.crs import local_stereographic
from selenite.geo.raster import RasterInfo, raster_info


@dataclass
class Dom:
    """The map. ``georeferenced``: its CRS and transform are real (lon/lat can be given). A plain image (PNG,
    JPEG, TIFF without CRS) gets a local metric frame instead: x east from its left edge and y north from its top
    edge (north up), ``gsd_m`` metres per pixel when given (``gsd_known``), else 1 unit per pixel."""

    path: str
    info: RasterInfo
    georeferenced: bool = True
    gsd_known: bool = True
    north_up: bool = True

    @classmethod
    def open(cls, path, gsd_m: float | None = None, north_up: bool = True) -> Dom:
        from selenite.geo.raster import open_raster

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with open_raster(path, require_crs=False) as ds:   # missing or unreadable: one clear error
                plain = ds.crs is None and ds.transform.is_identity
                w, h = ds.width, ds.height
        if not plain:
            if gsd_m is not None:
                raise InputError(f"DOM {path} is georeferenced; --dom-gsd is only for a plain image")
            info = raster_info(path)          # refuses a non-lunar raster
            if info.transform.is_identity:
                raise InputError(f"DOM {path} has no geotransform")
            return cls(str(path), info)
        if gsd_m is not None and not (np.isfinite(gsd_m) and gsd_m > 0):
            raise InputError(f"--dom-gsd must be a positive number of metres per pixel, not {gsd_m}")
        from rasterio.transform import Affine

        g = 1.0 if gsd_m is None else float(gsd_m)
        info = RasterInfo(local_stereographic(0.0, 0.0), Affine(g, 0, 0, 0, -g, 0), w, h)
        return cls(str(path), info, georeferenced=False, gsd_known=gsd_m is not None, north_up=north_up)

    @property
    def units(self) -> str:
        """The unit of every metric output: metres, or map pixels when a plain map's scale is not known."""
        return "m" if self.gsd_known else "map px"

    def map_offset(self, col: float, row: float) -> dict:
        """Position from a plain map's top-left corner: right and down, in its units."""
        g = abs(self.info.transform.a)
        return {"right": (col + 0.5) * g, "down": (row + 0.5) * g, "units": self.units}

    @property
    def shape(self) -> tuple[int, int]:
        return self.info.height, self.info.width

    def local_frame(self, col: float, row: float) -> LocalFrame:
        lon, lat = self.info.pixel_to_lonlat(np.array([col]), np.array([row]))
        return LocalFrame(self, float(lon[0]), float(lat[0]))

    def pixel_size_m(self, col: float | None = None, row: float | None = None) -> float:
        """Ground size of a DOM pixel (geometric mean of its two sides) in metres, at a pixel (default centre)."""
        col = self.info.width / 2 if col is None else col
        row = self.info.height / 2 if row is None else row
        J = self.local_frame(col, row).jacobian(col, row)
        return float(np.sqrt(abs(np.linalg.det(J))))

    def read(self, level: int = 0, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Band 1 as float32, decimated by 2**level (area average); window = (col0, row0, width, height) at level 0."""
        f = 2 ** level
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(self.path)
        with ds:
            col0, row0, w, h = (0, 0, ds.width, ds.height) if window is None else window
            out_h, out_w = max(int(round(h / f)), 1), max(int(round(w / f)), 1)
            arr = np.full((out_h, out_w), np.nan, np.float32)
            # the part of the window inside the raster, read and decimated into place
            c0, r0 = max(col0, 0), max(row0, 0)
            c1, r1 = min(col0 + w, ds.width), min(row0 + h, ds.height)
            if c1 <= c0 or r1 <= r0:
                return arr
            oc0, or0 = int(round((c0 - col0) / f)), int(round((r0 - row0) / f))
            oc1, or1 = int(round((c1 - col0) / f)), int(round((r1 - row0) / f))
            if oc1 <= oc0 or or1 <= or0:
                return arr
            data = ds.read(1, window=rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0),
                           out_shape=(or1 - or0, oc1 - oc0), resampling=Resampling.average, masked=True)
            arr[or0:or1, oc0:oc1] = np.ma.filled(data.astype(np.float32), np.nan)
        return arr


def dom_to_uint8(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stretch a DOM crop to 8 bit (0.5–99.5 percentiles); returns it and the valid mask."""
    valid = np.isfinite(arr)
    if not valid.any():
        return np.zeros(arr.shape, np.uint8), valid
    lo, hi = np.percentile(arr[valid], [0.5, 99.5])
    out = np.clip((np.nan_to_num(arr, nan=lo) - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
    return out, valid


class LocalFrame:
    """Local stereographic metres around (lon0, lat0) and conversions from/to DOM pixels."""

    def __init__(self, dom: Dom, lon0: float, lat0: float):
        self.dom = dom
        self.lon0, self.lat0 = lon0, lat0
        self.crs = local_stereographic(lon0, lat0)
        self._to_local = Transformer.from_crs(dom.info.crs, self.crs, always_xy=True)
        self._to_dom = Transformer.from_crs(self.crs, dom.info.crs, always_xy=True)

    def pixel_to_local(self, col, row) -> np.ndarray:
        x, y = self.dom.info.pixel_to_map(np.asarray(col, float), np.asarray(row, float))
        e, n = self._to_local.transform(x, y)
        return np.stack([np.asarray(e, float), np.asarray(n, float)], axis=-1)

    def local_to_pixel(self, e, n) -> np.ndarray:
        x, y = self._to_dom.transform(np.asarray(e, float), np.asarray(n, float))
        c, r = self.dom.info.map_to_pixel(np.asarray(x, float), np.asarray(y, float))
        return np.stack([np.asarray(c, float), np.asarray(r, float)], axis=-1)

    def local_to_map(self, e, n) -> tuple[np.ndarray, np.ndarray]:
        return self._to_dom.transform(np.asarray(e, float), np.asarray(n, float))

    def jacobian(self, col: float, row: float, h: float = 0.5) -> np.ndarray:
        """d(east, north)/d(col, row) in metres per pixel at a DOM pixel."""
        p = self.pixel_to_local(np.array([col - h, col + h, col, col]), np.array([row, row, row - h, row + h]))
        return np.column_stack([(p[1] - p[0]) / (2 * h), (p[3] - p[2]) / (2 * h)])


def tile_features(image: np.ndarray, valid: np.ndarray, extractor, per_mpx: int, tile: int = 1024,
                  overlap: int = 48):
    """Features of a large image, extracted tile by tile (keypoints in the image's pixel grid)."""
    from selenite.locate.features import Features

    h, w = image.shape
    kps, descs, scores = [], [], []
    step = tile - overlap
    inner = cv2.erode(valid.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    for r0 in range(0, max(h - overlap, 1), step):
        for c0 in range(0, max(w - overlap, 1), step):
            sub = image[r0:r0 + tile, c0:c0 + tile]
            if min(sub.shape) < 32 or not valid[r0:r0 + tile, c0:c0 + tile].any():
                continue
            k = max(int(per_mpx * sub.size / 1e6), 64)
            f = extractor(sub, k)
            if not len(f):
                continue
            kp = f.keypoints + [c0, r0]
            # keep each keypoint in exactly one tile: the one whose core (half overlap trimmed) holds it
            lo_c = c0 + (overlap // 2 if c0 else 0)
            lo_r = r0 + (overlap // 2 if r0 else 0)
            hi_c = c0 + tile - (overlap // 2 if c0 + tile < w else 0)
            hi_r = r0 + tile - (overlap // 2 if r0 + tile < h else 0)
            keep = (kp[:, 0] >= lo_c) & (kp[:, 0] < hi_c) & (kp[:, 1] >= lo_r) & (kp[:, 1] < hi_r)
            ci = np.clip(kp[:, 0].round().astype(int), 0, w - 1)
            ri = np.clip(kp[:, 1].round().astype(int), 0, h - 1)
            keep &= inner[ri, ci]
            kps.append(kp[keep])
            descs.append(f.descriptors[keep])
            scores.append(f.scores[keep])
    if not kps:
        return Features(np.zeros((0, 2)), np.zeros((0, 64), np.float32), np.zeros(0, np.float32))
    return Features(np.concatenate(kps), np.concatenate(descs), np.concatenate(scores))
