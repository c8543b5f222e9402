"""Training and evaluation scenes for the crater detector.

- Synthetic DEM tiles and rendered images from the synthetic world's terrain model (``selenite.synth``):
  exact catalogues; pixel size, surface age, background roughness, sun elevation/azimuth, blur and noise drawn
  at random per scene. A crater is labelled when its degraded depth/D is at least 0.05 in a DEM and 0.08
  in an image (a quarter and two-fifths of a fresh crater's) and it spans at least 3 px. Tiles are
  periodic, so craters across an edge are labelled on both sides.
- Real labelled images: the LROC NAC crops (boxes → circles, ``catalog.read_craters``) with a fixed split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from selenite.craters.catalog import read_craters
from selenite.errors import InputError

# The NAC crops held out from all training and threshold choice (their scores are what is reported), and the
# ones used to choose thresholds and stop training. Fixed before any training: every third crop by name.
NAC_TEST = ("M1183658592", "M1266003170", "M134022629", "M180000082")
NAC_VAL = ("M1155395732", "M161142858")
# A crater is labelled when its degraded depth/D is at least this (fresh: 0.2); an image needs more relief
# than a DEM for a small crater to show through noise and texture (an assumption, checked by eye).
MIN_DEPTH_RATIO = {"dem": 0.05, "image": 0.08}


@dataclass
class Scene:
    array: np.ndarray          # DEM heights (m) or image DN, float32
    craters: pd.DataFrame      # x_px, y_px, diameter_px
    kind: str
    name: str = ""


def _wrap(cat: pd.DataFrame, n: int) -> pd.DataFrame:
    parts = []
    for oy in (-n, 0, n):
        for ox in (-n, 0, n):
            c = cat.copy()
            c["x_px"] += ox
            c["y_px"] += oy
            r = c.diameter_px / 2 + 1
            inside = (c.x_px + r >= 0) & (c.x_px - r < n) & (c.y_px + r >= 0) & (c.y_px - r < n)
            parts.append(c[inside])
    return pd.concat(parts, ignore_index=True)


def synthetic_scene(kind: str, seed: int, size: int = 256) -> Scene:
    """One random synthetic DEM tile or rendered image with its exact visible-crater catalogue."""
    from selenite.synth.terrain import cratered_terrain

    rng = np.random.default_rng(seed)
    pixel_m = float(10 ** rng.uniform(0.7, 2.0))   # 5-100 m: the production function holds above ~10 m
    age = float(rng.uniform(0.3, 3.9))
    slope = float(rng.uniform(0.5, 5.0))
    terr = cratered_terrain((size, size), pixel_m, age_ga=age, seed=int(rng.integers(2**31)),
                            rms_slope_deg=slope, d_min_m=2.0 * pixel_m, d_max_m=size * pixel_m / 3.0)
    cat = terr.craters[terr.craters.depth_to_diameter >= MIN_DEPTH_RATIO[kind]]
    cat = pd.DataFrame({"x_px": cat.col.to_numpy() - 0.0, "y_px": cat.row.to_numpy() - 0.0,
                        "diameter_px": cat.diameter_m.to_numpy() / pixel_m})
    cat = _wrap(cat[cat.diameter_px >= 3.0], size)
    if kind == "dem":
        return Scene(terr.dem, cat, "dem", f"synthetic-dem-{seed}")
    from selenite.synth.render import build_scene, render_orthographic, to_image
    from selenite.synth.terrain import fractal_surface

    var = fractal_surface((size, size), pixel_m * 8, 1.0, 0.5, rng)
    albedo = 0.12 * (1.0 + var / max(var.std(), 1e-9) * rng.uniform(0.0, 0.15))
    scene = build_scene(terr.dem, pixel_m, 0.0, 0.0, np.clip(albedo, 0.02, 0.5),
                        float(rng.uniform(0, 360)), float(rng.uniform(8.0, 55.0)),
                        detail_seed=int(rng.integers(2**31)), detail_amplitude=float(rng.uniform(0.0, 0.15)))
    rad = render_orthographic(scene, pixel_m, (size, size), (0.0, 0.0), supersample=2)
    blur = rng.uniform(0.0, 1.2)
    if blur > 0.2:
        from scipy import ndimage
        rad = ndimage.gaussian_filter(rad, blur, mode="wrap")
    img, _ = to_image(rad, rng, full_well_e=float(10 ** rng.uniform(3.3, 4.5)))
    return Scene(img.astype(np.float32), cat, "image", f"synthetic-image-{seed}")


def nac_scenes(folder: str | Path, names: tuple[str, ...] | None = None) -> list[Scene]:
    """The labelled NAC crops of ``folder`` (``*.png`` with ``*.txt`` box tables), optionally only ``names``
    (the M-number prefixes)."""
    scenes = folder_scenes(folder, "image")
    for s in scenes:
        s.name = s.name.split("_")[0]
    return [s for s in scenes if names is None or s.name in names]


def nac_split(folder: str | Path) -> dict[str, list[Scene]]:
    scenes = nac_scenes(folder)
    return {"test": [s for s in scenes if s.name in NAC_TEST], "val": [s for s in scenes if s.name in NAC_VAL],
            "train": [s for s in scenes if s.name not in NAC_TEST + NAC_VAL]}


def folder_scenes(folder: str | Path, kind: str) -> list[Scene]:
    """Labelled scenes from a folder: each image/DEM (``.png .jpg .tif .tiff .LBL``) with a crater table of the
    same stem (``.csv`` or ``.txt``, any format ``read_craters`` takes; lon/lat tables are placed on a
    georeferenced raster)."""
    from selenite.craters.pipeline import read_dem_input, read_image
    from selenite.craters.rims import catalogue_to_pixels

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of labelled scenes")
    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".lbl"):
            continue
        table = next((p.with_suffix(s) for s in (".csv", ".txt") if p.with_suffix(s).is_file()), None)
        if table is None:
            continue
        arr, info = read_dem_input(p, False) if kind == "dem" else read_image(p)
        cat = read_craters(table)
        if "x_px" not in cat:
            if info is None:
                raise InputError(f"{table}: lon/lat craters need a georeferenced {p.name}")
            cat = catalogue_to_pixels(cat, info)
        out.append(Scene(arr, cat[["x_px", "y_px", "diameter_px"]], kind, p.stem))
    if not out:
        raise InputError(f"{folder}: no image/DEM with a crater table of the same name")
    return out
