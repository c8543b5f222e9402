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
LIGHT_ENV = "SELENITE_APP_LIGHT"        # light preset of the live real-pole run (default: 18.6 years at 12 h)
MAX_UPLOAD_BYTES = 64 * 1024 * 1024

# the stage a manifest's command belongs to
STAGES = {"sites rank": "sites", "terrain visibility": "terrain", "terrain attributes": "terrain_attributes",
          "locate run": "locate", "geology analyze": "geology", "synth world": "world", "demo": "demo",
          "south pole": "south pole"}
CONTAINERS = ("demo", "south pole")     # runs made of other runs (shown through them)

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


def _subfolders(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


def is_real_pole(run_dir: Path) -> bool:
    """Whether a run read the LOLA south pole shipped with selenite."""
    from selenite.embedded import south_pole

    try:
        man = json.loads((Path(run_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return man.get("params", {}).get("dem") == str(south_pole().dem.resolve())


def discover(runs: list[Path]) -> dict[str, list[Path]]:
    """Stage → run folders, from the given folders and their sub-folders two levels down (a demo holds the real
    pole's runs in south_pole/); runs on the real south pole come first."""
    found: dict[str, list[Path]] = {}
    for root in runs:
        root = Path(root)
        candidates = [root] + [q for p in _subfolders(root) for q in [p, *_subfolders(p)]]
        for d in candidates:
            stage = stage_of(d)
            if stage and stage not in CONTAINERS and d not in found.setdefault(stage, []):
                found[stage].append(d)
    for dirs in found.values():
        dirs.sort(key=lambda d: 0 if is_real_pole(d) else 1)
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


def live_south_pole(work: Path, notify: Notify = None) -> Path:
    """Light and landing sites on the real south pole shipped with selenite (``selenite demo``'s first part);
    the light preset from SELENITE_APP_LIGHT (default: 18.6 years at 12 h, about 3 minutes on 2 cores)."""
    from selenite.pipelines import run_south_pole

    preset = os.environ.get(LIGHT_ENV) or "default"
    return run_south_pole(Path(work) / "south_pole", light_preset=preset,
                          sites_preset="quick" if preset == "quick" else "default", progress=notify)


def live_terrain(work: Path, notify: Notify = None) -> Path:
    """Sunlight, Earth visibility, stays and PSR on the real south pole (LOLA 240 m with the 1.79 km cap)."""
    return live_south_pole(work, notify) / "light"


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


def live_sites(work: Path, notify: Notify = None) -> Path:
    """Landing sites ranked on the real south pole by the mission scorer, checked against the Artemis III regions."""
    return live_south_pole(work, notify) / "sites"
