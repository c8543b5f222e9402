"""Settings of ``selenite terrain`` (defaults, named presets, TOML ``[terrain]`` table)."""

from __future__ import annotations

from pydantic import Field

from selenite.config import StageConfig


class TerrainConfig(StageConfig):
    baseline_m: float = Field(10.0, gt=0)          # lander footprint for the baseline slope and roughness
    chunk: int = Field(1024, ge=256)                # attributes: DEM chunk side (px) streamed through dask
    azimuths: int = Field(360, ge=8, le=3600)
    # the observer's eye above the ground (m): PGDA's products and the literature give 0, 2 and 10 m
    height_m: float = Field(2.0, ge=0, le=1000)
    stay_days: float = Field(6.5, gt=0)             # the surface stay of the stay products (Artemis III: 6.5 days)
    start: str = "2026-01-01"
    end: str = "2044-08-01"                         # a full 18.6-year nodal cycle of the lunar orbit
    step: str = "12h"
    max_block: int = Field(512, ge=16)              # linearisation blocks of the Sun/Earth directions (px)
    threads: int = Field(2, ge=1)
    write_horizon: bool = True
    # DEMs whose horizons do not fit in memory (or with tile > 0): tiles of `tile` px swept with a halo of `halo`
    # px at full resolution, the rest of the DEM (decimated to far_res_m) and --far-dem as the far field
    tile: int = Field(0, ge=0)
    halo: int = Field(1024, ge=0)
    max_horizon_gb: float = Field(6.0, gt=0)
    # far field (with --far-dem): coarse grid cell and observer-node spacing (each at least the far DEM's own
    # pixel), and reach
    far_res_m: float = Field(250.0, gt=0)
    far_max_km: float = Field(150.0, gt=0)
    far_node_m: float = Field(160.0, gt=0)


confs: dict[str, dict] = {
    "default": {},
    "year": {"start": "2026-01-01", "end": "2027-01-01", "step": "6h"},
    "quick": {"start": "2026-01-01", "end": "2027-01-01", "step": "12h", "azimuths": 90},
}
