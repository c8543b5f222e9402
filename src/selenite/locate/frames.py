"""Descent frames: listing, reading (8/16 bit, grey or RGB), checks, thumbnails, plume detection, SSIM sampling.

Plume detection: engine exhaust lifts dust that veils the last frames: they turn brighter, lose contrast and
lose fine detail. Each frame's *sharpness* (standard deviation of the Laplacian of a slightly smoothed frame,
divided by the frame's own standard deviation, so it is independent of exposure) and contrast are compared with
the running median of the preceding clear frames; the trailing run of frames that fall below both ratios is
marked obscured and excluded (Shu et al. 2026 excluded the last 10 Chang'E-6 frames, below 8.6 m, by eye).

SSIM sampling (Shu et al. 2026, Methods, Eq. 1): from the current frame, try a jump of ``max_interval`` frames;
halve the jump while the structural similarity (scikit-image) of the two thumbnails is below the threshold. The
thumbnails are first registered by phase correlation (sub-pixel shift) and compared on their overlap, slightly
smoothed: on texture-rich lunar frames the SSIM of unregistered thumbnails measures pixel misalignment, not
change (a 1-thumbnail-pixel shift alone brings real LROC NAC crops to SSIM 0.23–0.56), so a dense sequence would
keep nearly every frame. The jump is also halved while the thumbnails overlap by less than ``min_overlap``.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from selenite.errors import InputError

FRAME_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_frames(folder: str | Path) -> list[Path]:
    """Image files of a folder in time order (natural sort of the file names)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"frame folder not found: {folder}")
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS),
                   key=_natural_key)
    if not files:
        raise InputError(f"no frames (PNG/TIFF/JPEG) in {folder}")
    return files


