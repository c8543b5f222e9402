"""Settings of ``selenite locate`` (defaults, named presets, TOML ``[locate]`` table)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from selenite.config import StageConfig


class LocateConfig(StageConfig):
    # local features
    features: Literal["xfeat", "aliked", "sift"] = "xfeat"
    max_keypoints: int = Field(2048, ge=64)
    max_side: int = Field(1024, ge=64)             # frames are matched at this long side (px) at most
    threads: int = Field(2, ge=1)
    # lens: self-calibration ("auto": when the camera file gives no distortion, i.e. only a field of view)
    self_calibrate: Literal["auto", "on", "off"] = "auto"
    calibration_features: Literal["sift", "xfeat", "aliked"] = "sift"   # sub-pixel keypoints (measured: xfeat 1.1 px)
    calibration_frames: int = Field(40, ge=3)
    # obscuration (plume) detection on the last frames
    plume_sharpness_ratio: float = Field(0.45, gt=0, lt=1)
    plume_contrast_ratio: float = Field(0.6, gt=0, lt=1)
    plume_window: int = Field(8, ge=2)
    thumb_side: int = Field(160, ge=32)
    # SSIM adaptive sampling (only of sequences longer than sample_above usable frames: a short one is kept whole)
    sample_above: int = Field(60, ge=0)
    ssim_threshold: float = Field(0.55, gt=-1, lt=1)
    max_interval: int = Field(8, ge=1)
    min_overlap: float = Field(0.5, gt=0, le=1)              # thumbnails must overlap this much after registration
    ssim_blur_px: float = Field(1.0, ge=0)                   # Gaussian σ (thumbnail px) before the SSIM
    # matching and reconstruction
    sequential_overlap: int = Field(3, ge=1)
    loop_strides: list[int] = [5, 8, 13]
    min_pair_inliers: int = Field(25, ge=8)
    refine_tracks: bool = False                              # keypoints tracked to sub-pixel along every track (opt-in)
    vertical_frames: int = Field(6, ge=2)
    start_altitude_m: float | None = Field(None, gt=0)
    altitude_search_m: tuple[float, float] = (100.0, 20000.0)
    # map search
    keyframes: int = Field(5, ge=1)
    rotations: int = Field(12, ge=4)
    search_max_pixels: int = Field(12_000_000, ge=100_000)
    search_tile: int = Field(1024, ge=128)                   # DOM tiles matched on their own (search-level px)
    template_min_side: int = Field(160, ge=48)
    dom_keypoints_per_mpx: int = Field(6000, ge=500)
    min_map_inliers: int = Field(12, ge=6)
    min_peak_ratio: float = Field(2.5, ge=1.0)               # best map support / best elsewhere: a unique place
    unconfirmed_min_support: float = Field(2.0, ge=1.0)      # × min_map_inliers: a place the fine step cannot
                                                             # confirm must have this much support to be reported
    # fine fix
    tie_gsd_ratio: tuple[float, float] = (0.45, 2.5)
    tie_frames: int = Field(16, ge=1)
    bootstrap: int = Field(200, ge=20)
    direct_target_ratio: float = Field(0.6, gt=0.1, le=2)   # frames shrunk to this many DOM px per pixel
    direct_min_side: int = Field(96, ge=32)                  # ... and used only if still this big
    direct_max_ratio: float = Field(0.5, gt=0)             # frames finer than the DOM by this much, at least
    direct_sys_rms: float = Field(0.5, ge=0)                 # systematic σ per axis, in local residual RMS
    direct_margin: float = Field(0.1, ge=0, lt=0.5)          # the point must be this far inside the frame
    direct_max_frames: int = Field(24, ge=1)                 # at most this many frames, spread evenly
    direct_window: int = Field(768, ge=128)                  # each cropped to this many px (after shrinking)
    seed: int = 0


confs: dict[str, dict] = {
    "default": {},
    "fast": {"max_keypoints": 1024, "max_side": 640, "tie_frames": 8, "bootstrap": 100},
}
