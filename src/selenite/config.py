"""Stage configuration: pydantic models, named presets and TOML files.

Each stage declares a pydantic model of its settings and a ``confs`` dict of named presets, in the spirit of
hloc's ``confs``. A run's settings are resolved in this order, later winning: the model's defaults, the named
preset, the ``--config FILE.toml`` file (its ``[stage]`` table if it has one, else its top level), then
explicit command-line overrides.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from selenite.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StageConfig(BaseModel):
    """Base of every stage's settings: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning every failure into a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _describe(exc: ValidationError, stage: str) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    got = err.get("input")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"bad config value {stage}.{where}: {err.get('msg')} (got {got!r}){more}"


def resolve_config(
    model: type[M],
    confs: Mapping[str, Mapping[str, Any]],
    *,
    stage: str,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> M:
    """Build a stage's settings from defaults, a named preset, a TOML file and overrides.

    Parameters
    ----------
    model : the stage's pydantic settings model.
    confs : named presets of that stage.
    stage : the stage's name; a TOML file's ``[stage]`` table is used when present.
    preset : name of a preset in ``confs`` (None: the model's defaults).
    config_file : optional TOML file.
    overrides : values given explicitly (None values are ignored).

    Raises
    ------
    ConfigError : unknown preset, unreadable file, unknown key or invalid value.
    """
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in confs:
            names = ", ".join(sorted(confs)) or "none"
            raise ConfigError(f"unknown {stage} preset {preset!r} (choose from: {names})")
        values = _deep_merge(values, confs[preset])
    if config_file is not None:
        data = read_toml(config_file)
        if isinstance(data.get(stage), Mapping):
            data = data[stage]
        values = _deep_merge(values, data)
    if overrides:
        values = _deep_merge(values, {k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, stage)) from None
