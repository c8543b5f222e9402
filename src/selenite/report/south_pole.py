"""The report's opening section on the real south pole: the map (hillshade, Sun, stays, PSR, the Artemis III
regions, the top sites), the top sites with their reasons, and the checks against independent references
(Wueller et al. 2026's sites, the cold-trap PSRs, the Artemis regions against random rankings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from selenite.report.html import Section, figure_data_uri


def _thin(a: np.ndarray, side: int = 768) -> tuple[np.ndarray, int]:
    k = max(1, int(np.ceil(max(a.shape) / side)))
    return a[::k, ::k], k


def _hillshade(z: np.ndarray, res: float) -> np.ndarray:
    """Lambertian shade under a light from the upper left, 45° up."""
    gy, gx = np.gradient(np.nan_to_num(z, nan=float(np.nanmean(z))), res)
    az, el = np.radians(315.0), np.radians(45.0)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)
    return np.clip(np.sin(el) * np.cos(slope) + np.cos(el) * np.sin(slope) * np.cos(az - aspect), 0, 1)


def map_figure(dem: Path, light: Path, top: pd.DataFrame, regions, sites: pd.DataFrame | None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selenite.geo.crs import lonlat_to_map
    from selenite.geo.raster import read_dem, read_raster

    z, info = read_dem(dem)
    zt, k = _thin(z)
    shade = _hillshade(zt, info.res[0] * k)
    left, bottom, right, top_y = (v / 1000 for v in info.bounds)
    ext = [left, right, bottom, top_y]
    panels = [("Hillshade, NASA's Artemis III regions (orange), the top 10 sites (red) and Wueller et al.'s sites "
               "(cyan)", None, None),
              ("Sun visibility (% of the period); PSR outlined in blue", light / "sun_visibility.tif", "inferno"),
              ("6.5-day Sun + Earth stays (% of landing times)", light / "sun_earth_stay.tif", "viridis")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6))
    for ax, (title, path, cmap) in zip(axes, panels, strict=True):
        ax.imshow(shade, cmap="gray", extent=ext, interpolation="bilinear")
        if path is not None and path.exists():
            a, _ = read_raster(path)
            a = _thin(a)[0]
            im = ax.imshow(a, cmap=cmap, extent=ext, alpha=0.75, interpolation="nearest", vmin=0,
                           vmax=100 if "stay" not in path.name else max(float(np.nanmax(a)), 1.0))
            fig.colorbar(im, ax=ax, shrink=0.75)
            psr = light / "psr.tif"
            if psr.exists() and "sun_visibility" in path.name:
                p, _ = read_raster(psr)
                ax.contour(_thin(np.nan_to_num(p))[0], levels=[0.5], colors="deepskyblue", linewidths=0.4,
                           extent=ext, origin="upper")
        for geom in regions.geometry:
            for poly in (list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]):
                lo, la = np.asarray(poly.exterior.coords).T
                x, y = lonlat_to_map(info.crs, lo, la)
                ax.plot(np.asarray(x) / 1e3, np.asarray(y) / 1e3, color="orange", lw=1.0)
        if path is None and sites is not None:
            x, y = lonlat_to_map(info.crs, sites["lon"].to_numpy(), sites["lat"].to_numpy())
            ax.scatter(np.asarray(x) / 1e3, np.asarray(y) / 1e3, s=4, color="cyan", lw=0)
        x, y = lonlat_to_map(info.crs, top["lon"].to_numpy()[:10], top["lat"].to_numpy()[:10])
        ax.scatter(np.asarray(x) / 1e3, np.asarray(y) / 1e3, s=28, facecolors="none", edgecolors="red", lw=1.1)
        if path is None:
            for i, (xx, yy) in enumerate(zip(np.asarray(x) / 1e3, np.asarray(y) / 1e3, strict=True)):
                ax.text(xx + 3, yy + 3, str(i + 1), color="red", fontsize=7)
        ax.set_title(title, fontsize=8.5)
        ax.set_xlabel("x (km, south polar stereographic)")
        ax.set_xlim(left, right)
        ax.set_ylim(bottom, top_y)
    axes[0].set_ylabel("y (km)")
    fig.tight_layout()
    return fig


def wueller_figure(values: dict, sites: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    pairs = (("sun_visibility", "sun_days", "our Sun visibility (%)", "their days of sunlight (mean SunDays)"),
             ("sun_earth_longest_days", "sun_earth_days", "our longest Sun + Earth period (days)",
              "their days of Sun + Earth (mean SunEarth)"))
    for ax, (ours, theirs, xl, yl) in zip(axes, pairs, strict=True):
        if ours not in values:
            ax.axis("off")
            continue
        x = np.array([np.nan if v is None else v for v in values[ours]], float)
        ax.scatter(x, sites[theirs], s=10, c=pd.factorize(sites["region"])[0], cmap="tab20")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    fig.tight_layout()
    return fig


def south_pole_section(root: Path) -> Section:
    """The section from a ``selenite demo`` real-pole folder: light/ (terrain run), sites/ (sites run)."""
    from selenite.embedded import south_pole
    from selenite.sites.inputs import read_regions
    from selenite.sites.rank import regions_from
    from selenite.terrain.references import psr_areas, read_cold_traps, read_reference_sites, site_correlations

    root = Path(root)
    sp = south_pole()
    light, sites_dir = root / "light", root / "sites"
    vis = json.loads((light / "visibility.json").read_text())
    top = pd.read_csv(sites_dir / "top_sites.csv")
    regions = read_regions(sp.regions)
    ref = read_reference_sites(sp.reference_sites)
    sec = Section("The real south pole: where to land")
    p = vis["period"]
    sec.paragraphs.append(
        f"LOLA's south pole at {vis['pixel_m']:.0f} m (84–90°S; NASA public domain, shipped with selenite) with the "
        f"1.79 km polar cap as the far field; light over {p['start'][:10]} to {p['end']} every {p['step_hours']:g} h "
        f"({p['instants']} instants), {vis['azimuths']} azimuths, the eye {vis.get('observer_height_m', 0):g} m above "
        f"the ground. Mean Sun visibility {vis['sun_visibility_mean_pct']:.1f} %, Earth "
        f"{vis['earth_visibility_mean_pct']:.1f} %, permanently shadowed {100 * vis['psr_fraction']:.2f} % of the map "
        f"(outlined in blue on the Sun map). Sites: 1 km cells within 6° of the pole ranked by the mission scorer — "
        "the share of landing times from which a 6.5-day stay keeps the Sun and the Earth in view, where the slope, a "
        "PSR within walking reach and the touchdown hazard allow — with nothing fitted to the references below.")
    sec.figures.append((figure_data_uri(map_figure(sp.dem, light, top, regions, ref)),
                        "The real south pole: relief, Sun visibility, 6.5-day Sun + Earth stays"))
    inside = {}
    for reg in regions_from(regions):
        hit = reg.contains(top["lon"].to_numpy(), top["lat"].to_numpy())
        for i in np.flatnonzero(hit):
            inside.setdefault(int(i), reg.name)
    rows = [[int(r["rank"]), f"{r['lat']:.3f}", f"{r['lon']:.3f}", f"{100 * r['score']:.1f}",
             f"{r.get('sun_mean_pct', float('nan')):.1f}", f"{r.get('earth_mean_pct', float('nan')):.1f}",
             f"{r.get('slope_mean_deg', float('nan')):.1f}", f"{r.get('psr_distance_km', float('nan')):.1f}",
             inside.get(i, "—"), r.get("why", "")] for i, r in top.head(10).iterrows()]
    sec.tables.append((["rank", "lat", "lon", "6.5-day Sun + Earth stays (% of landing times)", "Sun %", "Earth %",
                        "slope °", "PSR km", "Artemis III region", "reasons (Shapley, score units)"], rows))
    vpath = sites_dir / "validation.json"
    if vpath.exists():
        v = json.loads(vpath.read_text())["regions"]
        sec.paragraphs.append(
            "Against NASA's 9 Artemis III regions (never seen by the scorer): regions holding one of the top N sites, "
            f"against {v['n_random']} random rankings of the same {v['candidates']['region']:,} cells (and of the "
            f"{v['candidates'].get('eligible', 0):,} cells that pass the gates), sites ≥ 5 km apart.")
        sec.tables.append((["top N", "regions matched", "random mean", "p", "random among gated cells", "p",
                            "regions"],
                           [[n, m["regions_matched"], f"{m['random_mean']:.2f}", f"{m['p_value']:.3f}",
                             f"{m['random_eligible']['random_mean']:.2f}" if "random_eligible" in m else "—",
                             f"{m['random_eligible']['p_value']:.3f}" if "random_eligible" in m else "—",
                             ", ".join(m["regions"])] for n, m in v["top_n"].items()]))
    c = site_correlations(light, ref)
    names = {"sun_visibility_vs_sun_days": "our Sun visibility vs their days of sunlight",
             "longest_sun_days_vs_sun_days": "our longest sunlit period vs their days of sunlight",
             "sun_earth_longest_days_vs_sun_earth_days": "our longest Sun + Earth period vs their Sun + Earth days"}
    sec.paragraphs.append(
        "Against Wueller et al. (2026, JGR Planets; CC BY 4.0): Spearman ρ at the pixel holding each of their "
        "sites (their days are the mean of their eight yearly columns; their window within each year is not in "
        "their files). Their sites were placed on 5–20 m relief; at 240 m a site's pixel mixes its ridge with its "
        "slopes.")
    sec.tables.append((["comparison", "ρ", "p", "sites"],
                       [[names[k], f"{c[k]['rho']:.3f}", f"{c[k]['p_value']:.1e}", c[k]["n"]] for k in names
                        if k in c]))
    sec.figures.append((figure_data_uri(wueller_figure(c["values"], ref)),
                        "Wueller et al.'s sites: their days against our light (colour: their region)"))
    psr = psr_areas(light / "psr.tif", read_cold_traps(sp.cold_traps))
    sec.paragraphs.append(
        "Against the published permanently shadowed areas of the cold-trap craters (Tye et al. 2015, Cannon et al. "
        "2020, via moonpies): ours is the connected PSR at their PSR centroid (a rim circle can hold several PSRs, "
        "as Cabeus does, and a PSR can spill past it, as Sverdrup's does); every PSR pixel inside the rim is shown "
        f"beside it. Published PSRs are at the surface; this run's eye is {vis.get('observer_height_m', 0):g} m up.")
    sec.tables.append((["crater", "D km", "published km²", "ours km²", "ratio", "inside the rim km²", "ratio"],
                       [[r["crater"], f"{r['diameter_km']:g}", f"{r['theirs_km2']:.1f}", f"{r['ours_km2']:.1f}",
                         f"{r['ratio']:.2f}", f"{r['in_rim_km2']:.1f}", f"{r['in_rim_ratio']:.2f}"] for r in psr]))
    sec.paragraphs.append(
        "The same checks at eye heights of 0, 2 and 10 m and over Wueller et al.'s own years, the 10 m Connecting "
        "Ridge against these 240 m, the craters detected on this DEM against Head et al. 2010, and the learned "
        "scorer beside the mission scorer are in docs/benchmarks.md (`selenite bench south-pole`).")
    return sec
