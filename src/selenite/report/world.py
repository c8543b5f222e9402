"""Report section for a synthetic world run folder (reads its files only)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from selenite.cratering import chronology  # noqa: E402
from selenite.geo.raster import read_dem, read_raster  # noqa: E402
from selenite.report.html import Section, figure_data_uri, png_data_uri  # noqa: E402


def _hillshade(dem: np.ndarray, pixel_m: float, az=315.0, el=30.0) -> np.ndarray:
    gy, gx = np.gradient(dem.astype(float), pixel_m)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)
    a, e = np.radians(az), np.radians(el)
    return np.clip(np.sin(e) * np.cos(slope) + np.cos(e) * np.sin(slope) * np.cos(a - aspect), 0, 1)


def world_section(world_dir: str | Path) -> Section:
    w = Path(world_dir)
    manifest = json.loads((w / "manifest.json").read_text())
    p = manifest["params"]
    dem, info = read_dem(w / "dem.tif")
    cat = pd.read_csv(w / "craters.csv")
    vis = cat[cat.visible]
    sec = Section("Synthetic world")
    sec.paragraphs.append(
        f"Seed {p['seed']}: a {info.width}×{info.height} DEM at {p['pixel_m']} m/px centred on "
        f"{p['site_lat_deg']:.4f}°, {p['site_lon_deg']:.4f}°E (local stereographic map on the 1737.4 km sphere), "
        f"model age {p['age_ga']} Ga. {len(cat)} craters ≥ {cat.diameter_m.min():.1f} m formed; {len(vis)} are "
        "still visible after diffusive degradation.")
    counts = vis["class"].value_counts()
    sec.tables.append((["Basilevsky class", *["A", "AB", "B", "BC", "C"]],
                       [["visible craters", *[int(counts.get(k, 0)) for k in ["A", "AB", "B", "BC", "C"]]]]))

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.imshow(_hillshade(dem, p["pixel_m"]), cmap="gray", extent=info.bounds[0:1] + info.bounds[2:3]
              + info.bounds[1:2] + info.bounds[3:4])
    big = vis.nlargest(300, "diameter_m")
    for c in big.itertuples():
        ax.add_patch(plt.Circle((c.x_m, c.y_m), c.diameter_m / 2, fill=False, color="tab:orange", lw=0.6))
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    sec.figures.append((figure_data_uri(fig), "Hillshade of the DEM with the largest visible craters outlined."))

    dom, _ = read_raster(w / "orbital_map.tif")
    buf = io.BytesIO()
    Image.fromarray(dom.astype(np.uint8)).resize((512, 512)).save(buf, format="PNG")
    sec.figures.append((png_data_uri(buf.getvalue()), f"Orbital map (orthographic, {p['orbital_gsd_m']} m/px, "
                        f"sun {p['orbital_sun_elevation_deg']}° high)."))

    area_km2 = info.width * info.height * (p["pixel_m"] / 1000) ** 2
    chron = chronology("neukum2001")
    d = np.sort(cat.diameter_m.to_numpy() / 1000)[::-1]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.loglog(d, np.arange(1, d.size + 1) / area_km2, ".", ms=3, label="all craters formed")
    dv = np.sort(vis.diameter_m.to_numpy() / 1000)[::-1]
    if dv.size:
        ax.loglog(dv, np.arange(1, dv.size + 1) / area_km2, ".", ms=3, label="visible craters")
    grid = np.geomspace(d.min(), d.max(), 50) if d.size else np.geomspace(0.01, 1, 50)
    ax.loglog(grid, chron.production.cumulative(grid, chron.n1(p["age_ga"])), "k-",
              label=f"Neukum 2001 PF, {p['age_ga']} Ga")
    ax.set_xlabel("D (km)")
    ax.set_ylabel("N(≥D) per km²")
    ax.legend(fontsize=8)
    sec.figures.append((figure_data_uri(fig), "Cumulative crater size-frequency distribution of the world."))

    truth_path = w / "descent" / "truth.json"
    if truth_path.exists():
        truth = json.loads(truth_path.read_text())
        fr = pd.DataFrame(truth["frames"])
        land = truth["landing"]
        sec.paragraphs.append(
            f"Descent: {len(fr)} frames {truth['camera']['width']}×{truth['camera']['height']} from "
            f"{fr.altitude_m.max():.0f} m to {fr.altitude_m.min():.1f} m; landing at {land['lat']:.5f}°, "
            f"{land['lon'] % 360:.5f}°E (DOM pixel {land['dom_col']:.1f}, {land['dom_row']:.1f}); "
            f"{int(fr.obscured.sum())} last frames obscured by the plume.")
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        axes[0].imshow(dom, cmap="gray", extent=[info.bounds[0], info.bounds[2], info.bounds[1], info.bounds[3]])
        axes[0].plot(fr.x, fr.y, "-", color="tab:cyan", lw=1)
        axes[0].plot(land["x"], land["y"], "r+", ms=12)
        axes[0].set_title("ground track over the orbital map")
        dist = np.concatenate([[0], np.cumsum(np.hypot(np.diff(fr.x), np.diff(fr.y)))])
        for phase, g in fr.assign(dist=dist).groupby("phase", sort=False):
            axes[1].plot(g.dist, g.altitude_m, ".", label=phase)
        axes[1].set_yscale("log")
        axes[1].set_xlabel("distance along track (m)")
        axes[1].set_ylabel("altitude (m)")
        axes[1].legend(fontsize=8)
        sec.figures.append((figure_data_uri(fig), "Descent trajectory: ground track and altitude profile."))
        picks = np.unique(np.linspace(0, len(fr) - 1, 8).round().astype(int))
        thumbs = [Image.open(w / "descent" / fr.file[i]).convert("L").resize((240, 180)) for i in picks]
        sheet = Image.new("L", (240 * 4, 180 * ((len(thumbs) + 3) // 4)))
        for k, im in enumerate(thumbs):
            sheet.paste(im, ((k % 4) * 240, (k // 4) * 180))
        buf = io.BytesIO()
        sheet.save(buf, format="PNG")
        sec.figures.append((png_data_uri(buf.getvalue()), "Descent frames " + ", ".join(map(str, picks)) + "."))
    return sec
