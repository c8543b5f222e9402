"""The run archive: a run folder, its manifest, atomic writes, skip-if-done and verification.

Every pipeline writes into one folder. ``manifest.json`` there records the inputs (path, size, sha256), the
parameters, the package versions, and for every step its outputs (path, size, sha256), its fingerprint and its
time. Each output is first written to a hidden temporary file beside its final name and renamed into place
only when complete, so a killed run never leaves a half-written output under a final name. A step whose
fingerprint (its parameters and the checksums of the files it reads) is unchanged and whose outputs exist and
verify is skipped; ``force=True`` redoes it. A run killed at any point and started again therefore finishes
with the same outputs as an uninterrupted run, provided each step is deterministic.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from selenite.errors import InputError, RunError

MANIFEST = "manifest.json"
LOCK = ".selenite.lock"
TMP_MARK = ".tmp-"
VERSIONED_PACKAGES = (
    "selenite", "numpy", "scipy", "rasterio", "pyproj", "numba", "scikit-image", "opencv-python-headless",
    "geopandas", "xarray", "dask", "torch", "pycolmap", "xgboost",
)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON text (sorted keys) used for fingerprints and stable output files."""
    return json.dumps(obj, sort_keys=True, default=_json_default, indent=1)


def temp_path_for(path: Path) -> Path:
    """Hidden temporary name beside ``path`` that keeps its suffix (so format detection still works)."""
    return path.with_name(f".{path.stem}{TMP_MARK}{os.getpid()}{path.suffix}")


