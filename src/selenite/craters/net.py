"""The crater detector network, its input normalisation and its weights files.

A U-Net (segmentation-models-pytorch) with a MobileNetV3-small encoder (timm), sized for the CPU: 1.4 M
parameters, about 3 Mpx/s forward on 2 cores. One input channel; three output channels: rim logit, centre
logit, log2 diameter (px). The same architecture serves DEMs and optical images; a weights file says which
kind it was trained on and refuses the other.

Inputs are normalised so that one tile and the whole raster see the same numbers (no seams):
- image: (I − median) / (1.4826 · MAD) over the whole image at that pyramid level, clipped to ±6;
- DEM: the height minus a smooth trend (block means of 16 px, Gaussian σ 2 blocks, bilinear back: a
  high-pass that keeps craters up to ~100 px), divided by 1.4826 · MAD of that residual, clipped to ±6.
"""

from __future__ import annotations

import datetime as _dt
import json
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from selenite.errors import InputError

KINDS = ("dem", "image")
FORMAT = "selenite-craters-weights/1"
ARCH = {"name": "unet", "encoder": "tu-mobilenetv3_small_100", "decoder_channels": [64, 32, 24, 16, 16],
        "in_channels": 1, "classes": 3}


def build_model(arch: dict | None = None):
    import segmentation_models_pytorch as smp

    a = dict(ARCH if arch is None else arch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smp.Unet(a["encoder"], encoder_weights=None, in_channels=a["in_channels"], classes=a["classes"],
                        decoder_channels=tuple(a["decoder_channels"]))


def _robust_scale(a: np.ndarray) -> np.ndarray:
    sample = a[:: max(1, a.shape[0] // 512), :: max(1, a.shape[1] // 512)]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        raise InputError("the input has no valid pixels")
    med = float(np.median(finite))
    mad = float(np.median(np.abs(finite - med))) * 1.4826
    if not mad > 0:
        mad = float(np.std(finite)) or 1.0
    out = (a - med) / mad
    return np.clip(np.nan_to_num(out, nan=0.0), -6.0, 6.0).astype(np.float32)


def smooth_trend(a: np.ndarray, block: int = 16, sigma_blocks: float = 2.0) -> np.ndarray:
    """A smooth version of ``a``: block means, a Gaussian in block units, bilinear interpolation back."""
    ny, nx = a.shape
    by, bx = -(-ny // block), -(-nx // block)
    pad = np.pad(a, ((0, by * block - ny), (0, bx * block - nx)), mode="edge")
    coarse = pad.reshape(by, block, bx, block).mean(axis=(1, 3))
    coarse = ndimage.gaussian_filter(coarse, sigma_blocks, mode="nearest")
    rows = (np.arange(ny) + 0.5) / block - 0.5
    cols = (np.arange(nx) + 0.5) / block - 0.5
    rr = np.broadcast_to(rows[:, None], (ny, nx))
    cc = np.broadcast_to(cols[None, :], (ny, nx))
    return ndimage.map_coordinates(coarse, [rr, cc], order=1, mode="nearest").astype(np.float32)


def normalise(kind: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float32)
    if kind == "dem":
        filled = np.where(np.isfinite(a), a, np.nanmedian(a)) if not np.isfinite(a).all() else a
        return _robust_scale(filled - smooth_trend(filled))
    return _robust_scale(a)


def save_weights(path: str | Path, model, kind: str, meta: dict) -> None:
    import torch

    if kind not in KINDS:
        raise ValueError(kind)
    meta = json.loads(json.dumps(meta, default=str))     # plain types only: the file loads with weights_only
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "kind": kind, "arch": ARCH, "meta": meta,
                "saved": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "state_dict": state}, path)


def load_weights(path: str | Path, kind: str | None = None):
    """(model in eval mode, the file's record without the tensors). Refuses files that are not selenite
    crater weights, or weights of another kind."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such weights file")
    try:
        rec = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise InputError(f"{path}: not a selenite crater weights file ({type(exc).__name__})") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise InputError(f"{path}: not a selenite crater weights file")
    if kind is not None and rec["kind"] != kind:
        raise InputError(f"{path}: these weights were trained on {rec['kind']} input, not {kind}")
    model = build_model(rec["arch"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in rec["state_dict"].items()})
    model.eval()
    info = {k: v for k, v in rec.items() if k != "state_dict"}
    return model, info


def default_weights(kind: str) -> Path:
    return Path(__file__).with_name("weights") / f"craters_{kind}.pt"
