"""``selenite terrain attributes`` and ``selenite terrain visibility``: DEM → COG products in a run folder."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from selenite.errors import InputError
from selenite.geo.crs import MOON_RADIUS_M
from selenite.geo.raster import open_dataarray, raster_info, read_dem, write_cog
from selenite.report.html import write_report
from selenite.runs import Run, canonical_json
from selenite.terrain import attributes as A
from selenite.terrain.config import TerrainConfig
from selenite.terrain.ephemeris import body_tracks, parse_step_hours, parse_time, time_grid
from selenite.terrain.horizon import HORIZON_NODATA, HORIZON_SCALE, azimuth_grid, horizons
from selenite.terrain.visibility import visibility

ATTRIBUTES = ("slope", "slope_baseline", "aspect", "roughness", "tri", "curvature")
VISIBILITY = ("horizon", "sun_visibility", "sun_min_month", "earth_visibility", "psr", "longest_dark_days",
              "longest_sun_days", "sun_earth_longest_days", "sun_stay", "sun_earth_stay")
# product file → VisibilityProducts field (every product but the horizons)
PRODUCT_FIELDS = {"sun_visibility": "sun_pct", "sun_min_month": "sun_min_month_pct", "earth_visibility": "earth_pct",
                  "psr": "psr", "longest_dark_days": "longest_dark_days", "longest_sun_days": "longest_sun_days",
                  "sun_earth_longest_days": "sun_earth_longest_days", "sun_stay": "sun_stay_pct",
                  "sun_earth_stay": "sun_earth_stay_pct"}


def _heights_offset(info) -> float:
    return 0.0 if abs(info.offset - MOON_RADIUS_M) < 1.0 else info.offset


class _WindowWriter:
    """A rasterio dataset band as a dask ``store`` target."""

    def __init__(self, ds, row0: int = 0):
        self.ds = ds
        self.row0 = row0

    def __setitem__(self, key, value):
        rows, cols = key
        rows = slice(rows.start + self.row0, rows.stop + self.row0)
        self.ds.write(np.asarray(value, np.float32), 1, window=Window.from_slices(rows, cols))


def compute_attributes(dem_path, outputs: dict, cfg: TerrainConfig, notify=lambda s, f: None) -> dict:
    """Stream the DEM through dask in chunks and write one COG per attribute to ``outputs[name]``."""
    import dask
    import dask.array as da

    info = raster_info(dem_path)
    res, sx, sy = A.check_grid(info)
    n = A.window_size(cfg.baseline_m, res)
    depth = max(n // 2, 1) + 1
    arr = open_dataarray(dem_path, chunks={"band": 1, "y": cfg.chunk, "x": cfg.chunk})
    offset = _heights_offset(info)
    z = arr.data[0].astype(np.float64) * info.scale + offset   # masked read: nodata already NaN (scale kept raw)
    if not bool(da.isfinite(z).any().compute()):
        raise InputError(f"the DEM {dem_path} holds no valid heights (all nodata)")

    kgrid = A.scale_grid(info)
    res_map = abs(info.transform.a)

    def block(zb, block_info=None):
        loc = block_info[None]["array-location"]          # the output (core) block's place in the DEM
        core = (slice(depth, zb.shape[0] - depth), slice(depth, zb.shape[1] - depth))
        k = A.scale_field(kgrid, np.arange(*loc[1], dtype=float), np.arange(*loc[2], dtype=float))
        gx, gy = (g[core] * k for g in A.horn(zb, res_map, sx, sy))
        bx, by, rms = A.plane_fit(zb, res_map, n, sx, sy)
        rows, cols = np.mgrid[loc[1][0]:loc[1][1], loc[2][0]:loc[2][1]]
        conv = A.grid_convergence_deg(info, cols.astype(float), rows.astype(float))
        aspect = (A.aspect_grid_deg(gx, gy) + conv) % 360.0
        out = np.stack([A.slope_deg(gx, gy), A.slope_deg(bx[core] * k, by[core] * k), aspect, rms[core],
                        A.tri(zb)[core], A.curvature(zb, res_map)[core] * k * k])
        return out.astype(np.float32)

    haloed = da.overlap.overlap(z, depth={0: depth, 1: depth}, boundary=np.nan)
    stacked = haloed.map_blocks(block, new_axis=0, chunks=((len(ATTRIBUTES),),) + z.chunks, dtype=np.float32)
    tmp_tifs = {name: outputs[name].with_name(outputs[name].name + ".stream.tif") for name in ATTRIBUTES}
    profile = dict(driver="GTiff", width=info.width, height=info.height, count=1, dtype="float32",
                   crs=rasterio.crs.CRS.from_wkt(info.crs.to_wkt()), transform=info.transform, nodata=np.nan,
                   tiled=True, blockxsize=512, blockysize=512, compress="DEFLATE", BIGTIFF="IF_SAFER")
    datasets = {name: rasterio.open(p, "w", **profile) for name, p in tmp_tifs.items()}
    try:
        lock = threading.Lock()
        # one row of chunks at a time: a single store of the whole graph let dask run ahead of the writes and
        # hold finished blocks (peak memory grew with the DEM: 2.8 GB at 8192², 4.7 GB at 16384²)
        with dask.config.set(scheduler="threads", num_workers=cfg.threads):
            r0 = 0
            for rows in z.chunks[0]:
                band = stacked[:, r0:r0 + rows]
                da.store([band[k] for k in range(len(ATTRIBUTES))],
                         [_WindowWriter(datasets[name], r0) for name in ATTRIBUTES], lock=lock)
                r0 += rows
                notify("attributes", 0.9 * r0 / info.height)
        for ds in datasets.values():
            ds.close()
        notify("attributes", 0.9)
        for name in ATTRIBUTES:
            rasterio.shutil.copy(tmp_tifs[name], outputs[name], driver="COG", compress="DEFLATE",
                                 BLOCKSIZE=512)
    finally:
        for ds in datasets.values():
            if not ds.closed:
                ds.close()
        for p in tmp_tifs.values():
            p.unlink(missing_ok=True)
    notify("attributes", 1.0)
    return {"window_px": n, "baseline_m": (n - 1) * res, "pixel_m": res}


def write_band_stack(path, hz: np.ndarray, info, descriptions: list[str]) -> None:
    """The horizons as a tiled GeoTIFF (int16 centidegrees, scale 0.01, one band per azimuth), written band by
    band (band-interleaved) with fast ZSTD on every core. Not a COG: GDAL's COG copy of 360 bands doubles the
    writing time and holds another copy in memory (measured for a 2048² DEM: 24–41 s and 6.3–9.1 GB peak for the
    run against 9.5 s and 4.9 GB)."""
    profile = dict(driver="GTiff", width=hz.shape[2], height=hz.shape[1], count=hz.shape[0], dtype="int16",
                   crs=rasterio.crs.CRS.from_wkt(info.crs.to_wkt()), transform=info.transform,
                   nodata=HORIZON_NODATA, tiled=True, blockxsize=512, blockysize=512, interleave="band",
                   compress="ZSTD", zstd_level=1, predictor=2, num_threads="ALL_CPUS", BIGTIFF="IF_SAFER")
    # a small block cache: each band is written whole and never read back (GDAL's default, 5 % of the machine's
    # memory, held another 1.2 GB here while the horizons themselves are in memory)
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path, "w", **profile) as dst:
        for b in range(hz.shape[0]):
            dst.write(hz[b], b + 1)
            dst.set_band_description(b + 1, descriptions[b])
        dst.scales = [HORIZON_SCALE] * hz.shape[0]


def run_attributes(dem_path, out, cfg: TerrainConfig, *, force: bool = False, progress=None):
    dem_path = Path(dem_path).resolve()        # step reads are resolved against the run folder otherwise
    notify = progress or (lambda s, f: None)
    params = {"config": cfg.model_dump(mode="json"), "dem": str(dem_path)}
    with Run(out, command="terrain attributes", params=params, force=force) as run:
        run.add_input(dem_path, "dem")
        names = [f"{a}.tif" for a in ATTRIBUTES]
        meta = {}

        def make(tmp):
            meta.update(compute_attributes(dem_path, {a: tmp[f"{a}.tif"] for a in ATTRIBUTES}, cfg, notify))
            tmp["attributes.json"].write_text(canonical_json(meta) + "\n")

        run.step("attributes", names + ["attributes.json"], make,
                 params={k: getattr(cfg, k) for k in ("baseline_m", "chunk")}, reads=[dem_path])

        def make_report(tmp):
            from selenite.terrain.report import attributes_section_from_run

            write_report(tmp["report.html"], "selenite terrain attributes", [attributes_section_from_run(run.root)],
                         str(dem_path))

        run.step("report", ["report.html"], make_report, reads=["attributes.json"])
    return run.root



def run_visibility(dem_path, out, cfg: TerrainConfig, *, far_dem=None, force: bool = False, progress=None):
    """Horizons (raised to the terrain of ``far_dem`` — a path or a list of them, best first — beyond the DEM's
    edge when given), then Sun/Earth
    visibility, PSR and the longest dark / lit / Sun+Earth periods."""
    notify = progress or (lambda s, f: None)
    dem_path = Path(dem_path).resolve()        # step reads are resolved against the run folder otherwise
    far_dems = [] if far_dem is None else [Path(f).resolve() for f in (far_dem if isinstance(far_dem, list | tuple)
                                                                       else [far_dem])]
    info = raster_info(dem_path)
    res, sx, sy = A.check_grid(info)
    start, end = parse_time(cfg.start), parse_time(cfg.end)
    step_h = parse_step_hours(cfg.step)
    times = time_grid(start, end, step_h)
    tile = cfg.tile
    if not tile and info.width * info.height * cfg.azimuths * 2 > cfg.max_horizon_gb * 1e9:
        tile = 2048                       # the horizons would not fit: tile by tile
    for f in far_dems:
        raster_info(f)                    # readable, lunar: fail before anything is written
    params = {"config": cfg.model_dump(mode="json"), "dem": str(dem_path),
              "far_dem": [str(f) for f in far_dems] or None}
    if tile:
        return _run_visibility_tiled(dem_path, out, cfg, tile, far_dems, times, step_h, res, sx, sy, params,
                                     force, notify)
    with Run(out, command="terrain visibility", params=params, force=force) as run:
        run.add_input(dem_path, "dem")
        for i, f in enumerate(far_dems):
            run.add_input(f, "far_dem" if i == 0 else f"far_dem_{i + 1}")
        z, info = read_dem(dem_path)
        if not np.isfinite(z).any():
            raise InputError(f"the DEM {dem_path} holds no valid heights (all nodata)")
        outputs = [f"{v}.tif" for v in VISIBILITY if v != "horizon" or cfg.write_horizon] + ["visibility.json"]

        def make(tmp):
            import time

            import numba

            numba.set_num_threads(min(cfg.threads, numba.config.NUMBA_NUM_THREADS))
            clock = [time.perf_counter()]

            def lap():
                clock.append(time.perf_counter())
                return round(clock[-1] - clock[-2], 3)

            seconds = {}
            hz = horizons(z, cfg.azimuths, res, sign_x=sx, sign_y=sy, notify=notify, observer_m=cfg.height_m)
            seconds["horizons"] = lap()
            far = None
            if far_dems:
                from selenite.terrain.farfield import apply_far_field

                far = apply_far_field(hz, z, info, res, sx, sy, far_dems, far_res_m=cfg.far_res_m,
                                      far_max_km=cfg.far_max_km, node_m=cfg.far_node_m, observer_m=cfg.height_m)
                seconds["far_field"] = lap()
            sun, earth = body_tracks(times)
            seconds["ephemeris"] = lap()
            notify("visibility", 0.0)
            vp = visibility(hz, z, info, sun, earth, step_h, max_block=cfg.max_block, stay_days=cfg.stay_days)
            seconds["visibility"] = lap()
            notify("visibility", 1.0)
            kw = dict(crs=info.crs, transform=info.transform)
            if cfg.write_horizon:
                write_band_stack(tmp["horizon.tif"], hz, info,
                                 [f"azimuth {a:g} deg" for a in azimuth_grid(cfg.azimuths)])
            for name, field in PRODUCT_FIELDS.items():
                if name == "psr":
                    write_cog(tmp["psr.tif"], vp.psr, nodata=255, dtype="uint8", **kw)
                else:
                    write_cog(tmp[f"{name}.tif"], getattr(vp, field), nodata=np.nan, **kw)
            seconds["write"] = lap()
            valid = np.isfinite(z)
            meta = {"period": {"start": str(times[0]), "end": cfg.end, "step_hours": step_h, "instants": len(times)},
                    "azimuths": cfg.azimuths, "pixel_m": res, "ephemeris": "DE421 + MOON_PA_DE421 → MOON_ME_DE421",
                    "observer_height_m": cfg.height_m, "stay_days": cfg.stay_days,
                    "horizon_units": f"{HORIZON_SCALE} degree per unit, clockwise from grid north",
                    "psr_fraction": float((vp.psr[valid] == 1).mean()),
                    "sun_visibility_mean_pct": float(np.nanmean(vp.sun_pct)),
                    "earth_visibility_mean_pct": float(np.nanmean(vp.earth_pct)), "far_field": far,
                    "horizon_unknown_fraction": sum(int((band == HORIZON_NODATA).sum()) for band in hz)
                    / max(int(valid.sum()) * cfg.azimuths, 1),            # band by band: no 1-byte copy of hz
                    "seconds": seconds}
            tmp["visibility.json"].write_text(canonical_json(meta) + "\n")

        run.step("visibility", outputs, make, reads=[dem_path] + far_dems,
                 params={k: getattr(cfg, k) for k in ("azimuths", "height_m", "stay_days", "start", "end", "step",
                                                      "max_block", "write_horizon", "far_res_m", "far_max_km",
                                                      "far_node_m")})

        def make_report(tmp):
            from selenite.terrain.report import visibility_section_from_run

            write_report(tmp["report.html"], "selenite terrain visibility",
                         [visibility_section_from_run(run.root, dem_path)], str(dem_path))

        run.step("report", ["report.html"], make_report, reads=["visibility.json"])
    return run.root


def _decimated(dem_path, res_m: float):
    """The whole DEM block-averaged to about ``res_m`` pixels (heights, RasterInfo): the tiles' far field."""
    from rasterio.enums import Resampling

    from selenite.geo.raster import RasterInfo

    info = raster_info(dem_path)
    f = max(1, int(round(res_m / abs(info.transform.a))))
    h, w = int(np.ceil(info.height / f)), int(np.ceil(info.width / f))
    with rasterio.open(dem_path) as ds:
        raw = ds.read(1, out_shape=(h, w), resampling=Resampling.average, masked=True).astype(np.float64)
    heights = raw.filled(np.nan) * info.scale + _heights_offset(info)
    t = info.transform * rasterio.Affine.scale(info.width / w, info.height / h)
    return heights, RasterInfo(info.crs, t, w, h)