def frame_size(path: Path) -> tuple[int, int]:
    """(width, height) of a frame from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError):
        raise InputError(f"cannot read frame {path}") from None


def check_frames(paths: list[Path], width: int, height: int) -> None:
    """Header checks of every frame before any work: readable, 8/16 bit, the camera's size."""
    from PIL import Image, UnidentifiedImageError

    for p in paths:
        try:
            with Image.open(p) as im:
                size, mode = im.size, im.mode
        except (UnidentifiedImageError, OSError):
            raise InputError(f"cannot read frame {p}") from None
        if size == (0, 0) or 0 in size:
            raise InputError(f"frame {p.name} is empty")
        if mode not in ("L", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I", "LA", "P"):
            raise InputError(f"frame {p.name} has unsupported pixel mode {mode} (8 or 16 bit expected)")
        if size != (width, height):
            raise InputError(f"frame {p.name} is {size[0]}×{size[1]} px but the camera is {width}×{height} px")


def read_frame(path: str | Path) -> np.ndarray:
    """A frame as float32 grey in [0, 1] (8-bit / 255, 16-bit / 65535; RGB averaged to luminance)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InputError(f"cannot read frame {path}")
    if img.dtype == np.uint8:
        scale = 255.0
    elif img.dtype == np.uint16:
        scale = 65535.0
    else:
        raise InputError(f"frame {path} has unsupported pixel type {img.dtype} (8 or 16 bit expected)")
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = img[:, :, :3]
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.shape[2] == 3 else img[:, :, 0]
    return img.astype(np.float32) / np.float32(scale)


def to_uint8(img: np.ndarray, lo_pct: float = 0.5, hi_pct: float = 99.5) -> np.ndarray:
    """Contrast-stretch a float frame to 8 bit between two percentiles (feature extractors expect 8 bit)."""
    finite = img[np.isfinite(img)]
    if finite.size == 0:
        return np.zeros(img.shape, np.uint8)
    lo, hi = np.percentile(finite, [lo_pct, hi_pct])
    out = (img - lo) / max(hi - lo, 1e-6) * 255.0
    return np.clip(np.nan_to_num(out), 0, 255).astype(np.uint8)


def _thumb(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape
    k = side / max(h, w)
    return cv2.resize(img, (max(int(round(w * k)), 8), max(int(round(h * k)), 8)), interpolation=cv2.INTER_AREA)


def frame_statistics(paths: list[Path], width: int, height: int, thumb_side: int, threads: int = 2,
                     notify=None) -> tuple[list[dict], np.ndarray]:
    """Read every frame once: checks its size, returns per-frame statistics and a stack of thumbnails."""
    def one(path: Path):
        img = read_frame(path)
        if img.shape != (height, width):
            raise InputError(f"frame {path.name} is {img.shape[1]}×{img.shape[0]} px but the camera is "
                             f"{width}×{height} px")
        sd = float(img.std())
        lap = cv2.Laplacian(cv2.GaussianBlur(img, (0, 0), 1.0), cv2.CV_32F)
        return {"mean": float(img.mean()), "std": sd, "sharpness": float(lap.std() / max(sd, 1e-6))}, \
            _thumb(img, thumb_side)

    stats, thumbs = [], []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for k, (s, t) in enumerate(pool.map(one, paths)):
            stats.append({"index": k, "file": paths[k].name, **s})
            thumbs.append(t)
            if notify and k % 10 == 0:
                notify("frames", k / len(paths))
    return stats, np.stack(thumbs).astype(np.float32)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def detect_obscured(stats: list[dict], thumbs: np.ndarray, sharpness_ratio: float, contrast_ratio: float,
                    window: int) -> list[dict]:
    """Mark the trailing run of veiled frames (plume); adds ``ssim_prev``, ``sharp_ratio`` and ``obscured``."""
    n = len(stats)
    for k in range(n):
        stats[k]["ssim_prev"] = ssim(thumbs[k - 1], thumbs[k]) if k else 1.0
    flagged = np.zeros(n, bool)
    clear_sharp: list[float] = []
    clear_std: list[float] = []
    for k, s in enumerate(stats):
        if len(clear_sharp) >= 2:
            ref_sharp = float(np.median(clear_sharp[-window:]))
            ref_std = float(np.median(clear_std[-window:]))
            s["sharp_ratio"] = s["sharpness"] / max(ref_sharp, 1e-9)
            s["contrast_ratio"] = s["std"] / max(ref_std, 1e-9)
            flagged[k] = s["sharp_ratio"] < sharpness_ratio or (
                s["contrast_ratio"] < contrast_ratio and s["sharp_ratio"] < 0.8)
        else:
            s["sharp_ratio"] = s["contrast_ratio"] = 1.0
        if not flagged[k]:
            clear_sharp.append(s["sharpness"])
            clear_std.append(s["std"])
    # the trailing run: from the first flagged frame after which at least 80 % are flagged
    first = n
    for k in range(n - 1, -1, -1):
        if flagged[k:].mean() >= 0.8 and flagged[k]:
            first = k
    for k, s in enumerate(stats):
        s["obscured"] = bool(k >= first)
        s["degraded"] = bool(flagged[k] and k < first)
    return stats


def registered_ssim(a: np.ndarray, b: np.ndarray, blur_px: float = 1.0) -> tuple[float, float]:
    """SSIM of two thumbnails over their overlap after the sub-pixel shift that registers ``b`` onto ``a``
    (phase correlation, Hann window), both smoothed by a Gaussian of ``blur_px``; returns (SSIM, overlap
    fraction)."""
    h, w = a.shape
    win = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32), win)
    overlap = max(w - abs(dx), 0.0) * max(h - abs(dy), 0.0) / (w * h)
    ix, iy = int(np.ceil(abs(dx))), int(np.ceil(abs(dy)))
    if w - ix < 16 or h - iy < 16:
        return 0.0, overlap
    # b sampled at x + (dx, dy) lines up with a at x
    moved = cv2.warpAffine(b.astype(np.float32), np.float32([[1, 0, dx], [0, 1, dy]]), (w, h),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    c0, c1 = (ix, w) if dx < 0 else (0, w - ix)
    r0, r1 = (iy, h) if dy < 0 else (0, h - iy)
    pa, pb = a[r0:r1, c0:c1].astype(np.float32), moved[r0:r1, c0:c1]
    if blur_px > 0:
        pa, pb = cv2.GaussianBlur(pa, (0, 0), blur_px), cv2.GaussianBlur(pb, (0, 0), blur_px)
    return ssim(pa, pb), float(overlap)


def adaptive_sample(thumbs: np.ndarray, usable: list[int], threshold: float, max_interval: int,
                    min_overlap: float = 0.5, blur_px: float = 1.0) -> list[int]:
    """SSIM adaptive sampling of the usable frames (indices); always keeps the first and last usable frame."""
    if not usable:
        return []

    def similar(i: int, j: int) -> bool:
        s, overlap = registered_ssim(thumbs[i], thumbs[j], blur_px)
        return s >= threshold and overlap >= min_overlap

    chosen = [usable[0]]
    pos = 0
    last = len(usable) - 1
    while pos < last:
        step = min(max_interval, last - pos)
        while step > 1 and not similar(usable[pos], usable[pos + step]):
            step //= 2
        pos += max(step, 1)
        chosen.append(usable[pos])
    return chosen
