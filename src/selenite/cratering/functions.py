"""Production and chronology functions (Neukum 1983; Neukum et al. 2001; Yue et al. 2022) as small classes.

Coefficients come from the package's data file, never from code. See ``cratering_functions.toml`` for the
forms and references.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import numpy as np

from selenite.errors import ConfigError


@lru_cache(maxsize=1)
def load_functions() -> dict[str, Any]:
    """The parsed cratering-functions data file."""
    return tomllib.loads(files("selenite").joinpath("data/cratering_functions.toml").read_text("utf-8"))


@dataclass(frozen=True)
class ProductionFunction:
    """Cumulative crater production function N(>=D) per km², normalised to N(1 km) = 1.

    ``shape(d_km)`` returns N(>=D)/N(>=1 km); multiply by N1(T) of a chronology for a surface of age T.
    """

    key: str
    name: str
    coefficients: tuple[float, ...]
    range_km: tuple[float, float]
    reference: str

    def shape(self, d_km):
        """N(>=D) / N(>=1 km) for diameters in km (outside ``range_km`` the polynomial is extrapolated)."""
        x = np.log10(np.asarray(d_km, dtype=float))
        poly = np.zeros_like(x)
        for j, a in enumerate(self.coefficients[1:], start=1):
            poly = poly + a * x**j
        out = 10.0**poly
        return out if out.ndim else float(out)

    def cumulative(self, d_km, n1_per_km2: float):
        """N(>=D) per km² for a surface with N(1) = n1_per_km2."""
        return n1_per_km2 * self.shape(d_km)

    def differential(self, d_km, n1_per_km2: float):
        """dN/dD per km² per km (positive), by differentiating the polynomial analytically."""
        d = np.asarray(d_km, dtype=float)
        x = np.log10(d)
        dpoly = np.zeros_like(x)
        for j, a in enumerate(self.coefficients[1:], start=1):
            dpoly = dpoly + j * a * x ** (j - 1)
        return -self.cumulative(d, n1_per_km2) * dpoly / d


@dataclass(frozen=True)
class Chronology:
    """Chronology function N1(T) = a (exp(b T) - 1) + c T² + d T (craters >= 1 km per km², T in Ga)."""

    key: str
    name: str
    coefficients: tuple[float, float, float, float]
    production_key: str
    reference: str

    def n1(self, t_ga):
        a, b, c, d = self.coefficients
        t = np.asarray(t_ga, dtype=float)
        out = a * np.expm1(b * t) + c * t**2 + d * t
        return out if out.ndim else float(out)

    def flux(self, t_ga):
        """dN1/dT, the impact rate T Ga ago (craters >= 1 km per km² per Ga)."""
        a, b, c, d = self.coefficients
        t = np.asarray(t_ga, dtype=float)
        out = a * b * np.exp(b * t) + 2 * c * t + d
        return out if out.ndim else float(out)

    def age(self, n1_per_km2):
        """Invert N1(T) for T in Ga (monotonic; solved by bisection to 1e-10 Ga)."""
        target = np.atleast_1d(np.asarray(n1_per_km2, dtype=float))
        lo = np.zeros_like(target)
        hi = np.full_like(target, 5.0)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = self.n1(mid) < target
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out = 0.5 * (lo + hi)
        return out if np.ndim(n1_per_km2) else float(out[0])

    @property
    def production(self) -> ProductionFunction:
        return production_function(self.production_key)


def production_function(key: str = "neukum2001") -> ProductionFunction:
    table = load_functions()["production"]
    if key not in table:
        raise ConfigError(f"unknown production function {key!r} (choose from: {', '.join(table)})")
    rec = table[key]
    return ProductionFunction(key, rec["name"], tuple(rec["coefficients"]), tuple(rec["range_km"]), rec["reference"])


def chronology(key: str = "neukum2001") -> Chronology:
    table = load_functions()["chronology"]
    if key not in table:
        raise ConfigError(f"unknown chronology {key!r} (choose from: {', '.join(table)})")
    rec = table[key]
    return Chronology(key, rec["name"], tuple(rec["coefficients"]), rec["production"], rec["reference"])


def basilevsky_class(age_myr, diameter_m) -> np.ndarray:
    """Basilevsky (1976) morphological class (A, AB, B, BC, C, or '-' past the lifetime) from age and D."""
    rec = load_functions()["degradation"]["basilevsky1976"]
    frac = np.asarray(age_myr, float) / (rec["lifetime_myr_per_m"] * np.asarray(diameter_m, float))
    bounds = [rec["fresh_fraction"], *rec["class_bounds"], 1.0]
    names = np.array([rec["fresh_class"], *rec["classes"], "-"])
    return names[np.searchsorted(bounds, frac, side="right")]
