"""Training the segmentation U-Net on CPU: Dice + cross-entropy, flip augmentation, AdamW with a one-cycle
schedule; the best epoch on the validation set is kept; temperatures (single pass, Monte-Carlo predictive) are
fitted on the validation set."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from selenite.segment.infer import miou
from selenite.segment.net import build
from selenite.synth.scenes import CLASSES


def dice_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    ce = F.cross_entropy(logits, target)
    p = torch.softmax(logits, 1)
    oh = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
    inter = (p * oh).sum((0, 2, 3))
    den = p.sum((0, 2, 3)) + oh.sum((0, 2, 3))
    dice = 1 - ((2 * inter + 1) / (den + 1)).mean()
    return ce + dice


def evaluate(model, x: np.ndarray, y: np.ndarray, batch: int = 64) -> float:
    model.eval()
    preds = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch])[:, None]
            preds.append(model(xb).argmax(1).numpy())
    return miou(np.concatenate(preds), y, len(CLASSES))[0]


def train(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, variant: str = "unet-dropout",
          epochs: int = 20, batch: int = 16, lr: float = 2e-3, seed: int = 0, threads: int = 2,
          notify=None, scope: str = "decoder") -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    model = build(variant, scope=scope)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(x) / batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    best, best_state, hist = -1.0, None, []
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        order = rng.permutation(len(x))
        losses = []
        for i in range(0, len(x), batch):
            j = order[i:i + batch]
            xb = torch.from_numpy(x[j])[:, None]
            yb = torch.from_numpy(y[j].astype(np.int64))
            if rng.random() < 0.5:
                xb, yb = xb.flip(3), yb.flip(2)
            if rng.random() < 0.5:
                xb, yb = xb.flip(2), yb.flip(1)
            # brightness / contrast jitter: exposure differs from camera to camera
            g = torch.from_numpy(rng.uniform(0.7, 1.3, (len(j), 1, 1, 1)).astype(np.float32))
            xb = (xb * g).clamp(0, 1)
            loss = dice_ce(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        v = evaluate(model, xv, yv)
        hist.append({"epoch": ep + 1, "loss": float(np.mean(losses)), "val_miou": v,
                     "seconds": round(time.time() - t0, 1)})
        if v > best:
            best, best_state = v, {k: t.detach().clone() for k, t in model.state_dict().items()}
        if notify:
            notify("train", (ep + 1) / epochs)
    model.load_state_dict(best_state)
    model.eval()
    return model, {"history": hist, "best_val_miou": best, "epochs": epochs, "batch": batch, "lr": lr,
                   "seed": seed, "variant": variant,
                   "dropout_scope": scope if variant == "unet-dropout" else None}


def fit_temperature_single(model, xv: np.ndarray, yv: np.ndarray, pixels: int = 400_000) -> float:
    """Temperature on the validation scenes (deterministic logits, a random subset of pixels)."""
    from selenite.segment.infer import fit_temperature
    from selenite.segment.net import set_dropout

    set_dropout(model, False)
    with torch.inference_mode():
        logits = torch.cat([model(torch.from_numpy(xv[i:i + 32])[:, None]) for i in range(0, len(xv), 32)])
    lg = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    lb = torch.from_numpy(yv.reshape(-1).astype(np.int64))
    idx = torch.from_numpy(np.random.default_rng(0).choice(len(lb), min(pixels, len(lb)), replace=False))
    return fit_temperature(lg[idx].clone(), lb[idx])


def fit_temperature_mc(model, xv: np.ndarray, yv: np.ndarray, passes: int = 20, n: int = 50,
                       seed: int = 0) -> float:
    """Temperature of the predictive mean softmax(logits / T) over the samples — ``passes`` Monte-Carlo passes of
    each ensemble member, or (``passes=0``) one deterministic pass of each — on ``n`` validation scenes, by minimum
    negative log-likelihood over a grid of T (the averaging itself softens the prediction, so the single-pass
    temperature does not carry over)."""
    from selenite.segment.infer import pad32, sample_logits
    from selenite.segment.net import members_of, set_dropout

    torch.manual_seed(seed)
    set_dropout(model, passes > 0)
    logits = []
    with torch.inference_mode():
        for i in range(min(n, len(xv))):
            x, (h, w) = pad32(torch.from_numpy(xv[i])[None, None])
            logits.append(torch.cat([sample_logits(m, x, passes)[:, :, :h, :w] for m in members_of(model)]))
    set_dropout(model, False)
    L = torch.stack(logits)                                  # (n, samples, C, h, w)
    y = torch.from_numpy(yv[:len(L)].astype(np.int64))
    grid = np.exp(np.linspace(np.log(0.4), np.log(4.0), 61))
    nll = []
    for T in grid:
        p = torch.softmax(L / float(T), 2).mean(1)             # (n, C, h, w)
        nll.append(float(-torch.log(p.gather(1, y[:, None]).clamp_min(1e-12)).mean()))
    return float(grid[int(np.argmin(nll))])


def fit_temperatures(model, xv: np.ndarray, yv: np.ndarray) -> dict:
    """Both temperatures of a model or an ensemble, set on it and returned."""
    from selenite.segment.net import Ensemble

    t = {"temperature": fit_temperature_mc(model, xv, yv, passes=0) if isinstance(model, Ensemble)
         else fit_temperature_single(model, xv, yv)}
    if model.variant == "unet-dropout":
        t["temperature_mc"] = fit_temperature_mc(model, xv, yv)
    model.temperature = t["temperature"]
    model.temperature_mc = t.get("temperature_mc", t["temperature"])
    return t
