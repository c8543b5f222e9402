"""Prediction with flip test-time augmentation, Monte-Carlo dropout and deep ensembles; uncertainty maps;
calibration.

For T samples (stochastic passes × ensemble members × flips) with class probabilities p_t, the prediction is
their mean p̄;
predictive entropy H[p̄] = −Σ p̄ log p̄ (total uncertainty), expected entropy E_t H[p_t] (aleatoric), and mutual
information MI = H[p̄] − E_t H[p_t] (epistemic; Gal & Ghahramani 2016). Expected calibration error: pixels in
15 equal-width confidence bins, ECE = Σ_b (n_b / N) |accuracy_b − confidence_b| (Guo et al. 2017).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from selenite.segment.net import forward_decoder, members_of, set_dropout

FLIPS = ((), (3,), (2,), (2, 3))     # identity, horizontal, vertical, both (LunarSite's 4-flip TTA)


def pad32(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % 32, (-w) % 32
    return F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x, (h, w)


def prepare(image: np.ndarray, work_px: int | None) -> torch.Tensor:
    """Grey float image (H, W) in 0..1 → (1, 1, h, w) at the working size (longest side ``work_px``)."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    if work_px and max(x.shape[-2:]) != work_px:
        s = work_px / max(x.shape[-2:])
        x = F.interpolate(x, size=(max(1, round(x.shape[-2] * s)), max(1, round(x.shape[-1] * s))),
                          mode="bilinear", align_corners=False, antialias=True)
    return x


def sample_logits(net, x: torch.Tensor, passes: int) -> torch.Tensor:
    """(max(1, passes), C, h, w) logits of one network on a padded (1, 1, h, w) input; with dropout on, the
    passes differ. Decoder-only dropout runs the encoder once and the decoder as one batch on its features."""
    n = max(1, passes)
    if getattr(net, "scope", None) == "all" and passes:
        return net(x.expand(n, *x.shape[1:]))                 # dropout in the encoder: whole passes
    feats = net.encoder(x)
    return forward_decoder(net, [f.expand(n, *f.shape[1:]) for f in feats])


@torch.inference_mode()
def predict_probs(model, x: torch.Tensor, tta: bool = False, mc_passes: int = 0, seed: int = 0,
                  out_size: tuple[int, int] | None = None, temperature: float | None = None) -> dict[str, np.ndarray]:
    """Mean class probabilities (C, H, W) and, with ``mc_passes`` or an ensemble, entropy / expected entropy / MI
    maps. Each member's encoder runs once per flip; its Monte-Carlo passes run the decoder as one batch on its
    features.
    Logits are divided by ``temperature``; by default the model's own (fitted on validation scenes and stored with
    the weights): the Monte-Carlo one with ``mc_passes``, the single-pass one without."""
    if temperature is None:
        temperature = getattr(model, "temperature_mc" if mc_passes else "temperature", 1.0)
    torch.manual_seed(seed)
    xp, (h, w) = pad32(x)
    samples = []
    flips = FLIPS if tta else ((),)
    set_dropout(model, mc_passes > 0)
    members = members_of(model)
    for net in members:
        for fl in flips:
            logits = sample_logits(net, torch.flip(xp, fl) if fl else xp, mc_passes)
            p = torch.softmax(logits / temperature, 1)
            samples.append(torch.flip(p, fl) if fl else p)
    set_dropout(model, False)
    P = torch.cat(samples)[:, :, :h, :w]                      # (S, C, h, w)
    if out_size is not None and tuple(P.shape[-2:]) != tuple(out_size):
        P = F.interpolate(P, size=out_size, mode="bilinear", align_corners=False)
    mean = P.mean(0)
    out = {"probs": mean.numpy()}
    if mc_passes > 0 or len(members) > 1:
        eps = 1e-12
        H = -(mean * torch.log(mean + eps)).sum(0)
        EH = -(P * torch.log(P + eps)).sum(1).mean(0)
        out.update(entropy=H.numpy(), expected_entropy=EH.numpy(), mutual_information=(H - EH).clamp_min(0).numpy())
    return out


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> tuple[float, dict]:
    """Expected calibration error of (N, C) probabilities against (N,) labels, with the reliability table."""
    conf = probs.max(1)
    pred = probs.argmax(1)
    correct = pred == labels
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    n = np.bincount(idx, minlength=bins)
    acc = np.bincount(idx, weights=correct, minlength=bins) / np.maximum(n, 1)
    cf = np.bincount(idx, weights=conf, minlength=bins) / np.maximum(n, 1)
    e = float((n / max(n.sum(), 1) * np.abs(acc - cf)).sum())
    return e, {"edges": edges.tolist(), "count": n.tolist(), "accuracy": acc.tolist(), "confidence": cf.tolist()}


def miou(pred: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[float, list[float]]:
    """Mean intersection over union over the classes present in either (per-class IoU, NaN when absent)."""
    ious = []
    for c in range(n_classes):
        a, b = pred == c, labels == c
        u = (a | b).sum()
        ious.append(float((a & b).sum() / u) if u else float("nan"))
    return float(np.nanmean(ious)), ious


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature T minimising the negative log-likelihood of softmax(logits / T) (Guo et al. 2017)."""
    logt = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([logt], lr=0.1, max_iter=100)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / logt.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(logt.detach().exp())
