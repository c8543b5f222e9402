"""Settings of ``selenite sites`` (defaults, named presets, TOML ``[sites]`` table).

Thresholds marked ASSUMPTION are not NASA numbers: NASA's public criteria are qualitative; slope ≤ 5°, Sun
≥ 33 % and Earth ≥ 50 % are LunarSite's choices, kept as defaults so results compare, and printed as
assumptions in every report.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from selenite.config import StageConfig


class SitesConfig(StageConfig):
    # grid
    cell_m: float = Field(1000.0, gt=0)
    region_lat: float = Field(-80.0, ge=-90, le=90)      # cells poleward of this latitude
    max_k: int = Field(250, ge=1)                        # DEM pixels per cell side, at most
    block_cells: int = Field(32, ge=1)                   # cells per side of a streamed DEM block
    min_valid: float = Field(0.5, ge=0, le=1)            # a cell needs this fraction of DEM pixels
    # the rule label (ASSUMPTIONS)
    label: Literal["rule", "hazard"] = "rule"
    slope_max_deg: float = 5.0
    sun_min_pct: float = 33.0
    earth_min_pct: float = 50.0
    # the lander (ASSUMPTIONS) and the hazard label: safe when the Monte-Carlo hazard probability is at most
    # hazard_max_prob; in hazard mode the ranked sites must also meet the Sun and Earth thresholds
    lander_legs: int = Field(4, ge=3)
    leg_radius_m: float = Field(4.0, gt=0)
    tilt_max_deg: float = Field(8.0, gt=0, lt=90)
    clearance_m: float = Field(0.5, gt=0)
    dispersion_m: float = Field(50.0, ge=0)
    hazard_aims: int = Field(8, ge=1)                    # aim points per cell side (aims² touchdowns per cell)
    hazard_max_prob: float = Field(0.1, ge=0, le=1)
    # the scorer: "mission" (NASA's criteria made numbers: selenite.sites.mission) or "learned" (XGBoost on the
    # label above, with spatial CV, calibration and TreeSHAP)
    scorer: Literal["mission", "learned"] = "mission"
    mission_pole_deg: float = Field(6.0, gt=0, le=90)     # NASA: regions within 6° of the pole
    mission_psr_km: float = Field(2.0, gt=0)              # a PSR within walking distance (ASSUMPTION)
    # craters
    crater_min_m: float = Field(0.0, ge=0)
    large_crater_m: float = Field(5000.0, gt=0)
    # light computed from the DEM when no illumination / Earth rasters are given
    terrain_res_m: float = Field(500.0, gt=0)
    terrain_azimuths: int = Field(180, ge=8)
    terrain_start: str = "2026-01-01"
    terrain_end: str = "2027-01-01"
    terrain_step: str = "6h"
    terrain_height_m: float = Field(2.0, ge=0)
    # the scorer
    n_trees: int = Field(300, ge=1)
    max_depth: int = Field(6, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    cv_block_km: float = Field(20.0, gt=0)
    cv_folds: int = Field(5, ge=2)
    min_positives: int = Field(5, ge=1)
    seed: int = 0
    threads: int = Field(2, ge=1)
    # ranking and validation
    top: int = Field(100, ge=1)
    min_separation_km: float = Field(5.0, ge=0)
    validate_top: tuple[int, ...] = (10, 100, 1000)
    match_km: float = Field(0.0, ge=0)                    # a site matches a region within this distance (0: inside)
    n_random: int = Field(1000, ge=10)


confs: dict[str, dict] = {
    "default": {},
    "quick": {"n_trees": 100, "n_random": 200, "terrain_azimuths": 90, "terrain_step": "12h"},
}

ASSUMPTIONS = {
    "slope_max_deg": "suitable cell: mean slope at most this (LunarSite's threshold; not a NASA number)",
    "sun_min_pct": "suitable cell: mean Sun visibility at least this (LunarSite's; not a NASA number)",
    "earth_min_pct": "suitable cell: mean Earth visibility at least this (LunarSite's; not a NASA number)",
    "min_separation_km": "two ranked sites are at least this far apart",
    "tilt_max_deg": "a touchdown fails when the plane through the legs tilts more than this; the mission scorer "
                    "also asks the cell's mean slope to stay below it",
    "clearance_m": "a touchdown fails when the ground under the lander rises this far above the leg plane",
    "leg_radius_m": "the lander's legs stand on a circle of this radius",
    "dispersion_m": "1-σ landing dispersion per axis around each aim point",
    "hazard_max_prob": "hazard label: a cell is safe when at most this fraction of touchdowns fail",
    "match_km": "a site matches a region when within this distance of its polygon (0: inside)",
    "mission_psr_km": "mission scorer: a permanently shadowed area within this distance of the cell centre (a "
                      "moonwalk's reach; NASA asks for 'close enough to a PSR for a moonwalk')",
    "mission_pole_deg": "mission scorer: cells within this many degrees of the pole (NASA's 6°)",
}
