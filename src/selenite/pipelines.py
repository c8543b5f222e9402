"""Pipelines that chain stages and attach their reports: what ``selenite synth world`` and ``selenite demo`` run."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from selenite.config import resolve_config
from selenite.errors import SeleniteError
from selenite.report.html import Section, write_report
from selenite.runs import Run
from selenite.synth.world import WorldConfig, build_world, confs

Notify = Callable[[str, float], None]
log = logging.getLogger(__name__)


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
    from selenite.locate.config import LocateConfig
    from selenite.locate.config import confs as locate_confs
    from selenite.locate.pipeline import run_locate
    from selenite.locate.report import locate_section_from_run
    from selenite.report.world import world_section
    from selenite.terrain.config import TerrainConfig
    from selenite.terrain.config import confs as terrain_confs
    from selenite.terrain.pipeline import run_attributes, run_visibility
    from selenite.terrain.report import attributes_section_from_run, visibility_section_from_run

    out = Path(out)
    cfg = resolve_config(WorldConfig, confs, stage="synth", preset=preset, overrides={"seed": seed})
    with Run(out, command="demo", params={"seed": seed, "preset": preset}, force=force) as run:
        world = run_synth_world(cfg, out / "world", force=force, progress=progress)
        dem = world / "dem.tif"
        # terrain: attributes, and a year of sunlight / Earth visibility on the world's DEM
        tcfg = resolve_config(TerrainConfig, terrain_confs, stage="terrain", preset="year", overrides={"azimuths": 90})
        run_attributes(dem, out / "terrain_attributes", tcfg, force=force, progress=progress)
        run_visibility(dem, out / "terrain_visibility", tcfg, force=force, progress=progress)
        reads = ["world/report.html", "terrain_attributes/attributes.json", "terrain_visibility/visibility.json"]
        truth = world / "descent" / "truth.json"
        locate_error = None
        if cfg.descent.enabled:
            # the descent located on the orbital map; the first frame's altitude as a lander's altimeter gives it
            alt0 = json.loads(truth.read_text())["frames"][0]["altitude_m"]
            lcfg = resolve_config(LocateConfig, locate_confs, stage="locate", preset="default",
                                  overrides={"start_altitude_m": round(alt0, 1)})
            try:
                run_locate(world / "descent" / "frames", world / "orbital_map.tif",
                           world / "descent" / "camera.json", out / "locate", lcfg, force=force, progress=progress)
                reads.append("locate/landing.json")
            except SeleniteError as exc:
                # the demo goes on with the other stages and says so, in its report and on stderr
                locate_error = str(exc)
                log.warning("the descent could not be located: %s", exc)
        geology_error = None
        if cfg.descent.enabled and locate_error is None:
            # the located descent's geology: the Sun of the landing is known to the mission (the world's)
            from selenite.geology.analyze import run_analyze

            sun = json.loads(truth.read_text())["sun"]
            try:
                run_analyze(out / "geology", run=out / "locate", sun=(sun["azimuth_deg"], sun["elevation_deg"]),
                            trials=100, force=force, notify=progress)
                reads.append("geology/geology.json")
            except SeleniteError as exc:
                geology_error = str(exc)
                log.warning("the geology chain failed: %s", exc)

        # landing sites on a synthetic south pole (608 km at 1 km/px, 5 km cells, the rule label)
        from selenite.sites.config import SitesConfig
        from selenite.sites.config import confs as sites_confs
        from selenite.sites.pipeline import run_rank
        from selenite.sites.report import sites_sections_from_run
        from selenite.synth.polar import PolarSpec, write_polar_dem

        polar = out / "south_pole" / "polar.tif"
        if not polar.exists():
            polar.parent.mkdir(parents=True, exist_ok=True)
            write_polar_dem(polar, PolarSpec(size_px=608, pixel_m=1000.0, seed=seed))
        scfg = resolve_config(SitesConfig, sites_confs, stage="sites", preset="quick", overrides={"cell_m": 5000.0})
        run_rank(out / "sites", scfg, dem=polar, craters=polar.with_name("polar_craters.csv"), force=force,
                 progress=progress)
        reads.append("sites/evaluation.json")

        def sections():
            secs = [world_section(world)]
            if cfg.descent.enabled and locate_error is None:
                secs.append(locate_section_from_run(out / "locate", truth))
            elif cfg.descent.enabled:
                secs.append(Section("Descent localisation", [f"The descent could not be located: {locate_error}. "
                                                             "The other stages ran."]))
            if cfg.descent.enabled and locate_error is None:
                from selenite.geology.report import geology_section
                from selenite.geology.validate import analyze_against_truth

                if geology_error is None:
                    secs.append(geology_section(out / "geology",
                                                truth=analyze_against_truth(out / "geology", world)))
                else:
                    secs.append(Section("Surface geology", [f"The geology chain failed: {geology_error}."]))
            secs += [attributes_section_from_run(out / "terrain_attributes"),
                     visibility_section_from_run(out / "terrain_visibility", dem)]
            secs += sites_sections_from_run(out / "sites")
            return secs

        run.step("report", ["report.html"],
                 lambda tmp: write_report(tmp["report.html"], "selenite demo", sections(),
                                          subtitle=f"synthetic world, seed {seed}, preset {preset}"),
                 reads=reads)
    return out / "report.html"
