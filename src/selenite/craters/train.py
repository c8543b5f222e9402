"""Training the crater detector (CPU or GPU) and choosing its detection threshold on held-out scenes.

Loss: rim — binary cross-entropy (positives weighted 4×); centre — cross-entropy against the Gaussian peaks,
each pixel weighted 1 + 9·target; size — L1 on log2 D where the size weight is 1. AdamW, linear warm-up over
a tenth of the steps then a cosine decay; random 256² crops with the 8 flips/rotations; images also get a
random gamma. The threshold kept in the weights is the one that maximises object F1 on the validation
scenes (never the reported test ones).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from selenite.craters.data import Scene
from selenite.craters.detect import DetectSettings, Runner, detect_array
from selenite.craters.metrics import scene_scores
from selenite.craters.net import build_model, normalise
from selenite.craters.rims import detector_targets

TARGET_RANGE = (4.0, 64.0)


@dataclass
class TrainSettings:
    steps: int = 2000
    batch: int = 16
    crop: int = 256
    lr: float = 3e-3
    seed: int = 0
    device: str = "cpu"
    d_range: tuple[float, float] = TARGET_RANGE
    log_every: int = 100
    workers: int = 0
    history: list = field(default_factory=list)


def _prepare(scenes: list[Scene], d_range) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for s in scenes:
        t = detector_targets(s.array.shape, s.craters.x_px, s.craters.y_px, s.craters.diameter_px, d_range)
        out.append((np.asarray(s.array, np.float32), t))
    return out


def _batch(data, kind: str, n: int, crop: int, rng: np.random.Generator):
    xs, ts = [], []
    for _ in range(n):
        a, t = data[rng.integers(len(data))]
        ny, nx = a.shape
        h, w = min(crop, ny), min(crop, nx)
        y0, x0 = rng.integers(ny - h + 1), rng.integers(nx - w + 1)
        a, t = a[y0:y0 + h, x0:x0 + w], t[:, y0:y0 + h, x0:x0 + w]
        if kind == "image":
            lo, hi = float(a.min()), float(a.max())
            a = lo + (hi - lo) * ((a - lo) / max(hi - lo, 1e-6)) ** rng.uniform(0.7, 1.4)
        x = normalise(kind, a)
        k = int(rng.integers(4))
        x, t = np.rot90(x, k), np.rot90(t, k, axes=(1, 2))
        if rng.random() < 0.5:
            x, t = x[:, ::-1], t[:, :, ::-1]
        if x.shape != (crop, crop):
            py, px = crop - x.shape[0], crop - x.shape[1]
            x = np.pad(x, ((0, py), (0, px)))
            t = np.pad(t, ((0, 0), (0, py), (0, px)))
        xs.append(np.ascontiguousarray(x))
        ts.append(np.ascontiguousarray(t))
    return np.stack(xs)[:, None], np.stack(ts)


class _Batches(torch.utils.data.IterableDataset):
    """An endless stream of random training batches (each DataLoader worker with its own generator)."""

    def __init__(self, data, kind, batch, crop, seed):
        self.data, self.kind, self.batch, self.crop, self.seed = data, kind, batch, crop, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            yield _batch(self.data, self.kind, self.batch, self.crop, rng)


def train_model(kind: str, scenes: list[Scene], settings: TrainSettings, model=None, notify=None):
    """Train (or go on training ``model``) on ``scenes``; returns the model in eval mode on the CPU."""
    import torch.nn.functional as F

    torch.manual_seed(settings.seed)
    dev = torch.device(settings.device)
    model = (model or build_model()).to(dev).train()
    data = _prepare(scenes, settings.d_range)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    warm = max(1, settings.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (
        1.0 + np.cos(np.pi * min(i, settings.steps) / settings.steps)))
    pos_w = torch.tensor(4.0, device=dev)
    stream = _Batches(data, kind, settings.batch, settings.crop, settings.seed)
    if settings.workers > 0:
        stream = torch.utils.data.DataLoader(stream,
                                             batch_size=None, num_workers=settings.workers,
                                             pin_memory=dev.type == "cuda", prefetch_factor=4)
    batches = iter(stream)
    t0 = time.perf_counter()
    run = []
    for step in range(settings.steps):
        xb, tb = next(batches)
        x = torch.as_tensor(xb).to(dev, non_blocking=True)
        t = torch.as_tensor(tb).to(dev, non_blocking=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            out = model(x)
        out = out.float()
        rim = F.binary_cross_entropy_with_logits(out[:, 0], t[:, 0], pos_weight=pos_w)
        cen = F.binary_cross_entropy_with_logits(out[:, 1], t[:, 1], weight=1.0 + 9.0 * t[:, 1])
        wsz = t[:, 3]
        size = (torch.abs(out[:, 2] - t[:, 2]) * wsz).sum() / wsz.sum().clamp(min=1.0)
        loss = rim + cen + 0.5 * size
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run.append([loss.item(), rim.item(), cen.item(), size.item()])
        if (step + 1) % settings.log_every == 0 or step + 1 == settings.steps:
            m = np.mean(run, axis=0)
            run = []
            rec = {"step": step + 1, "loss": round(float(m[0]), 4), "rim": round(float(m[1]), 4),
                   "centre": round(float(m[2]), 4), "size": round(float(m[3]), 4),
                   "seconds": round(time.perf_counter() - t0, 1)}
            settings.history.append(rec)
            if notify:
                notify("train", (step + 1) / settings.steps, rec)
    return model.cpu().eval()


def score_scenes(model, kind: str, scenes: list[Scene], settings: DetectSettings, thresholds=None) -> dict:
    """Object scores summed over scenes (micro-averaged), for one or several thresholds."""
    thresholds = [settings.threshold] if thresholds is None else list(thresholds)
    low = DetectSettings(**{**settings.__dict__, "threshold": min(thresholds)})
    run = Runner(model, settings.engine, settings.threads)
    dets = [detect_array(run, kind, s.array, low)[0] for s in scenes]
    return {float(th): scene_scores([d[d.score >= th] for d in dets], scenes, settings.min_diameter_px)
            for th in thresholds}


def choose_threshold(model, kind: str, scenes: list[Scene], settings: DetectSettings) -> tuple[float, dict]:
    grid = np.round(np.arange(0.1, 0.85, 0.05), 2)
    res = score_scenes(model, kind, scenes, settings, grid)
    best = max(res, key=lambda th: res[th]["f1"])
    return best, res[best]
