"""Segmentation datasets: selenite's rendered scenes (``images/`` + ``masks/`` of class indices) and the
Artificial Lunar Rocky Landscape layout (``render/`` images + ``clean/`` colour masks: ground black, small rocks
green, large rocks blue, sky red), both read into (image, class mask) pairs."""

from __future__ import annotations

import json
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from selenite.errors import InputError
from selenite.synth.scenes import CLASSES, SceneSpec, render_scene

ALRL_COLOURS = {(0, 0, 0): 0, (0, 255, 0): 1, (0, 0, 255): 2, (255, 0, 0): 3}


def _one(args):
    out, seed, size = args
    img, mask = render_scene(seed, SceneSpec(size_px=size))
    Image.fromarray(img).save(out / "images" / f"scene_{seed:06d}.png")
    Image.fromarray(mask).save(out / "masks" / f"scene_{seed:06d}.png")
    return np.bincount(mask.ravel(), minlength=len(CLASSES))


def write_scenes(out: str | Path, n: int, first_seed: int = 0, size: int = 128, workers: int = 2,
                 notify=None) -> dict:
    """Render scenes ``first_seed … first_seed + n − 1`` into ``out`` (images/, masks/, dataset.json)."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    counts = np.zeros(len(CLASSES), np.int64)
    jobs = [(out, s, size) for s in range(first_seed, first_seed + n)]
    import multiprocessing

    # spawn, not fork: a parent that has run torch or numba holds OpenMP threads that a fork would break
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn")) as ex:
        for k, c in enumerate(ex.map(_one, jobs, chunksize=8)):
            counts += c
            if notify and k % 20 == 0:
                notify("scenes", (k + 1) / n)
    rec = {"classes": list(CLASSES), "n": n, "first_seed": first_seed, "size_px": size,
           "class_fraction": (counts / counts.sum()).round(5).tolist(), "spec": SceneSpec(size_px=size).__dict__}
    (out / "dataset.json").write_text(json.dumps(rec, indent=1, default=list) + "\n")
    return rec


def _key(p: Path) -> str:
    m = re.findall(r"\d+", p.stem)
    return m[-1].lstrip("0") or "0" if m else p.stem


def pairs(root: str | Path) -> list[tuple[Path, Path, str]]:
    """(image, mask, layout) pairs of a dataset folder: selenite's images/ + masks/, or ALRL's render/ + clean/
    (searched one level down too, as the dataset unpacks into images/render, images/clean)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset folder")
    for base in (root, root / "images"):
        for img_dir, mask_dir, layout in ((base / "images", base / "masks", "selenite"),
                                          (base / "render", base / "clean", "alrl")):
            if img_dir.is_dir() and mask_dir.is_dir():
                masks = {_key(p): p for p in mask_dir.iterdir() if p.suffix.lower() in (".png", ".jpg")}
                out = [(p, masks[_key(p)], layout) for p in sorted(img_dir.iterdir())
                       if p.suffix.lower() in (".png", ".jpg", ".jpeg") and _key(p) in masks]
                if out:
                    return out
    raise InputError(f"{root}: no image/mask pairs (expected images/ + masks/, or ALRL's render/ + clean/)")


def read_pair(img_path: Path, mask_path: Path, layout: str, size: int | None = None):
    """(grey float32 image in 0..1, class mask uint8), optionally resized to size × size."""
    img = Image.open(img_path).convert("L")
    if layout == "alrl":
        rgb = np.asarray(Image.open(mask_path).convert("RGB"))
        # nearest of the four colours (the masks are JPEG-compressed in places)
        cols = np.array(list(ALRL_COLOURS), float)
        d = ((rgb[..., None, :].astype(float) - cols[None, None]) ** 2).sum(-1)
        mask = np.array(list(ALRL_COLOURS.values()), np.uint8)[d.argmin(-1)]
        mask_img = Image.fromarray(mask)
    else:
        mask_img = Image.open(mask_path)
    if size is not None:
        img = img.resize((size, size), Image.BILINEAR)
        mask_img = mask_img.resize((size, size), Image.NEAREST)
    return np.asarray(img, np.float32) / 255.0, np.asarray(mask_img, np.uint8)


def load_arrays(root: str | Path, size: int | None = None, limit: int | None = None):
    """Every pair of a dataset as stacked arrays (N, H, W) float32 and uint8."""
    ps = pairs(root)[:limit]
    xs, ys = zip(*(read_pair(a, b, lay, size) for a, b, lay in ps), strict=True)
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise InputError(f"{root}: images of several sizes {sorted(shapes)[:3]}; give a --size to resize them")
    return np.stack(xs), np.stack(ys)
