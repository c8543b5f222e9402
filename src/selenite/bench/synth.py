"""Benchmark: time and memory to build synthetic worlds, per preset."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from selenite.config import resolve_config
from selenite.synth.world import WorldConfig, build_world, confs


def bench_world(preset: str, seed: int = 1) -> dict:
    cfg = resolve_config(WorldConfig, confs, stage="synth", preset=preset, overrides={"seed": seed})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = build_world(cfg, Path(tmp) / "w")
        seconds = time.perf_counter() - t0
        frames = len(list((out / "descent" / "frames").glob("*.png")))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"preset": preset, "size_px": cfg.size_px, "frames": frames,
            "frame_size": f"{cfg.descent.width}×{cfg.descent.height}", "seconds": seconds, "peak_rss_mib": peak_mib}
