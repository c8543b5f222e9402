"""Crater detection: the network's maps over a whole raster, and its maps turned into crater objects.

1. An image pyramid (2×2 block means per level) lets one network, trained for craters of 4–64 px, find
   craters of any size: level k keeps the craters of ``[min_d, 48]`` px at level 0 and ``[24, 48]`` px at its
   own scale above it, so the levels do not overlap.
2. Each level is normalised once as a whole (``net.normalise``) and run in tiles with overlap, blended with a
   tapered weight so no seams show; optional flip test-time augmentation averages the four flips.
3. Objects: local maxima of the centre map above the threshold; sub-pixel centre by a parabola through the
   3×3 neighbourhood; diameter = 2 ** (centre-weighted mean of the size map in that neighbourhood); score =
   the centre probability. Greedy non-maximum suppression removes a weaker crater that would match a stronger
   one under the evaluation rule (centre within half a diameter, diameter ratio ≤ 1.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from selenite.craters.net import normalise

LEVEL_MAX_D = 48.0
LEVEL_MIN_D_UPPER = 24.0


@dataclass
class DetectSettings:
    threshold: float = 0.3
    min_diameter_px: float = 4.0
    max_diameter_px: float | None = None
    tta: bool = False
    tile: int = 768
    overlap: int = 64
    threads: int | None = None
    engine: str = "onnxruntime"     # or "torch"


class Runner:
    """The network as a function of a (1, 1, h, w) float32 array → (1, 3, h, w) raw outputs.

    ``onnxruntime``: the model is exported to ONNX in memory (dynamic height/width) and run by ONNX Runtime,
    2.5× faster than eager PyTorch on 2 CPU cores (5.1 against 2.1 Mpx/s at 768², outputs equal to 3e-5);
    ``torch``: eager PyTorch.
    """

    def __init__(self, model, engine: str = "onnxruntime", threads: int | None = None):
        import torch

        self.engine = engine
        if engine == "torch":
            self.model = model
            return
        if engine != "onnxruntime":
            raise ValueError(f"engine must be onnxruntime or torch, not {engine!r}")
        import io
        import warnings

        import onnxruntime as ort

        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.zeros(1, 1, 64, 64), buf, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {2: "h", 3: "w"}, "y": {2: "h", 3: "w"}}, opset_version=17,
                              dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or torch.get_num_threads()
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.engine == "torch":
            import torch

            with torch.inference_mode():
                return self.model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        return self.session.run(None, {"x": np.ascontiguousarray(x, np.float32)})[0]


def _taper(n: int, overlap: int) -> np.ndarray:
    """Blending weight along one tile side: 0 over the outer quarter of the overlap (where the tile's own
    zero padding reaches), then a linear ramp to 1."""
    w = np.ones(n, np.float32)
    if overlap > 0:
        margin = overlap // 4
        ramp = np.zeros(overlap, np.float32)
        ramp[margin:] = (np.arange(overlap - margin, dtype=np.float32) + 0.5) / (overlap - margin)
        w[:overlap] = ramp
        w[-overlap:] = ramp[::-1]
    return w


def _forward(run, x: np.ndarray, tta: bool) -> np.ndarray:
    """(3, h, w): rim prob, centre prob, log2 D, for one normalised tile whose sides are multiples of 32."""
    flips = [(), (1,), (0,), (0, 1)] if tta else [()]
    acc = None
    for dims in flips:
        inp = np.flip(x, dims) if dims else x
        out = run(np.ascontiguousarray(inp)[None, None])[0]
        out = np.flip(out, tuple(d + 1 for d in dims)) if dims else out
        out = np.concatenate([1.0 / (1.0 + np.exp(-out[:2])), out[2:]])
        acc = out if acc is None else acc + out
    return (acc / len(flips)).astype(np.float32)


def predict_maps(model, x: np.ndarray, *, tile: int = 768, overlap: int = 64, tta: bool = False) -> np.ndarray:
    """The network's three maps over a whole normalised array, tiled with tapered overlap blending.
    ``model`` is a Runner, or a torch module (run eagerly)."""
    if not isinstance(model, Runner):
        model = Runner(model, "torch")
    ny, nx = x.shape
    if ny <= tile and nx <= tile:
        py, px = -ny % 32, -nx % 32
        pad = np.pad(x, ((0, py), (0, px)), mode="reflect" if min(ny, nx) > max(py, px) else "edge")
        return _forward(model, pad, tta)[:, :ny, :nx]
    tile = max(64, tile - tile % 32)
    step = tile - overlap
    acc = np.zeros((3, ny, nx), np.float32)
    wsum = np.zeros((ny, nx), np.float32)
    starts_y = list(range(0, max(ny - tile, 0) + 1, step)) or [0]
    starts_x = list(range(0, max(nx - tile, 0) + 1, step)) or [0]
    if starts_y[-1] + tile < ny:
        starts_y.append(ny - tile)
    if starts_x[-1] + tile < nx:
        starts_x.append(nx - tile)
    for y0 in starts_y:
        for x0 in starts_x:
            sub = x[y0:y0 + tile, x0:x0 + tile]
            h, w = sub.shape
            py, px = -h % 32, -w % 32
            sub = np.pad(sub, ((0, py), (0, px)), mode="reflect" if min(h, w) > max(py, px) else "edge")
            out = _forward(model, sub, tta)[:, :h, :w]
            wy = _taper(h, overlap if ny > tile else 0)
            wx = _taper(w, overlap if nx > tile else 0)
            if y0 == 0:
                wy[:overlap] = 1.0
            if y0 + h >= ny:
                wy[-overlap:] = 1.0
            if x0 == 0:
                wx[:overlap] = 1.0
            if x0 + w >= nx:
                wx[-overlap:] = 1.0
            wt = wy[:, None] * wx[None, :]
            acc[:, y0:y0 + h, x0:x0 + w] += out * wt
            wsum[y0:y0 + h, x0:x0 + w] += wt
    return acc / np.maximum(wsum, 1e-6)


def extract_objects(maps: np.ndarray, threshold: float, d_range: tuple[float, float]) -> pd.DataFrame:
    """Crater objects from the centre and size maps of one level (pixel units of that level)."""
    centre, size = maps[1], maps[2]
    peak = (centre >= threshold) & (centre == ndimage.maximum_filter(centre, size=3, mode="constant"))
    rows, cols = np.nonzero(peak)
    ny, nx = centre.shape
    inner = (rows > 0) & (rows < ny - 1) & (cols > 0) & (cols < nx - 1)
    rows, cols = rows[inner], cols[inner]
    if rows.size == 0:
        return pd.DataFrame({"x_px": [], "y_px": [], "diameter_px": [], "score": []})
    c = centre
    v0 = c[rows, cols]
    def _vertex(m, p):
        den = m - 2 * v0 + p
        return np.where(den < 0, 0.5 * (m - p) / np.where(den < 0, den, -1.0), 0.0).clip(-0.5, 0.5)
    dx = _vertex(c[rows, cols - 1], c[rows, cols + 1])
    dy = _vertex(c[rows - 1, cols], c[rows + 1, cols])
    wsum = np.zeros(rows.size)
    ssum = np.zeros(rows.size)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            w = c[rows + oy, cols + ox]
            wsum += w
            ssum += w * size[rows + oy, cols + ox]
    diam = np.exp2(ssum / np.maximum(wsum, 1e-9))
    df = pd.DataFrame({"x_px": cols + dx, "y_px": rows + dy, "diameter_px": diam, "score": v0.astype(float)})
    return df[(df.diameter_px >= d_range[0]) & (df.diameter_px <= d_range[1])].reset_index(drop=True)


def suppress(df: pd.DataFrame, max_offset: float = 0.5, max_ratio: float = 1.5) -> pd.DataFrame:
    """Greedy NMS by score: drop a crater that a stronger kept one would match (centre within max_offset·D of
    the larger, diameter ratio ≤ max_ratio)."""
    if len(df) < 2:
        return df.reset_index(drop=True)
    df = df.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    xy = df[["x_px", "y_px"]].to_numpy()
    d = df["diameter_px"].to_numpy()
    tree = cKDTree(xy)
    keep = np.ones(len(df), bool)
    neighbours = tree.query_ball_point(xy, max_offset * d * max_ratio)
    for i in range(len(df)):
        if not keep[i]:
            continue
        for j in neighbours[i]:
            if j <= i or not keep[j]:
                continue
            big = max(d[i], d[j])
            if (np.hypot(*(xy[i] - xy[j])) <= max_offset * big
                    and big / min(d[i], d[j]) <= max_ratio):
                keep[j] = False
    return df[keep].reset_index(drop=True)


def block_mean(a: np.ndarray, f: int = 2) -> np.ndarray:
    ny, nx = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    return a[:ny, :nx].reshape(ny // f, f, nx // f, f).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def pyramid_levels(shape: tuple[int, int], max_diameter_px: float | None, min_side: int = 64) -> int:
    """How many levels: each halves the size, while the level keeps at least ``min_side`` px and the craters
    it would find are not all above ``max_diameter_px``."""
    n = 1
    while min(shape) // 2**n >= min_side:
        if max_diameter_px is not None and LEVEL_MIN_D_UPPER * 2**n > max_diameter_px:
            break
        n += 1
    return n


def detect_array(model, kind: str, array: np.ndarray, settings: DetectSettings, notify=None,
                 keep_maps: bool = False):
    """Craters in a whole DEM or image (pixel units of the input). Returns (table, level-0 maps or None)."""
    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)
    run = model if isinstance(model, Runner) else Runner(model, settings.engine, settings.threads)
    levels = pyramid_levels(array.shape, settings.max_diameter_px)
    found, maps0 = [], None
    current = np.asarray(array, np.float32)
    for k in range(levels):
        if k:
            current = block_mean(current)
        x = normalise(kind, current)
        maps = predict_maps(run, x, tile=settings.tile, overlap=settings.overlap, tta=settings.tta)
        if k == 0 and keep_maps:
            maps0 = maps
        lo = settings.min_diameter_px if k == 0 else LEVEL_MIN_D_UPPER
        hi = LEVEL_MAX_D if k < levels - 1 else 64.0
        df = extract_objects(maps, settings.threshold, (lo, hi))
        s = 2**k
        df["x_px"] = (df.x_px + 0.5) * s - 0.5
        df["y_px"] = (df.y_px + 0.5) * s - 0.5
        df["diameter_px"] *= s
        df["level"] = k
        found.append(df)
        if notify:
            notify("detect", (k + 1) / levels)
    out = suppress(pd.concat(found, ignore_index=True))
    if settings.max_diameter_px is not None:
        out = out[out.diameter_px <= settings.max_diameter_px]
    out = out[out.diameter_px >= settings.min_diameter_px]
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True), maps0
