"""Per-cell features of ``selenite sites``: topography from a DEM, craters from a catalogue, light and Earth
visibility from rasters, all reduced onto one :class:`~selenite.sites.grid.CellGrid`.

**Topography** streams: the DEM is read block by block of cells (``block_cells`` × ``block_cells`` cells plus a
one-pixel halo) on a pixel grid aligned to the cells, k × k pixels per cell with k ≈ cell / DEM resolution
(read directly when the DEM is already on such a grid, otherwise warped bilinearly by GDAL), and one numba pass
per block accumulates every statistic; dask schedules the blocks (threads, or a distributed cluster), so
memory is bounded by the block size whatever the DEM's size. Slopes are Horn's 3 × 3 differences at the DEM's
resolution, on the ground (the map gradient times the cell's scale factor); the cell plane is the least-squares
plane through all of a cell's heights (its tilt is the slope at the cell's baseline, its RMS residual the
cell's relief beyond a plane); local roughness is the RMS residual to the 3 × 3 plane at each pixel; TRI is
Riley et al. (1999)'s.

**Craters** (lon, lat, diameter): counts and densities of the centres in each cell, the fraction of the cell
inside crater rims (8 × 8 sample points per cell), the largest crater touching a sample point, and the
distance from the cell centre to the nearest rim of a large crater.

**Light and Earth** (``selenite terrain`` products, or PGDA's): mean, minimum and maximum per cell of each
raster warped onto k' × k' samples per cell (nearest neighbour for the PSR mask), and the distance from the
cell centre to the nearest PSR sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from selenite.errors import InputError
from selenite.geo.crs import MOON_RADIUS_M, equivalent, lonlat_to_map
from selenite.geo.raster import open_raster, raster_info
from selenite.sites.grid import CellGrid, scale_factor

DEM_FEATURES = (
    "elevation_mean_m", "elevation_std_m", "elevation_min_m", "elevation_max_m", "relief_m",
    "slope_mean_deg", "slope_std_deg", "slope_min_deg", "slope_max_deg",
    "slope_gt5_frac", "slope_gt10_frac", "slope_gt15_frac",
    "cell_tilt_deg", "cell_roughness_m", "roughness_mean_m", "roughness_max_m", "tri_mean_m", "tri_max_m",
    "equator_facing_frac", "dem_valid_frac",
)
CRATER_FEATURES = ("crater_count", "crater_density_km2", "crater_cover_frac", "crater_max_diameter_m",
                   "crater_mean_diameter_m", "large_crater_rim_km")
RASTER_SOURCES = {
    # option name → (features: (statistic, column)), resampling. slope / roughness rasters (e.g. PGDA's) replace
    # the DEM's own values of those columns
    "illumination": ((("mean", "sun_mean_pct"), ("min", "sun_min_pct"), ("max", "sun_max_pct")), "bilinear"),
    "worst_month": ((("mean", "sun_worst_month_pct"),), "bilinear"),
    "earth": ((("mean", "earth_mean_pct"), ("min", "earth_min_pct")), "bilinear"),
    "psr": ((("mean", "psr_frac"),), "nearest"),
    "sun_earth": ((("max", "sun_earth_days_max"),), "bilinear"),
    # stays (`selenite terrain` sun_stay.tif / sun_earth_stay.tif): the best spot of the cell and its mean
    "sun_stay": ((("max", "sun_stay_max_pct"), ("mean", "sun_stay_mean_pct")), "bilinear"),
    "sun_earth_stay": ((("max", "sun_earth_stay_max_pct"), ("mean", "sun_earth_stay_mean_pct")), "bilinear"),
    "dark": ((("min", "dark_days_min"),), "bilinear"),
    "slope": ((("mean", "slope_mean_deg"), ("min", "slope_min_deg"), ("max", "slope_max_deg")), "bilinear"),
    "roughness": ((("mean", "roughness_mean_m"), ("max", "roughness_max_m")), "bilinear"),
}
NOT_MODEL_FEATURES = ("dem_valid_frac",)
"""Columns that describe data coverage, not the ground: never given to the model."""


@dataclass(frozen=True)
class PixelFrame:
    """How a raster is read onto the grid: k × k pixels per cell; ``direct`` when it is already on such a grid
    (same CRS, pixel size and alignment), with the row/column of the grid's top-left pixel in the raster."""

    k: int
    direct: bool
    row0: int = 0
    col0: int = 0