def _run_visibility_tiled(dem_path, out, cfg, tile, far_dems, times, step_h, res, sx, sy, params, force, notify):
    """Tile by tile: each tile's horizons swept over the tile and a halo at full resolution, the rest of the DEM
    (decimated) and ``far_dems`` beyond as the far field; products written window by window. No horizon.tif
    (one band per azimuth of the whole DEM would not fit where tiling is needed)."""
    import time

    import numba

    from selenite.geo.raster import RasterInfo
    from selenite.terrain.farfield import apply_far_field

    info = raster_info(dem_path)
    names = [v for v in VISIBILITY if v != "horizon"]
    params = {**params, "tile": tile}
    with Run(out, command="terrain visibility", params=params, force=force) as run:
        run.add_input(dem_path, "dem")
        for i, f in enumerate(far_dems):
            run.add_input(f, "far_dem" if i == 0 else f"far_dem_{i + 1}")

        def make(tmp):
            numba.set_num_threads(min(cfg.threads, numba.config.NUMBA_NUM_THREADS))
            t0 = time.perf_counter()
            sun, earth = body_tracks(times)
            coarse = _decimated(dem_path, cfg.far_res_m)
            sources = [coarse] + far_dems
            profile = dict(driver="GTiff", width=info.width, height=info.height, count=1,
                           crs=rasterio.crs.CRS.from_wkt(info.crs.to_wkt()), transform=info.transform,
                           tiled=True, blockxsize=512, blockysize=512, compress="DEFLATE", BIGTIFF="IF_SAFER")
            stage = {n: tmp[f"{n}.tif"].with_name(tmp[f"{n}.tif"].name + ".stage.tif") for n in names}
            dss = {n: rasterio.open(stage[n], "w", dtype="uint8" if n == "psr" else "float32",
                                    nodata=255 if n == "psr" else np.nan, **profile) for n in names}
            acc = {"sun": 0.0, "earth": 0.0, "psr": 0, "valid": 0}
            tiles = [(r0, c0) for r0 in range(0, info.height, tile) for c0 in range(0, info.width, tile)]
            try:
                for k, (r0, c0) in enumerate(tiles):
                    th, tw = min(tile, info.height - r0), min(tile, info.width - c0)
                    wr0, wc0 = max(r0 - cfg.halo, 0), max(c0 - cfg.halo, 0)
                    wr1, wc1 = min(r0 + th + cfg.halo, info.height), min(c0 + tw + cfg.halo, info.width)
                    win = Window(wc0, wr0, wc1 - wc0, wr1 - wr0)
                    zw, iw = read_dem(dem_path, window=win)
                    crop = (r0 - wr0, r0 - wr0 + th, c0 - wc0, c0 - wc0 + tw)
                    zt = np.ascontiguousarray(zw[crop[0]:crop[1], crop[2]:crop[3]])
                    if not np.isfinite(zt).any():
                        vp = None
                    else:
                        hz = horizons(zw, cfg.azimuths, res, sign_x=sx, sign_y=sy, crop=crop, observer_m=cfg.height_m)
                        it = RasterInfo(info.crs, info.transform * rasterio.Affine.translation(c0, r0), tw, th)
                        apply_far_field(hz, zt, it, res, sx, sy, sources, far_res_m=cfg.far_res_m,
                                        far_max_km=cfg.far_max_km, node_m=cfg.far_node_m, near=(zw, iw),
                                        observer_m=cfg.height_m)
                        vp = visibility(hz, zt, it, sun, earth, step_h, max_block=cfg.max_block,
                                        stay_days=cfg.stay_days)
                    w = Window(c0, r0, tw, th)
                    for n in names:
                        if vp is None:
                            arr = np.full((th, tw), 255 if n == "psr" else np.nan)
                        else:
                            arr = getattr(vp, PRODUCT_FIELDS[n])
                        dss[n].write(arr.astype(dss[n].dtypes[0]), 1, window=w)
                    if vp is not None:
                        valid = np.isfinite(zt)
                        acc["sun"] += float(np.nansum(vp.sun_pct))
                        acc["earth"] += float(np.nansum(vp.earth_pct))
                        acc["psr"] += int((vp.psr[valid] == 1).sum())
                        acc["valid"] += int(valid.sum())
                    notify("tiles", (k + 1) / len(tiles))
                for ds in dss.values():
                    ds.close()
                for n in names:
                    rasterio.shutil.copy(stage[n], tmp[f"{n}.tif"], driver="COG", compress="DEFLATE", BLOCKSIZE=512)
            finally:
                for ds in dss.values():
                    if not ds.closed:
                        ds.close()
                for p in stage.values():
                    p.unlink(missing_ok=True)
            nv = max(acc["valid"], 1)
            meta = {"period": {"start": str(times[0]), "end": cfg.end, "step_hours": step_h, "instants": len(times)},
                    "azimuths": cfg.azimuths, "pixel_m": res, "ephemeris": "DE421 + MOON_PA_DE421 → MOON_ME_DE421",
                    "observer_height_m": cfg.height_m, "stay_days": cfg.stay_days,
                    "horizon_units": "no horizon.tif in tiled mode",
                    "tiled": {"tile_px": tile, "halo_px": cfg.halo, "tiles": len(tiles)},
                    "psr_fraction": acc["psr"] / nv, "sun_visibility_mean_pct": acc["sun"] / nv,
                    "earth_visibility_mean_pct": acc["earth"] / nv,
                    "far_field": {"beyond_halo": f"the DEM decimated to {cfg.far_res_m:g} m",
                                  "beyond_dem": [str(f) for f in far_dems] or None},
                    "horizon_unknown_fraction": None, "seconds": {"total": round(time.perf_counter() - t0, 3)}}
            tmp["visibility.json"].write_text(canonical_json(meta) + "\n")

        run.step("visibility", [f"{n}.tif" for n in names] + ["visibility.json"], make,
                 reads=[dem_path] + far_dems,
                 params={k: getattr(cfg, k) for k in ("azimuths", "height_m", "stay_days", "start", "end", "step",
                                                      "max_block", "halo", "far_res_m", "far_max_km", "far_node_m")}
                 | {"tile": tile})

        def make_report(tmp):
            from selenite.terrain.report import visibility_section_from_run

            write_report(tmp["report.html"], "selenite terrain visibility",
                         [visibility_section_from_run(run.root, dem_path)], str(dem_path))

        run.step("report", ["report.html"], make_report, reads=["visibility.json"])
    return run.root