def _fsync_replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically, on failure it is removed."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(final)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to {tmp}")
        _fsync_replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def load_json_object(path: str | Path, what: str) -> dict:
    """A JSON file that must hold an object; a missing, unreadable or non-object file is the user's to fix."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{what} {p} is not valid JSON") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} {p} must hold a JSON object")
    return data


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def package_versions(names: Iterable[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def file_record(path: Path, root: Path | None = None) -> dict[str, Any]:
    shown = str(path.relative_to(root)) if root is not None else str(path.resolve())
    return {"path": shown, "size": path.stat().st_size, "sha256": sha256_file(path)}


@dataclass
class StepResult:
    """What a step produced: its final output paths and whether it was skipped."""

    name: str
    outputs: dict[str, Path]
    skipped: bool
    seconds: float = 0.0
    value: Any = field(default=None, repr=False)


class Run:
    """A run folder with its manifest.

    Parameters
    ----------
    root : the run folder (created if missing; an existing folder must be empty or a run of the same command).
    command : the pipeline's name, e.g. ``"synth world"``.
    params : the run's resolved parameters (JSON-serialisable), recorded in the manifest.
    force : redo every step even when its outputs exist and verify.
    """

    def __init__(self, root: str | Path, *, command: str, params: Mapping[str, Any], force: bool = False):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise RunError(f"run folder {self.root} exists and is not a folder")
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.root / LOCK, "a")  # noqa: SIM115 - held for the run's lifetime
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise RunError(f"run folder {self.root} is in use by another selenite process") from None
        self.command = command
        self.force = force
        self.params = json.loads(canonical_json(params))
        self._started = time.perf_counter()
        self._clean_temp_files()
        manifest_path = self.root / MANIFEST
        if manifest_path.exists():
            try:
                self.manifest = json.loads(manifest_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RunError(f"{manifest_path} is not a valid manifest; use a new run folder") from None
            if self.manifest.get("command") != command:
                raise RunError(
                    f"{self.root} holds a '{self.manifest.get('command')}' run, not '{command}'; use a new folder"
                )
        else:
            others = [p for p in self.root.iterdir() if p.name != LOCK]
            if others:
                raise RunError(f"{self.root} is not empty and holds no selenite run; use a new or empty folder")
            self.manifest = {"command": command, "steps": {}, "inputs": []}
        self.manifest.update(
            {"params": self.params, "versions": package_versions(), "selenite_manifest_version": 1}
        )
        self._save()

    # -- bookkeeping -----------------------------------------------------------------------------------
    def _clean_temp_files(self) -> None:
        for p in self.root.rglob(f".*{TMP_MARK}*"):
            if p.is_file():
                p.unlink(missing_ok=True)

    def _save(self) -> None:
        steps = self.manifest.get("steps", {})
        self.manifest["outputs"] = [rec for s in steps.values() for rec in s["outputs"]]
        self.manifest["timings_s"] = {name: s["seconds"] for name, s in steps.items()}
        write_text_atomic(self.root / MANIFEST, canonical_json(self.manifest) + "\n")

    def close(self) -> None:
        self.manifest["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.manifest["wall_s"] = round(time.perf_counter() - self._started, 3)
        self._save()
        self._lock_fh.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._lock_fh.close()

    def path(self, rel: str) -> Path:
        return self.root / rel

    def add_input(self, path: str | Path, role: str) -> dict[str, Any]:
        """Record an input file (path, size, sha256) under a role name."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"input not found: {p}")
        rec = {"role": role, **file_record(p)}
        self.manifest["inputs"] = [r for r in self.manifest["inputs"] if r["role"] != role] + [rec]
        self._save()
        return rec

    # -- steps -----------------------------------------------------------------------------------------
    def _fingerprint(self, params: Mapping[str, Any] | None, reads: Iterable[Path]) -> str:
        payload = {
            "params": params or {},
            "reads": {str(p.relative_to(self.root) if p.is_relative_to(self.root) else p): sha256_file(p)
                      for p in reads},
        }
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()

    def _step_is_done(self, name: str, fingerprint: str, outputs: Mapping[str, Path]) -> bool:
        rec = self.manifest["steps"].get(name)
        if self.force or rec is None or rec.get("fingerprint") != fingerprint:
            return False
        recorded = {r["path"]: r["sha256"] for r in rec["outputs"]}
        for path in outputs.values():
            rel = str(path.relative_to(self.root))
            if rel not in recorded or not path.is_file() or sha256_file(path) != recorded[rel]:
                return False
        return True

    def step(
        self,
        name: str,
        outputs: Iterable[str],
        make: Callable[[dict[str, Path]], Any],
        *,
        params: Mapping[str, Any] | None = None,
        reads: Iterable[str | Path] = (),
    ) -> StepResult:
        """Run one step unless its outputs already exist and verify.

        ``make`` receives ``{relative output name: temporary path}`` and must write every one of them;
        they are renamed into place only after it returns. ``reads`` lists the files the step depends on
        (their checksums enter the step's fingerprint, so a changed upstream output redoes the step).
        """
        finals = {rel: self.root / rel for rel in outputs}
        read_paths = [Path(r) if Path(r).is_absolute() else self.root / r for r in reads]
        fingerprint = self._fingerprint(params, read_paths)
        if self._step_is_done(name, fingerprint, finals):
            return StepResult(name, finals, skipped=True)
        for final in finals.values():
            final.parent.mkdir(parents=True, exist_ok=True)
        temps = {rel: temp_path_for(final) for rel, final in finals.items()}
        t0 = time.perf_counter()
        try:
            value = make(dict(temps))
            missing = [rel for rel, tmp in temps.items() if not tmp.exists()]
            if missing:
                raise RuntimeError(f"step {name!r} did not write {missing}")
            for rel, tmp in temps.items():
                _fsync_replace(tmp, finals[rel])
        finally:
            for tmp in temps.values():
                tmp.unlink(missing_ok=True)
        seconds = round(time.perf_counter() - t0, 3)
        self.manifest["steps"][name] = {
            "fingerprint": fingerprint,
            "params": params or {},
            "outputs": [file_record(p, self.root) for p in finals.values()],
            "seconds": seconds,
        }
        self._save()
        return StepResult(name, finals, skipped=False, seconds=seconds, value=value)


@dataclass
class VerifyReport:
    checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_run(root: str | Path) -> VerifyReport:
    """Re-check the checksum of every output (and every input still present) listed in a run's manifest."""
    root = Path(root)
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise InputError(f"run folder not found: {root}")
    if not manifest_path.is_file():
        raise InputError(f"{root} is not a run folder (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{manifest_path} is not valid JSON") from None
    problems: list[str] = []
    checked = 0
    for rec in manifest.get("outputs", []):
        path = root / rec["path"]
        checked += 1
        if not path.is_file():
            problems.append(f"missing output: {rec['path']}")
        elif sha256_file(path) != rec["sha256"]:
            problems.append(f"modified output: {rec['path']} (sha256 differs from the manifest)")
    for rec in manifest.get("inputs", []):
        path = Path(rec["path"])
        checked += 1
        if not path.is_file():
            problems.append(f"input no longer present: {rec['path']}")
        elif sha256_file(path) != rec["sha256"]:
            problems.append(f"input changed since the run: {rec['path']}")
    return VerifyReport(checked, problems)