def pixel_frame(info, grid: CellGrid, max_k: int) -> PixelFrame:
    res = info.ground_res_m
    k = int(min(max(round(grid.cell_m / res), 1), max_k))
    p = grid.cell_m / k
    t = info.transform
    same = equivalent(info.crs, grid.crs) and abs(t.b) < 1e-9 and abs(t.d) < 1e-9
    if same and abs(abs(t.a) - p) < 1e-6 * p and abs(abs(t.e) - p) < 1e-6 * p and t.a > 0 and t.e < 0:
        c = (grid.x0 - t.c) / p
        r = (t.f - grid.y0) / p
        if abs(c - round(c)) < 1e-6 and abs(r - round(r)) < 1e-6:
            return PixelFrame(k, True, int(round(r)), int(round(c)))
    return PixelFrame(k, False)


def _height_offset(info) -> float:
    """PDS3 LOLA products store radii: heights are radius − 1737.4 km (as selenite.geo.raster.read_dem)."""
    return 0.0 if abs(info.offset - MOON_RADIUS_M) < 1.0 else info.offset


def read_on_grid(path, grid: CellGrid, frame: PixelFrame, r0: int, r1: int, c0: int, c1: int, halo: int = 0,
                 resampling: str = "bilinear", heights: bool = False) -> np.ndarray:
    """Cells rows r0:r1, cols c0:c1 of the grid as a float64 array of (r1−r0)·k + 2·halo rows (and likewise
    columns) of the raster, nodata and outside → NaN; scale (and offset, or the height offset of a DEM) applied."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    k = frame.k
    h = (r1 - r0) * k + 2 * halo
    w = (c1 - c0) * k + 2 * halo
    out = np.full((h, w), np.nan)
    with open_raster(path) as ds:
        nodata = ds.nodatavals[0]
        scale = float(ds.scales[0] or 1.0)
        offset = float(ds.offsets[0] or 0.0)
        if heights:
            offset = 0.0 if abs(offset - MOON_RADIUS_M) < 1.0 else offset
        if frame.direct:
            rr0 = frame.row0 + r0 * k - halo
            cc0 = frame.col0 + c0 * k - halo
            a0, b0 = max(rr0, 0), max(cc0, 0)
            a1, b1 = min(rr0 + h, ds.height), min(cc0 + w, ds.width)
            if a1 <= a0 or b1 <= b0:
                return out
            raw = ds.read(1, window=Window(b0, a0, b1 - b0, a1 - a0))
            block = raw.astype(np.float64)
            if nodata is not None and not np.isnan(nodata):
                block[raw == nodata] = np.nan
            out[a0 - rr0:a1 - rr0, b0 - cc0:b1 - cc0] = block * scale + offset
            return out
        p = grid.cell_m / k
        transform = rasterio.Affine(p, 0, grid.x0 + c0 * grid.cell_m - halo * p,
                                    0, -p, grid.y0 - r0 * grid.cell_m + halo * p)
        crs = rasterio.crs.CRS.from_wkt(grid.crs.to_wkt())
        src_nodata = nodata if nodata is not None else None
        with WarpedVRT(ds, crs=crs, transform=transform, width=w, height=h,
                       resampling=getattr(Resampling, resampling), src_nodata=src_nodata, nodata=np.nan,
                       dtype="float64") as vrt:
            block = vrt.read(1)
    return block * scale + offset


@numba.njit(parallel=True, cache=True)
def _dem_cell_stats(z, k, p, kscale, ux, uy, out):
    """One pass over a block of cells: z has k × k pixels per cell and a one-pixel halo; ``kscale`` the scale
    factor of each cell, (ux, uy) the unit map vector from the pole to the cell (equator-wards)."""
    nr = out.shape[1]
    nc = out.shape[2]
    deg = 180.0 / math.pi
    for ci in numba.prange(nr):
        for cj in range(nc):
            ks = kscale[ci, cj]
            ref = np.nan
            n = 0
            s1 = 0.0
            s2 = 0.0
            zmin = np.inf
            zmax = -np.inf
            sa = 0.0
            sb = 0.0
            saa = 0.0
            sab = 0.0
            sbb = 0.0
            saz = 0.0
            sbz = 0.0
            ns = 0
            sl1 = 0.0
            sl2 = 0.0
            slmin = np.inf
            slmax = -np.inf
            g5 = 0
            g10 = 0
            g15 = 0
            neq = 0
            nl = 0
            rs = 0.0
            rmax = -np.inf
            ts = 0.0
            tmax = -np.inf
            for a in range(k):
                r = 1 + ci * k + a
                for b in range(k):
                    c = 1 + cj * k + b
                    hgt = z[r, c]
                    if hgt != hgt:
                        continue
                    if ref != ref:
                        ref = hgt
                    d = hgt - ref
                    n += 1
                    s1 += d
                    s2 += d * d
                    zmin = min(zmin, hgt)
                    zmax = max(zmax, hgt)
                    sa += a
                    sb += b
                    saa += a * a
                    sab += a * b
                    sbb += b * b
                    saz += a * d
                    sbz += b * d
                    # the 3 × 3 neighbourhood
                    full = True
                    m = 0.0
                    for i in range(-1, 2):
                        for j in range(-1, 2):
                            v = z[r + i, c + j]
                            if v != v:
                                full = False
                            m += v
                    if not full:
                        continue
                    gc = ((z[r - 1, c + 1] + 2 * z[r, c + 1] + z[r + 1, c + 1])
                          - (z[r - 1, c - 1] + 2 * z[r, c - 1] + z[r + 1, c - 1])) / (8 * p) * ks
                    gr = ((z[r + 1, c - 1] + 2 * z[r + 1, c] + z[r + 1, c + 1])
                          - (z[r - 1, c - 1] + 2 * z[r - 1, c] + z[r - 1, c + 1])) / (8 * p) * ks
                    sl = math.atan(math.sqrt(gc * gc + gr * gr)) * deg
                    ns += 1
                    sl1 += sl
                    sl2 += sl * sl
                    slmin = min(slmin, sl)
                    slmax = max(slmax, sl)
                    if sl > 5.0:
                        g5 += 1
                    if sl > 10.0:
                        g10 += 1
                    if sl > 15.0:
                        g15 += 1
                    # downslope map direction (x east, y north): (−dz/dx, −dz/dy) = (−gc, +gr)
                    if sl >= 2.0 and (-gc * ux[ci, cj] + gr * uy[ci, cj]) > 0.0:
                        neq += 1
                    # local plane over the 3 × 3 window: residual sum of squares, and TRI
                    m /= 9.0
                    ss = 0.0
                    ga = 0.0
                    gb = 0.0
                    tri = 0.0
                    for i in range(-1, 2):
                        for j in range(-1, 2):
                            v = z[r + i, c + j]
                            ss += (v - m) * (v - m)
                            ga += i * v
                            gb += j * v
                            tri += (v - hgt) * (v - hgt)
                    ga /= 6.0
                    gb /= 6.0
                    rr = math.sqrt(max(ss - 6.0 * (ga * ga + gb * gb), 0.0) / 9.0)
                    nl += 1
                    rs += rr
                    rmax = max(rmax, rr)
                    tri = math.sqrt(tri)
                    ts += tri
                    tmax = max(tmax, tri)
            for f in range(out.shape[0]):
                out[f, ci, cj] = np.nan
            out[19, ci, cj] = n / (k * k)
            if n == 0:
                continue
            mean = s1 / n
            out[0, ci, cj] = ref + mean
            out[1, ci, cj] = math.sqrt(max(s2 / n - mean * mean, 0.0))
            out[2, ci, cj] = zmin
            out[3, ci, cj] = zmax
            out[4, ci, cj] = zmax - zmin
            if ns > 0:
                sm = sl1 / ns
                out[5, ci, cj] = sm
                out[6, ci, cj] = math.sqrt(max(sl2 / ns - sm * sm, 0.0))
                out[7, ci, cj] = slmin
                out[8, ci, cj] = slmax
                out[9, ci, cj] = g5 / ns
                out[10, ci, cj] = g10 / ns
                out[11, ci, cj] = g15 / ns
                out[18, ci, cj] = neq / ns
                out[14, ci, cj] = rs / nl
                out[15, ci, cj] = rmax
                out[16, ci, cj] = ts / nl
                out[17, ci, cj] = tmax
            # least-squares plane d = c0 + ca·a + cb·b over the cell (centred sums)
            if n >= 3:
                ma = sa / n
                mb = sb / n
                caa = saa / n - ma * ma
                cab = sab / n - ma * mb
                cbb = sbb / n - mb * mb
                caz = saz / n - ma * mean
                cbz = sbz / n - mb * mean
                det = caa * cbb - cab * cab
                if det > 1e-12:
                    ka = (caz * cbb - cbz * cab) / det
                    kb = (cbz * caa - caz * cab) / det
                    var = s2 / n - mean * mean - (ka * caz + kb * cbz)
                    out[13, ci, cj] = math.sqrt(max(var, 0.0))
                    out[12, ci, cj] = math.atan(math.sqrt(ka * ka + kb * kb) / p * ks) * deg


def dem_block_features(dem_path, grid: CellGrid, frame: PixelFrame, r0: int, r1: int, c0: int, c1: int,
                       threads: int | None = None) -> np.ndarray:
    """The DEM features of cells rows r0:r1, cols c0:c1: (len(DEM_FEATURES), r1 − r0, c1 − c0) float32."""
    z = read_on_grid(dem_path, grid, frame, r0, r1, c0, c1, halo=1, heights=True)
    x, y = grid.centres()
    x, y = x[r0:r1, c0:c1], y[r0:r1, c0:c1]
    rho = np.hypot(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        ux = np.where(rho > 0, x / rho, 0.0)
        uy = np.where(rho > 0, y / rho, 0.0)
    lat = np.degrees(np.pi / 2 - 2 * np.arctan(rho / (2 * MOON_RADIUS_M)))
    ks = scale_factor(lat)
    out = np.empty((len(DEM_FEATURES), r1 - r0, c1 - c0), np.float64)
    if threads is not None:
        numba.set_num_threads(threads)
    _dem_cell_stats(z, frame.k, grid.cell_m / frame.k, ks, ux, uy, out)
    return out.astype(np.float32)


def dem_features(dem_path, grid: CellGrid, *, max_k: int = 250, block_cells: int = 32, scheduler=None,
                 notify=lambda s, f: None):
    """Every DEM feature of every cell, (len(DEM_FEATURES), nrows, ncols) float32, streamed block by block
    through dask (``scheduler``: None → local threads; a distributed Client's address → that cluster). Returns
    (array, PixelFrame)."""
    import dask.array as da

    info = raster_info(dem_path)
    frame = pixel_frame(info, grid, max_k)
    # a block is at most ~16 M pixels
    bc = int(max(1, min(block_cells, 4096 // frame.k)))
    chunks = ((len(DEM_FEATURES),), _split(grid.nrows, bc), _split(grid.ncols, bc))
    path = str(Path(dem_path).resolve())

    def block(block_info=None):
        loc = block_info[None]["array-location"]
        return dem_block_features(path, grid, frame, loc[1][0], loc[1][1], loc[2][0], loc[2][1],
                                  threads=1)

    arr = da.map_blocks(block, chunks=chunks, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32))
    return _compute(arr, scheduler, notify, "dem features"), frame


def _split(n: int, size: int) -> tuple[int, ...]:
    return tuple([size] * (n // size) + ([n % size] if n % size else [])) or (0,)


def _compute(arr, scheduler, notify, label):
    """Compute a dask array locally (threads) or on a distributed cluster at ``scheduler``."""
    import dask

    if scheduler:
        from distributed import Client

        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            return client.compute(arr).result()
        finally:
            client.close()
    with dask.config.set(scheduler="threads"):
        return arr.compute()


def crater_features(craters, grid: CellGrid, d_min_m: float = 0.0, large_m: float = 5000.0,
                    samples: int = 8) -> np.ndarray:
    """(len(CRATER_FEATURES), nrows, ncols) from a table with lon, lat, diameter_m."""
    lon = np.asarray(craters["lon"], float)
    lat = np.asarray(craters["lat"], float)
    dm = np.asarray(craters["diameter_m"], float)
    keep = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(dm) & (dm >= d_min_m)
    lon, lat, dm = lon[keep], lat[keep], dm[keep]
    # only craters that can reach the region (their rim within a diameter of the grid)
    x, y = lonlat_to_map(grid.crs, lon, lat)
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    rmap = 0.5 * dm * scale_factor(lat)            # radius in map metres
    ok = np.isfinite(x) & np.isfinite(y)
    left, top = grid.x0, grid.y0
    right, bottom = left + grid.ncols * grid.cell_m, top - grid.nrows * grid.cell_m
    near = ok & (x + rmap > left) & (x - rmap < right) & (y + rmap > bottom) & (y - rmap < top)
    x, y, rmap, dm = x[near], y[near], rmap[near], dm[near]
    out = np.full((len(CRATER_FEATURES), grid.nrows, grid.ncols), np.nan, np.float32)
    cx, cy = grid.centres()
    lat_c = np.degrees(np.pi / 2 - 2 * np.arctan(np.hypot(cx, cy) / (2 * MOON_RADIUS_M)))
    ks = scale_factor(lat_c)
    area_km2 = (grid.cell_m / ks) ** 2 / 1e6
    col = np.floor((x - left) / grid.cell_m).astype(np.int64)
    row = np.floor((top - y) / grid.cell_m).astype(np.int64)
    inside = (col >= 0) & (col < grid.ncols) & (row >= 0) & (row < grid.nrows)
    count = np.zeros(grid.shape)
    dsum = np.zeros(grid.shape)
    np.add.at(count, (row[inside], col[inside]), 1.0)
    np.add.at(dsum, (row[inside], col[inside]), dm[inside])
    out[0] = count
    out[1] = count / area_km2
    with np.errstate(invalid="ignore", divide="ignore"):
        out[4] = np.where(count > 0, dsum / count, np.nan)
    cover = np.zeros((grid.nrows * samples, grid.ncols * samples), np.uint8)
    dmax = np.zeros_like(cover, np.float32)
    _paint_discs(x, y, rmap, dm.astype(np.float32), left, top, grid.cell_m / samples, cover, dmax)
    out[2] = cover.reshape(grid.nrows, samples, grid.ncols, samples).mean(axis=(1, 3))
    dmx = dmax.reshape(grid.nrows, samples, grid.ncols, samples).max(axis=(1, 3))
    out[3] = np.where(dmx > 0, dmx, 0.0)
    big = dm >= large_m
    rim = np.full(grid.shape, np.inf)
    _nearest_rim(cx, cy, x[big], y[big], rmap[big], rim)
    out[5] = np.where(np.isfinite(rim), rim / ks / 1000.0, np.nan)
    return out


@numba.njit(cache=True)
def _paint_discs(x, y, r, d, left, top, step, cover, dmax):
    h, w = cover.shape
    for i in range(x.shape[0]):
        c0 = max(int(math.floor((x[i] - r[i] - left) / step - 0.5)), 0)
        c1 = min(int(math.ceil((x[i] + r[i] - left) / step - 0.5)), w - 1)
        r0 = max(int(math.floor((top - y[i] - r[i]) / step - 0.5)), 0)
        r1 = min(int(math.ceil((top - y[i] + r[i]) / step - 0.5)), h - 1)
        rr = r[i] * r[i]
        for a in range(r0, r1 + 1):
            py = top - (a + 0.5) * step
            for b in range(c0, c1 + 1):
                px = left + (b + 0.5) * step
                if (px - x[i]) ** 2 + (py - y[i]) ** 2 <= rr:
                    cover[a, b] = 1
                    if d[i] > dmax[a, b]:
                        dmax[a, b] = d[i]


@numba.njit(parallel=True, cache=True)
def _nearest_rim(cx, cy, x, y, r, out):
    """Map distance from each cell centre to the nearest rim (| distance to centre − radius |)."""
    h, w = cx.shape
    for a in numba.prange(h):
        for b in range(w):
            best = np.inf
            for i in range(x.shape[0]):
                dd = abs(math.sqrt((cx[a, b] - x[i]) ** 2 + (cy[a, b] - y[i]) ** 2) - r[i])
                if dd < best:
                    best = dd
            out[a, b] = best


def raster_features(sources: dict, grid: CellGrid, *, max_k: int = 16, strip_cells: int = 64) -> dict:
    """Per-cell statistics of each given raster (light, Earth, PSR, slope, roughness; ``sources``: option name →
    path), read in strips of cell rows. Returns column → (nrows, ncols) array, plus ``psr_distance_km`` when a
    PSR mask is given."""
    cols: dict[str, np.ndarray] = {}
    for name, path in sources.items():
        stats, resampling = RASTER_SOURCES[name]
        info = raster_info(path)
        frame = pixel_frame(info, grid, max_k)
        k = frame.k
        arrs = {c: np.full(grid.shape, np.nan, np.float32) for _, c in stats}
        psr_fine = np.zeros((grid.nrows * k, grid.ncols * k), bool) if name == "psr" else None
        for r0 in range(0, grid.nrows, strip_cells):
            r1 = min(r0 + strip_cells, grid.nrows)
            v = read_on_grid(path, grid, frame, r0, r1, 0, grid.ncols, resampling=resampling)
            if psr_fine is not None:
                psr_fine[r0 * k:r1 * k] = v >= 0.5
            cells = v.reshape(r1 - r0, k, grid.ncols, k).transpose(0, 2, 1, 3).reshape(r1 - r0, grid.ncols, k * k)
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN cells → NaN, as meant
                    for stat, c in stats:
                        arrs[c][r0:r1] = {"mean": np.nanmean, "min": np.nanmin, "max": np.nanmax}[stat](cells, axis=2)
        cols.update(arrs)
        if psr_fine is not None:
            cols["psr_distance_km"] = psr_distance_km(psr_fine, grid, k)
    return cols


def psr_distance_km(psr_fine: np.ndarray, grid: CellGrid, k: int) -> np.ndarray:
    """Ground distance from each cell centre to the nearest PSR sample (0 inside one; NaN when there is none)."""
    from scipy import ndimage

    if not psr_fine.any():
        return np.full(grid.shape, np.nan, np.float32)
    dist = ndimage.distance_transform_edt(~psr_fine) * (grid.cell_m / k)
    # the centre of a cell with k samples per side lies between samples (k even) or on one (k odd)
    idx = np.arange(grid.nrows) * k + k // 2
    jdx = np.arange(grid.ncols) * k + k // 2
    d = dist[np.ix_(idx, jdx)]
    cx, cy = grid.centres()
    lat_c = np.degrees(np.pi / 2 - 2 * np.arctan(np.hypot(cx, cy) / (2 * MOON_RADIUS_M)))
    return (d / scale_factor(lat_c) / 1000.0).astype(np.float32)
