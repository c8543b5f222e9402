"""Terrain: sunlight, Earth visibility and permanent shadow over a year, from the horizon of every DEM cell."""

import json

import numpy as np
import streamlit as st

from selenite.app import core, ui

MAPS = (("sun_visibility", "Sun visible (% of the period)", "inferno", (0, 100)),
        ("sun_earth_stay", "6.5-day Sun + Earth stays (% of landing times)", "viridis", None),
        ("earth_visibility", "Earth visible (% of the period)", "viridis", (0, 100)),
        ("psr", "permanently shadowed (1 = yes)", "Blues", (0, 1)),
        ("longest_dark_days", "longest night (days)", "magma_r", None),
        ("longest_sun_days", "longest day (days)", "magma", None),
        ("sun_earth_longest_days", "longest Sun + Earth window (days)", "cividis", None),
        ("sun_stay", "6.5-day sunlit stays (% of landing times)", "viridis", None))

ui.header("Terrain", "Illumination, Earth visibility, surface stays and permanently shadowed regions: the horizon of "
          "every DEM cell against the Sun's and Earth's paths (DE421) over the run's time span.")
root = ui.choose_run("terrain", "Compute the light of the real south pole (LOLA 240 m)", core.live_terrain,
                     needs=("visibility.json",))
if root is not None:
    meta = json.loads((root / "visibility.json").read_text())
    present = [m for m in MAPS if (root / f"{m[0]}.tif").is_file()]
    names = st.multiselect("Maps", [m[1] for m in present], default=[m[1] for m in present[:3]], key="terrain_maps")
    chosen = [m for m in present if m[1] in names]
    if chosen:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cols = min(3, len(chosen))
        rows = int(np.ceil(len(chosen) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.2 * rows), squeeze=False)
        for ax, (name, label, cmap, lim) in zip(axes.ravel(), chosen, strict=False):
            a = ui.raster(root / f"{name}.tif")
            im = ax.imshow(a, cmap=cmap, vmin=lim[0] if lim else None, vmax=lim[1] if lim else None)
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_title(label, fontsize=9)
            ax.set_axis_off()
        for ax in axes.ravel()[len(chosen):]:
            ax.set_axis_off()
        fig.tight_layout()
        ui.show_figure(fig)
    stats = {k: v for k, v in meta.items() if isinstance(v, int | float | str)}
    if stats:
        st.subheader("Run summary")
        st.json(stats, expanded=False)
