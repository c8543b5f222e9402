"""Real data shipped inside the package: the LOLA south pole and its published references
(``selenite/data/south_pole/SOURCES.md`` gives each file's source and terms)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path


@dataclass(frozen=True)
class SouthPole:
    dem: Path                 # LOLA, 240 m, 84–90°S
    cap: Path                 # LOLA, 1.79 km, 75–90°S: the far field
    regions: Path             # NASA's 9 Artemis III candidate regions (2024)
    reference_sites: Path     # Wueller et al. 2026's 130 sites with days of sunlight
    cold_traps: Path          # Tye 2015 / Cannon 2020 cold-trap craters with PSR areas (moonpies)
    sources: Path


def south_pole() -> SouthPole:
    root = Path(str(files("selenite").joinpath("data/south_pole")))
    return SouthPole(dem=root / "lola_ldem75s_south_pole_240m.tif", cap=root / "lola_ldem75s_south_cap_1787m.tif",
                     regions=root / "artemis3_regions_usgs.geojson",
                     reference_sites=root / "wueller2026_sites" / "LandingSites.shp",
                     cold_traps=root / "south_polar_psr_craters_moonpies.csv", sources=root / "SOURCES.md")
