"""What the web app's pages share, kept free of Streamlit so it is tested on its own: the run folders the app was
started with, uploads checked by content and kept in the session's own folder, and the live runs on the
synthetic world.

Run folders are recognised by their ``manifest.json`` (the command that wrote them): a demo folder holds one run
per stage, and any stage's own run folder can be given too.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from selenite.errors import InputError

RUNS_ENV = "SELENITE_APP_RUNS"          # os.pathsep-separated run folders, set by ``selenite app --run``
WORK_ENV = "SELENITE_APP_WORK"          # where live runs and uploads go (default: a fresh temporary folder)
MAX_UPLOAD_BYTES = 64 * 1024 * 1024

# the stage a manifest's command belongs to
STAGES = {"sites rank": "sites", "terrain visibility": "terrain", "terrain attributes": "terrain_attributes",
          "locate run": "locate", "geology analyze": "geology", "synth world": "world", "demo": "demo"}

# content signatures: (leading bytes, kind, suffix)
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png", ".png"), (b"\xff\xd8\xff", "jpeg", ".jpg"),
          (b"II*\x00", "tiff", ".tif"), (b"MM\x00*", "tiff", ".tif"), (b"II+\x00", "tiff", ".tif"),
          (b"MM\x00+", "tiff", ".tif"))


def configured_runs() -> list[Path]:
    raw = os.environ.get(RUNS_ENV, "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


def stage_of(run_dir: Path) -> str | None:
    try:
        man = json.loads((Path(run_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return STAGES.get(man.get("command", ""))


def discover(runs: list[Path]) -> dict[str, list[Path]]:
    """Stage → run folders, from the given folders and (for a demo or any parent folder) their sub-folders."""
    found: dict[str, list[Path]] = {}
    for root in runs:
        root = Path(root)
        candidates = [root] + (sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else [])
        for d in candidates:
            stage = stage_of(d)
            if stage and stage != "demo" and d not in found.setdefault(stage, []):
                found[stage].append(d)
    return found


def check_runs(runs: list[Path]) -> list[Path]:
    """The folders given to ``selenite app --run``, each holding at least one selenite run."""
    for r in runs:
        if not Path(r).is_dir():
            raise InputError(f"{r}: no such run folder")
        if not discover([r]):
            raise InputError(f"{r}: no selenite run in it (no manifest.json of a sites, terrain, locate, geology "
                             "or demo run)")
    return [Path(r).resolve() for r in runs]


def work_root() -> Path:
    """The folder for this app's uploads and live runs (one per server process unless SELENITE_APP_WORK)."""
    given = os.environ.get(WORK_ENV)
    root = Path(given) if given else Path(tempfile.gettempdir()) / f"selenite-app-{os.getpid()}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def sniff(data: bytes) -> tuple[str, str] | None:
    for magic, kind, suffix in _MAGIC:
        if data.startswith(magic):
            return kind, suffix
    return None


def save_upload(data: bytes, folder: Path, allowed: tuple[str, ...] = ("png", "jpeg", "tiff"),
                max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Store uploaded bytes in ``folder`` under a name made from their content (never the name the browser
    sent, so nothing can be written outside the folder); the type is read from the bytes, not the name."""
    if not data:
        raise InputError("the uploaded file is empty")
    if len(data) > max_bytes:
        raise InputError(f"the uploaded file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    found = sniff(data)
    if found is None or found[0] not in allowed:
        raise InputError("the uploaded file is not " + " / ".join(a.upper() for a in allowed)
                         + " (its content was checked, not its name)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upload_{hashlib.sha256(data).hexdigest()[:16]}{found[1]}"
    if not path.exists():
        tmp = path.with_name("." + path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


Notify = Callable[[str, float], None] | None


def synthetic_world(work: Path, notify: Notify = None) -> Path:
    """The small synthetic world (seed 1): DEM, crater catalogue, orbital map and a 320 × 240 descent (the
    preset whose descent the tests locate to under a DOM pixel)."""
    from selenite.config import resolve_config
    from selenite.pipelines import run_synth_world
    from selenite.synth.world import WorldConfig, confs

    cfg = resolve_config(WorldConfig, confs, stage="synth", preset="small", overrides={"seed": 1})
    return run_synth_world(cfg, Path(work) / "world", progress=notify)


def live_terrain(work: Path, notify: Notify = None) -> Path:
    """A year of sunlight and Earth visibility on the synthetic world's DEM (coarse: 16 azimuths)."""
    from selenite.config import resolve_config
    from selenite.terrain.config import TerrainConfig, confs
    from selenite.terrain.pipeline import run_visibility

    world = synthetic_world(work, notify)
    cfg = resolve_config(TerrainConfig, confs, stage="terrain", preset="year", overrides={"azimuths": 16})
    out = Path(work) / "terrain_visibility"
    run_visibility(world / "dem.tif", out, cfg, progress=notify)
    return out


def live_locate(work: Path, notify: Notify = None) -> Path:
    """The synthetic world's descent located on its orbital map."""
    from selenite.config import resolve_config
    from selenite.locate.config import LocateConfig, confs
    from selenite.locate.pipeline import run_locate

    world = synthetic_world(work, notify)
    alt0 = json.loads((world / "descent" / "truth.json").read_text())["frames"][0]["altitude_m"]
    cfg = resolve_config(LocateConfig, confs, stage="locate", preset="default",
                         overrides={"start_altitude_m": round(alt0, 1)})
    out = Path(work) / "locate"
    run_locate(world / "descent" / "frames", world / "orbital_map.tif", world / "descent" / "camera.json", out, cfg,
               progress=notify)
    return out


def live_geology(work: Path, notify: Notify = None) -> Path:
    """The geology chain on the located synthetic descent (the world's Sun, as the mission knows it)."""
    from selenite.geology.analyze import run_analyze

    locate = live_locate(work, notify)
    sun = json.loads((Path(work) / "world" / "descent" / "truth.json").read_text())["sun"]
    out = Path(work) / "geology"
    run_analyze(out, run=locate, sun=(sun["azimuth_deg"], sun["elevation_deg"]), trials=100, notify=notify)
    return out


def live_sites(work: Path, notify: Notify = None, seed: int = 1) -> Path:
    """Landing sites ranked on a synthetic south pole (304 km at 2 km/px, 10 km cells, quick preset)."""
    from selenite.config import resolve_config
    from selenite.sites.config import SitesConfig, confs
    from selenite.sites.pipeline import run_rank
    from selenite.synth.polar import PolarSpec, write_polar_dem

    polar = Path(work) / "south_pole" / "polar.tif"
    if not polar.exists():
        polar.parent.mkdir(parents=True, exist_ok=True)
        write_polar_dem(polar, PolarSpec(size_px=304, pixel_m=2000.0, seed=seed))
    cfg = resolve_config(SitesConfig, confs, stage="sites", preset="quick", overrides={"cell_m": 10000.0})
    out = Path(work) / "sites"
    run_rank(out, cfg, dem=polar, craters=polar.with_name("polar_craters.csv"), progress=notify)
    return out
