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


def run_south_pole(out: str | Path, *, light_preset: str = "default", sites_preset: str = "default",
                   force: bool = False, progress: Notify | None = None) -> Path:
    """Landing sites on the real south pole shipped with selenite: light from LOLA's 240 m DEM with the 1.79 km cap
    beyond it (``light/``), craters detected on the DEM (``craters/``), sites ranked by the mission scorer within 6°
    of the pole and checked against the Artemis III regions and Wueller et al. 2026's sites (``sites/``)."""
    from selenite.craters.pipeline import detect_file
    from selenite.embedded import south_pole
    from selenite.sites.config import SitesConfig
    from selenite.sites.config import confs as sites_confs
    from selenite.sites.pipeline import run_rank
    from selenite.terrain.config import TerrainConfig
    from selenite.terrain.config import confs as terrain_confs
    from selenite.terrain.pipeline import run_visibility

    out = Path(out)
    sp = south_pole()
    params = {"light_preset": light_preset, "sites_preset": sites_preset}
    with Run(out, command="south pole", params=params, force=force) as run:
        tcfg = resolve_config(TerrainConfig, terrain_confs, stage="terrain", preset=light_preset)
        light = run_visibility(sp.dem, out / "light", tcfg, far_dem=[sp.cap], force=force, progress=progress)
        crater_files = ["craters.csv", "craters_overlay.png", "craters.json", "craters_report.html"]

        def make_craters(tmp):
            import shutil
            import tempfile

            with tempfile.TemporaryDirectory() as d:     # detect_file names its companions after its CSV
                detect_file(dem=sp.dem, image=None, out=Path(d) / "craters.csv", lonlat=True)
                for name in crater_files:
                    shutil.move(Path(d) / name, tmp[f"craters/{name}"])

        run.step("craters", [f"craters/{f}" for f in crater_files], make_craters, reads=[sp.dem])
        scfg = resolve_config(SitesConfig, sites_confs, stage="sites", preset=sites_preset,
                              overrides={"region_lat": -90.0 + SitesConfig().mission_pole_deg})
        run_rank(out / "sites", scfg, dem=sp.dem, light=light, craters=out / "craters" / "craters.csv",
                 regions=sp.regions, reference_sites=sp.reference_sites, force=force, progress=progress)
    return out


def run_demo(out: str | Path, *, seed: int = 1, preset: str = "demo", force: bool = False,
             progress: Notify | None = None) -> Path:
    """The demo: landing sites on the real south pole, then the synthetic world and every stage after landing on
    it; returns the path of report.html."""
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

        # landing sites on the real south pole (LOLA, shipped); the tiny preset keeps its light to a year
        quick = preset == "tiny"
        run_south_pole(out / "south_pole", light_preset="quick" if quick else "default",
                       sites_preset="quick" if quick else "default", force=force, progress=progress)
        reads.append("south_pole/sites/evaluation.json")

        def sections():
            from selenite.report.south_pole import south_pole_section
            from selenite.sites.report import sites_sections_from_run

            secs = [south_pole_section(out / "south_pole"), world_section(world)]
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
            secs += sites_sections_from_run(out / "south_pole" / "sites")
            return secs

        run.step("report", ["report.html"],
                 lambda tmp: write_report(tmp["report.html"], "selenite demo", sections(),
                                          subtitle=f"the real south pole (LOLA); the synthetic world for the stages "
                                                   f"after landing (seed {seed}, preset {preset})"),
                 reads=reads)
    return out / "report.html"
