"""``selenite geology date``: a crater file → model ages (Poisson, and optionally cumulative/differential fits),
a CSFD plot and a JSON record."""

from __future__ import annotations

from pathlib import Path

from selenite.errors import InputError
from selenite.geology.csfd import (
    CHRONOLOGIES,
    AgeResult,
    cumulative_fit,
    differential_fit,
    equilibrium_fraction,
    poisson_age,
    read_count,
)
from selenite.runs import atomic_path


def date_count(craters: str | Path, d_range: tuple[float, float] | None = None, area_km2: float | None = None,
               chron: str = "neukum2001", fits: bool = False, resurfacing: bool = False, binning: str = "root-2",
               quantiles: str = "grid", gsd_m: float | None = None, plot: str | Path | None = None) -> dict:
    """Ages of one count; returns a JSON-ready record (and writes the plot when asked)."""
    if chron not in CHRONOLOGIES:
        raise InputError(f"unknown chronology {chron!r} (choose from: {', '.join(CHRONOLOGIES)})")
    count = read_count(craters, area_km2=area_km2, gsd_m=gsd_m)
    ages: list[AgeResult] = [poisson_age(count, d_range, chron, quantiles=quantiles)]
    rng = ages[0].d_range_km
    if fits:
        ages.append(cumulative_fit(count, rng, chron, binning, resurfacing=resurfacing))
        ages.append(differential_fit(count, rng, chron, binning))
    eq = equilibrium_fraction(count, rng[0])
    rec = {"craters": str(craters), "n_total": count.n, "area_km2": count.area_km2,
           "d_range_km": list(rng), "ages": [a.to_dict() for a in ages],
           "equilibrium_fraction_at_dmin": eq, "warnings": []}
    if eq > 0.5:
        rec["warnings"].append(f"craters ≥ {rng[0] * 1000:.4g} m are at {eq:.0%} of the saturation equilibrium "
                               "density (Trask 1966): the age from this range is a lower bound")
    if ages[0].n < 10:
        rec["warnings"].append(f"only {ages[0].n} craters in the range: the age is poorly constrained")
    if plot is not None:
        from selenite.geology.plots import csfd_figure

        plot = Path(plot)
        if not plot.parent.is_dir():
            raise InputError(f"{plot.parent}: no such folder for the plot")
        with atomic_path(plot) as tmp:
            csfd_figure(tmp, count, ages, binning, title=Path(craters).name)
        rec["plot"] = str(plot)
    return rec


def age_line(a: dict) -> str:
    t, p, m = a["age_ga"], a["plus_ga"], a["minus_ga"]
    age = f"{t:.3g} +{p:.2g} −{m:.2g} Ga" if t >= 1 else f"{t * 1000:.3g} +{p * 1000:.2g} −{m * 1000:.2g} Ma"
    lo, hi = a["d_range_km"]
    extra = " with resurfacing correction" if a.get("resurfacing") else ""
    return (f"{a['method']:8s} {age}  N(1) = {a['n1_per_km2']:.3e} km⁻²  ({a['n']} craters, {lo * 1000:.4g}–"
            f"{hi * 1000:.4g} m, {a['chronology_name']}{extra})")


def randomness_record(craters: str | Path, trials: int = 300, seed: int = 0, plot: str | Path | None = None,
                      notify=None) -> dict:
    """Randomness analysis of a .scc count as a JSON-ready record (and its figure when asked)."""
    from selenite.geology.randomness import randomness

    if plot is not None and not Path(plot).parent.is_dir():
        raise InputError(f"{Path(plot).parent}: no such folder for the plot")
    count = read_count(craters)
    results, geo = randomness(count, trials=trials, seed=seed, notify=notify)
    rows: dict[float, dict] = {}
    for r in results:
        row = rows.setdefault(r.d_min_km, {"d_min_km": r.d_min_km, "d_max_km": r.d_max_km, "n": r.n})
        row[r.measure] = {"value": r.value, "mc_mean": r.mc_mean, "mc_sd": r.mc_sd, "mc_2.5%": r.mc_lo,
                          "mc_97.5%": r.mc_hi, "n_sigma": r.n_sigma, "verdict": r.verdict}
    for row in rows.values():
        verdicts = {row[m]["verdict"] for m in ("m2cnd", "sdaa")}
        row["verdict"] = "random" if verdicts == {"random"} else "/".join(sorted(verdicts - {"random"}))
    rec = {"craters": str(craters), "trials": trials, "seed": seed, "area_km2_file": count.area_km2,
           "area_km2_polygon": geo["area_km2_polygon"], "craters_outside_polygon": int((~geo["inside"]).sum()),
           "bins": list(rows.values()), "warnings": []}
    if abs(geo["area_km2_polygon"] / count.area_km2 - 1) > 0.02:
        rec["warnings"].append(f"the area polygon encloses {geo['area_km2_polygon']:.4g} km² but the file states "
                               f"{count.area_km2:.4g} km²; the polygon is used here")
    if plot is not None:
        from selenite.geology.plots import randomness_figure

        with atomic_path(plot) as tmp:
            randomness_figure(tmp, results, geo, title=Path(craters).name)
        rec["plot"] = str(plot)
    return rec
