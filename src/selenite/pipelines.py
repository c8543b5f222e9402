"""Pipelines that chain stages and attach their reports: what ``selenite synth world`` and ``selenite demo`` run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from selenite.config import resolve_config
from selenite.report.html import write_report
from selenite.runs import Run
from selenite.synth.world import WorldConfig, build_world, confs

Notify = Callable[[str, float], None]


def run_synth_world(cfg: WorldConfig, out: str | Path, *, force: bool = False, progress: Notify | None = None) -> Path:
    """Build the world and its report.html into one run folder."""
    from selenite.report.world import world_section

    out = Path(out)
    build_world(cfg, out, force=force, progress=progress)
    params = json.loads(cfg.model_dump_json())
    with Run(out, command="synth world", params=params) as run:
        reads = ["dem.tif", "craters.csv", "orbital_map.tif"]
        if cfg.descent.enabled:
            reads.append("descent/truth.json")
        run.step("report", ["report.html"],
                 lambda tmp: write_report(tmp["report.html"], "selenite — synthetic world", [world_section(out)],
                                          subtitle=f"seed {cfg.seed}"),
                 reads=reads)
    return out


def run_demo(out: str | Path, *, seed: int = 1, preset: str = "demo", force: bool = False,
             progress: Notify | None = None) -> Path:
    """The demo: synthetic world, then every stage that has landed; returns the path of report.html."""
    from selenite.report.world import world_section

    out = Path(out)
    cfg = resolve_config(WorldConfig, confs, stage="synth", preset=preset, overrides={"seed": seed})
    with Run(out, command="demo", params={"seed": seed, "preset": preset}, force=force) as run:
        world = run_synth_world(cfg, out / "world", force=force, progress=progress)
        sections = lambda: [world_section(world)]  # noqa: E731 - stages append their sections here
        run.step("report", ["report.html"],
                 lambda tmp: write_report(tmp["report.html"], "selenite demo", sections(),
                                          subtitle=f"synthetic world, seed {seed}, preset {preset}"),
                 reads=["world/report.html"])
    return out / "report.html"
