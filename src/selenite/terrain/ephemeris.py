"""Sun and Earth directions in the Moon's body-fixed frame, offline.

Positions come from JPL DE421 (``de421.bsp`` in the ``skyfield-data`` wheel, valid 1900–2050) through skyfield;
the Moon's orientation from NAIF's high-accuracy principal-axis kernel ``moon_pa_de421_1900-2050.bpc`` and the
frame kernel ``moon_080317.tf`` shipped in the ``lunarsky`` wheel, rotated into the mean-Earth/polar-axis frame
``MOON_ME_DE421`` in which LOLA's DEMs are defined. Neither package is imported for its Python code beyond
skyfield: the kernel files are located on disk (``lunarsky`` itself needs astropy, which selenite does not).

References: Folkner et al. (2008) JPL IOM 343R-08-003 (DE421); Archinal et al. (2011) for the ME frame;
Rhodes (2019) skyfield, ascl:1907.024.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from selenite.errors import InputError, SeleniteError

SUN_RADIUS_KM = 695_700.0        # IAU 2015 nominal solar radius
EARTH_RADIUS_KM = 6_371.0        # mean radius
MOON_RADIUS_KM = 1_737.4
EPHEMERIS_RANGE = (datetime(1900, 1, 2, tzinfo=UTC), datetime(2050, 1, 1, tzinfo=UTC))


class EphemerisError(SeleniteError):
    """The offline ephemeris files are missing."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EphemerisError(f"the package '{name}' (offline ephemeris files) is not installed; "
                             "run `make install`")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=1)
def _pc():
    """skyfield's PlanetaryConstants holding the Moon's frame kernels."""
    from skyfield.planetarylib import PlanetaryConstants

    moon_dir = _package_dir("lunarsky") / "data"
    tf = moon_dir / "fk" / "satellites" / "moon_080317.tf"
    bpc = moon_dir / "pck" / "moon_pa_de421_1900-2050.bpc"
    for f in (tf, bpc):
        if not f.is_file():
            raise EphemerisError(f"ephemeris file missing: {f}")
    pc = PlanetaryConstants()
    with open(tf, "rb") as fh:
        pc.read_text(fh)
    pc.read_binary(open(bpc, "rb"))    # noqa: SIM115 - skyfield keeps the DAF file open for its segments
    return pc


@lru_cache(maxsize=1)
def _kernels():
    from skyfield.api import load, load_file

    bsp = _package_dir("skyfield_data") / "data" / "de421.bsp"
    if not bsp.is_file():
        raise EphemerisError(f"ephemeris file missing: {bsp}")
    eph = load_file(str(bsp))
    frame = _pc().build_frame_named("MOON_ME_DE421")
    return eph, frame, load.timescale(builtin=True)


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time (UTC when no zone is given)."""
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"cannot read '{text}' as an ISO date/time (e.g. 2026-01-01 or 2026-01-01T06:00)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_step_hours(text: str | float) -> float:
    """'6h', '30min', '1d' or a number of hours."""
    s = str(text).strip().lower()
    units = {"min": 1 / 60, "m": 1 / 60, "h": 1.0, "d": 24.0}
    for u in ("min", "h", "d", "m"):
        if s.endswith(u):
            num, mult = s[: -len(u)], units[u]
            break
    else:
        num, mult = s, 1.0
    try:
        v = float(num) * mult
    except ValueError:
        raise InputError(f"cannot read the time step '{text}' (e.g. 6h, 30min, 1d)") from None
    if not v > 0:
        raise InputError(f"the time step must be positive (got '{text}')")
    return v


def time_grid(start: datetime, end: datetime, step_hours: float) -> np.ndarray:
    """UTC instants from start to end (inclusive of start, exclusive of end) as numpy datetime64[s]."""
    lo, hi = EPHEMERIS_RANGE
    if end <= start:
        raise InputError(f"the period ends ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M})")
    if start < lo or end > hi:
        raise InputError(f"the period {start:%Y-%m-%d} – {end:%Y-%m-%d} is outside the offline ephemeris "
                         f"(DE421 and the Moon kernel: {lo:%Y-%m-%d} – {hi:%Y-%m-%d})")
    n = int(np.floor((end - start).total_seconds() / 3600 / step_hours - 1e-9)) + 1
    t0 = np.datetime64(start.replace(tzinfo=None), "s")
    return t0 + (np.arange(n) * step_hours * 3600).astype("timedelta64[s]")


@dataclass
class BodyTrack:
    """Positions of one body in the Moon's ME frame (km, from the Moon's centre) at a series of instants."""

    name: str
    times: np.ndarray           # datetime64[s], UTC
    position_km: np.ndarray     # (n, 3)
    radius_km: float

    @property
    def direction(self) -> np.ndarray:
        return self.position_km / np.linalg.norm(self.position_km, axis=1, keepdims=True)

    def sub_point_deg(self) -> tuple[np.ndarray, np.ndarray]:
        """Planetocentric (lon east, lat) of the sub-body point, degrees."""
        d = self.direction
        return np.degrees(np.arctan2(d[:, 1], d[:, 0])), np.degrees(np.arcsin(d[:, 2]))


def body_tracks(times: np.ndarray, chunk: int = 20_000) -> tuple[BodyTrack, BodyTrack]:
    """Sun and Earth positions in MOON_ME_DE421 at ``times`` (datetime64, UTC)."""
    eph, frame, ts = _kernels()
    moon, sun, earth = eph["moon"], eph["sun"], eph["earth"]
    out = {"sun": [], "earth": []}
    secs = (times.astype("datetime64[s]") - np.datetime64("2000-01-01T00:00:00", "s")).astype(np.float64)
    for k in range(0, len(times), chunk):
        s = secs[k:k + chunk]
        t = ts.utc(2000, 1, 1, 0, 0, s)
        R = frame.rotation_at(t)                          # (3, 3, n): ICRF → Moon ME
        for name, body in (("sun", sun), ("earth", earth)):
            p = (body - moon).at(t).position.km           # (3, n), ICRF
            out[name].append(np.einsum("ijn,jn->ni", R, p))
    return (BodyTrack("sun", times, np.concatenate(out["sun"]), SUN_RADIUS_KM),
            BodyTrack("earth", times, np.concatenate(out["earth"]), EARTH_RADIUS_KM))
