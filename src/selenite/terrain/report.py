"""Report sections of ``selenite terrain`` runs (maps decimated to at most ~800 px for the figures)."""

from __future__ import annotations

import numpy as np

from selenite.report.html import Section, figure_data_uri


def _thin(a: np.ndarray, side: int = 800) -> np.ndarray:
    k = max(1, int(np.ceil(max(a.shape) / side)))
    return a[::k, ::k]


def _maps(panels: list[tuple[str, np.ndarray, str]], ncols: int = 3):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    rows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(rows, ncols, figsize=(4.2 * ncols, 3.8 * rows), squeeze=False)
    for ax, (title, arr, cmap) in zip(axes.ravel(), panels, strict=False):
        im = ax.imshow(_thin(arr), cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return figure_data_uri(fig)


def attributes_section(products: dict[str, np.ndarray], meta: dict) -> Section:
    sec = Section("Terrain attributes")
    sec.paragraphs.append(
        f"Pixel {meta['pixel_m']:.2f} m; footprint slope and roughness over {meta['window_px']} × {meta['window_px']} "
        f"px (baseline {meta['baseline_m']:.1f} m). Slope by Horn (1981); aspect from true north.")
    rows = [[name, f"{np.nanmin(a):.3g}", f"{np.nanmedian(a):.3g}", f"{np.nanmax(a):.3g}"]
            for name, a in products.items()]
    sec.tables.append((["product", "min", "median", "max"], rows))
    sec.figures.append((_maps([("slope (°)", products["slope"], "magma"),
                               ("footprint slope (°)", products["slope_baseline"], "magma"),
                               ("roughness (m)", products["roughness"], "viridis"),
                               ("aspect (° from true north)", products["aspect"], "twilight"),
                               ("TRI (m)", products["tri"], "viridis"),
                               ("curvature (1/m)", products["curvature"], "coolwarm")]),
                        "Attributes (maps thinned for display)."))
    return sec


def _read_thin(path, side: int = 800) -> np.ndarray:
    """A raster read decimated to at most ``side`` px (bounded memory whatever its size), nodata → NaN."""
    import rasterio

    with rasterio.open(path) as ds:
        step = max(1, int(np.ceil(max(ds.width, ds.height) / side)))
        out = ds.read(1, out_shape=(int(np.ceil(ds.height / step)), int(np.ceil(ds.width / step))),
                      resampling=rasterio.enums.Resampling.nearest).astype(np.float64)
        if ds.nodata is not None and not np.isnan(ds.nodata):
            out[out == ds.nodata] = np.nan
    return out


def attributes_section_from_run(run_dir) -> Section:
    import json
    from pathlib import Path

    from selenite.terrain.pipeline import ATTRIBUTES

    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "attributes.json").read_text())
    return attributes_section({a: _read_thin(run_dir / f"{a}.tif") for a in ATTRIBUTES}, meta)


def visibility_section_from_run(run_dir, dem_path) -> Section:
    """The visibility section from a run folder's files (the Sun's path recomputed for the centre pixel)."""
    import json
    from pathlib import Path

    import rasterio

    from selenite.geo.raster import raster_info, read_dem
    from selenite.terrain.ephemeris import body_tracks, parse_time, time_grid
    from selenite.terrain.horizon import HORIZON_NODATA, HORIZON_SCALE
    from selenite.terrain.visibility import local_directions

    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "visibility.json").read_text())
    info = raster_info(dem_path)
    rc, cc = info.height // 2, info.width // 2
    z, _ = read_dem(dem_path, window=rasterio.windows.Window(cc, rc, 1, 1))
    p = meta["period"]
    times = time_grid(parse_time(p["start"]), parse_time(p["end"]), p["step_hours"])
    sun, _ = body_tracks(times)
    el, az = local_directions(info, [cc], [rc], [float(np.nan_to_num(z[0, 0]))], sun.position_km)
    hz_c = None
    if (run_dir / "horizon.tif").exists():
        with rasterio.open(run_dir / "horizon.tif") as ds:
            raw = ds.read(window=rasterio.windows.Window(cc, rc, 1, 1))[:, 0, 0]
        hz_c = np.where(raw == HORIZON_NODATA, np.nan, raw * HORIZON_SCALE)
    maps = {name: _read_thin(run_dir / f"{name}.tif") for name in
            ("sun_visibility", "sun_min_month", "earth_visibility", "psr", "longest_dark_days",
             "longest_sun_days", "sun_earth_longest_days", "sun_stay", "sun_earth_stay")
            if (run_dir / f"{name}.tif").exists()}
    return visibility_section(maps, hz_c, (az[:, 0], el[:, 0]), meta)


def visibility_section(maps: dict, hz_centre: np.ndarray | None, sun_path: tuple[np.ndarray, np.ndarray],
                       meta: dict) -> Section:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sec = Section("Sunlight, Earth visibility and permanent shadow")
    p = meta["period"]
    sec.paragraphs.append(
        f"Period {p['start'][:10]} to {p['end'][:10]} every {p['step_hours']:g} h ({p['instants']} instants), "
        f"{meta['azimuths']} horizon azimuths, pixel {meta['pixel_m']:.2f} m, eye "
        f"{meta.get('observer_height_m', 0.0):g} m above the ground. Mean Sun visibility "
        f"{meta['sun_visibility_mean_pct']:.1f} %, Earth {meta['earth_visibility_mean_pct']:.1f} %; permanently "
        f"shadowed {100 * meta['psr_fraction']:.2f} % of the DEM. "
        + ("Terrain beyond the DEM from the far-field DEM." if meta.get("far_field") else
           f"No far-field DEM: {100 * meta['horizon_unknown_fraction']:.1f} % of pixel-azimuths see no DEM ahead "
           "and count as a flat horizon."))
    sec.figures.append((_maps([("Sun visibility (%)", maps["sun_visibility"], "inferno"),
                               ("worst month's Sun visibility (%)", maps["sun_min_month"], "inferno"),
                               ("Earth visibility (%)", maps["earth_visibility"], "cividis"),
                               ("permanent shadow (1)", maps["psr"], "Greys"),
                               ("longest darkness (days)", maps["longest_dark_days"], "magma_r"),
                               ("longest sunlight (days)", maps["longest_sun_days"], "inferno"),
                               ("longest Sun + Earth (days)", maps["sun_earth_longest_days"], "viridis")]
                              + [(f"{meta.get('stay_days', 6.5):g}-day stays with {what} (% of start times)",
                                  maps[name], "viridis")
                                 for name, what in (("sun_stay", "Sun"), ("sun_earth_stay", "Sun + Earth"))
                                 if name in maps]),
                        "Visibility products (maps thinned for display)."))
    fig, ax = plt.subplots(figsize=(8, 3))
    if hz_centre is not None:
        az = np.arange(len(hz_centre)) * 360.0 / len(hz_centre)
        ax.plot(az, hz_centre, "k-", lw=1, label="horizon at the DEM centre")
    ax.plot(sun_path[0], sun_path[1], ".", ms=1.5, color="orange", label="Sun centre over the period")
    ax.set_xlabel("azimuth (° clockwise from grid north)")
    ax.set_ylabel("elevation (°)")
    ax.set_xlim(0, 360)
    ax.legend(fontsize=8, loc="upper right")
    sec.figures.append((figure_data_uri(fig), "Horizon of the centre pixel and the Sun's path across its sky."))
    return sec
