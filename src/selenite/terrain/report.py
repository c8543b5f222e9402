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


def visibility_section(vp, hz_centre: np.ndarray, sun_path: tuple[np.ndarray, np.ndarray], meta: dict) -> Section:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sec = Section("Sunlight, Earth visibility and permanent shadow")
    p = meta["period"]
    sec.paragraphs.append(
        f"Period {p['start'][:10]} to {p['end'][:10]} every {p['step_hours']:g} h ({p['instants']} instants), "
        f"{meta['azimuths']} horizon azimuths, pixel {meta['pixel_m']:.2f} m. Mean Sun visibility "
        f"{meta['sun_visibility_mean_pct']:.1f} %, Earth {meta['earth_visibility_mean_pct']:.1f} %; permanently "
        f"shadowed {100 * meta['psr_fraction']:.2f} % of the DEM. "
        + ("Terrain beyond the DEM from the far-field DEM." if meta.get("far_field") else
           f"No far-field DEM: {100 * meta['horizon_unknown_fraction']:.1f} % of pixel-azimuths see no DEM ahead "
           "and count as a flat horizon."))
    psr = np.where(vp.psr == 255, np.nan, vp.psr.astype(float))
    sec.figures.append((_maps([("Sun visibility (%)", vp.sun_pct, "inferno"),
                               ("Earth visibility (%)", vp.earth_pct, "cividis"),
                               ("permanent shadow (1)", psr, "Greys"),
                               ("longest darkness (days)", vp.longest_dark_days, "magma_r"),
                               ("longest sunlight (days)", vp.longest_sun_days, "inferno"),
                               ("longest Sun + Earth (days)", vp.sun_earth_longest_days, "viridis")]),
                        "Visibility products (maps thinned for display)."))
    az = np.arange(len(hz_centre)) * 360.0 / len(hz_centre)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(az, hz_centre, "k-", lw=1, label="horizon at the DEM centre")
    ax.plot(sun_path[0], sun_path[1], ".", ms=1.5, color="orange", label="Sun centre over the period")
    ax.set_xlabel("azimuth (° clockwise from grid north)")
    ax.set_ylabel("elevation (°)")
    ax.set_xlim(0, 360)
    ax.legend(fontsize=8, loc="upper right")
    sec.figures.append((figure_data_uri(fig), "Horizon of the centre pixel and the Sun's path across it."))
    return sec
