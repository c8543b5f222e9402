"""Figures of the geology stage: the CSFD plot (cumulative, differential with isochrons, the age distribution),
randomness results, orthorectification before/after and degradation classes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from selenite.cratering import chronology  # noqa: E402
from selenite.geology.csfd import AgeResult, CraterCount, binned, equilibrium_density  # noqa: E402

ISOCHRONS_GA = (0.01, 0.1, 1.0, 3.0, 3.5, 4.0)


def _fmt_age(t: float, plus: float, minus: float) -> str:
    if t >= 1.0:
        return f"{t:.3g} +{plus:.2g} −{minus:.2g} Ga"
    return f"{t * 1000:.3g} +{plus * 1000:.2g} −{minus * 1000:.2g} Ma"


def csfd_figure(path, count: CraterCount, ages: list[AgeResult], binning: str = "root-2", title: str = "") -> None:
    """Cumulative and differential CSFD with isochrons, the fitted ages over their ranges, and the Poisson age
    distribution(s)."""
    b = binned(count, binning)
    cf = chronology(ages[0].chronology if ages else "neukum2001")
    pf = cf.production
    lo_pf, hi_pf = pf.range_km
    d_all = np.geomspace(max(lo_pf, b["d_min"][0] / 2), min(hi_pf, b["d_max"][-1] * 4), 200)
    has_pdf = any(a.pdf is not None and a.pdf.size for a in ages)
    fig, axes = plt.subplots(1, 3 if has_pdf else 2, figsize=(13 if has_pdf else 9.5, 4.6),
                             gridspec_kw={"width_ratios": [1, 1, 0.7] if has_pdf else [1, 1]})
    ax_c, ax_d = axes[0], axes[1]
    for t in ISOCHRONS_GA:
        n1 = cf.n1(t)
        ax_c.plot(d_all, pf.cumulative(d_all, n1), color="0.8", lw=0.7)
        ax_d.plot(d_all, pf.differential(d_all, n1), color="0.8", lw=0.7)
    ax_c.plot(d_all, equilibrium_density(d_all), "k:", lw=0.8, label="equilibrium (Trask 1966)")
    ok = b["n_cum"] > 0
    err = b["cum_density"][ok] / np.sqrt(b["n_cum"][ok])
    ax_c.errorbar(b["d_min"][ok], b["cum_density"][ok], yerr=err, fmt="s", ms=3, color="k", lw=0.6,
                  label=f"{count.n} craters, {count.area_km2:.4g} km²")
    okd = b["n"] > 0
    errd = b["diff_density"][okd] / np.sqrt(b["n"][okd])
    ax_d.errorbar(b["d_mid"][okd], b["diff_density"][okd], yerr=errd, fmt="o", ms=3, color="k", lw=0.6)
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    for i, a in enumerate(ages):
        c = colors[i % len(colors)]
        dr = np.geomspace(a.d_range_km[0], a.d_range_km[1], 50)
        label = f"{a.method}{' (resurf.)' if a.resurfacing else ''} {a.d_range_km[0] * 1000:.4g}–" \
                f"{a.d_range_km[1] * 1000:.4g} m: {_fmt_age(a.age_ga, a.plus_ga, a.minus_ga)}"
        ax_c.plot(dr, pf.cumulative(dr, a.n1_per_km2), color=c, lw=2, label=label)
        ax_d.plot(dr, pf.differential(dr, a.n1_per_km2), color=c, lw=2)
    for ax, ylab in ((ax_c, "cumulative crater density N(≥D) [km⁻²]"),
                     (ax_d, "differential density dN/dD [km⁻³]")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("crater diameter D [km]")
        ax.set_ylabel(ylab)
        ax.grid(True, which="major", lw=0.3, color="0.9")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_c.set_xlim(d_all[0], d_all[-1] * 1.6)
    ax_d.set_xlim(d_all[0], d_all[-1] * 1.6)
    top = b["cum_density"][ok].max() * 10
    ax_c.set_ylim(b["cum_density"][ok].min() / 30, top)
    ax_d.set_ylim(b["diff_density"][okd].min() / 30, b["diff_density"][okd].max() * 10)
    y0, y1 = ax_c.get_ylim()
    for t in ISOCHRONS_GA:   # label each isochron where it leaves the plot (right edge or bottom)
        dd = d_all[pf.cumulative(d_all, cf.n1(t)) >= y0 * 1.5]
        if dd.size and pf.cumulative(dd[-1], cf.n1(t)) < y1:
            ax_c.text(dd[-1], pf.cumulative(dd[-1], cf.n1(t)), f"{t:g} Ga", fontsize=6, color="0.45",
                      ha="right", va="bottom", clip_on=True)
    ax_c.legend(fontsize=6.5, loc="lower left")
    ax_c.set_title("cumulative", fontsize=9)
    ax_d.set_title(f"differential ({binning} bins) — {cf.name}", fontsize=9)
    if has_pdf:
        ax_p = axes[2]
        for i, a in enumerate(ages):
            if a.pdf is None or not a.pdf.size:
                continue
            c = colors[i % len(colors)]
            ax_p.plot(a.pdf_t_ga, a.pdf / a.pdf.max(), color=c, lw=1.2)
            band = (a.pdf_t_ga >= a.age_ga - a.minus_ga) & (a.pdf_t_ga <= a.age_ga + a.plus_ga)
            ax_p.fill_between(a.pdf_t_ga[band], a.pdf[band] / a.pdf.max(), color=c, alpha=0.25)
            ax_p.axvline(a.age_ga, color=c, lw=0.8)
        ax_p.set_xlabel("model age [Ga]")
        ax_p.set_yticks([])
        ax_p.set_ylim(bottom=0)
        ax_p.set_title("Poisson age distribution (±1σ shaded)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)


def randomness_figure(path, results, geo, title: str = "") -> None:
    """Crater map in the equal-area plane and n_σ of M2CND and SDAA per diameter bin with the ±2σ band."""
    import shapely

    fig, (ax_m, ax_s) = plt.subplots(1, 2, figsize=(10.5, 4.4), gridspec_kw={"width_ratios": [1, 1.25]})
    poly = geo["polygon"]
    for g in getattr(poly, "geoms", [poly]):
        xs, ys = g.exterior.xy
        ax_m.plot(np.asarray(xs) / 1000, np.asarray(ys) / 1000, "k-", lw=0.8)
        for hole in g.interiors:
            hx, hy = hole.xy
            ax_m.plot(np.asarray(hx) / 1000, np.asarray(hy) / 1000, "k--", lw=0.6)
    xy = geo["xy"] / 1000
    ax_m.plot(xy[geo["inside"], 0], xy[geo["inside"], 1], ".", ms=2, color="tab:blue")
    ax_m.plot(xy[~geo["inside"], 0], xy[~geo["inside"], 1], "x", ms=3, color="0.6")
    ax_m.set_aspect("equal")
    ax_m.set_xlabel("km (equal-area plane)")
    ax_m.set_title(f"craters in the counted area ({shapely.area(poly) / 1e6:.4g} km²)", fontsize=9)
    ax_s.axhspan(-2, 2, color="0.9")
    for meas, mk, c in (("m2cnd", "o", "tab:blue"), ("sdaa", "s", "tab:orange")):
        rr = [r for r in results if r.measure == meas]
        if rr:
            dm = np.array([np.sqrt(r.d_min_km * r.d_max_km) * 1000 for r in rr])
            ax_s.plot(dm, [r.n_sigma for r in rr], mk + "-", color=c, ms=4, lw=0.8, label=meas.upper())
    for r in results:
        if r.measure == "m2cnd":
            ax_s.text(np.sqrt(r.d_min_km * r.d_max_km) * 1000, 0.02, f"n={r.n}", fontsize=6, ha="center",
                      va="bottom", color="0.4", transform=ax_s.get_xaxis_transform())
    ax_s.set_xscale("log")
    ax_s.set_xlabel("crater diameter (bin centre) [m]")
    ax_s.set_ylabel("n_σ from random (Monte Carlo)")
    ax_s.set_title("randomness: M2CND low / SDAA high = clustered", fontsize=9)
    ax_s.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)


CLASS_COLORS = {"A": "#d62728", "AB": "#ff7f0e", "B": "#bcbd22", "BC": "#17becf", "C": "#1f77b4",
                "n/a": "#7f7f7f", "unmeasured": "#ffffff"}


def class_map_figure(path, dem: np.ndarray, df, px_m: float, image: bool = False) -> None:
    """Hillshade of the DEM (or the image itself) with each crater's rim drawn in its Basilevsky class colour."""
    from matplotlib.patches import Circle

    if image:
        shade = dem
    else:
        gy, gx = np.gradient(np.nan_to_num(dem, nan=float(np.nanmean(dem))), px_m)
        shade = np.clip(0.5 + (-gx * 0.7 + gy * 0.7) / np.sqrt(1 + gx**2 + gy**2), 0, 1)
    fig, ax = plt.subplots(figsize=(7, 7 * dem.shape[0] / max(dem.shape[1], 1) + 0.6))
    ax.imshow(shade, cmap="gray", interpolation="nearest")
    for col, row, d, cls in zip(df["col"], df["row"], df["diameter_m"], df["class"], strict=True):
        ax.add_patch(Circle((col, row), d / 2 / px_m, fill=False, lw=1.0, ec=CLASS_COLORS.get(cls, "w")))
    handles = [plt.Line2D([], [], color=c, lw=2, label=k) for k, c in CLASS_COLORS.items()
               if k in set(df["class"])]
    ax.legend(handles=handles, fontsize=8, loc="lower right", title="Basilevsky class")
    ax.set_axis_off()
    ax.set_title(f"degradation classes on the {'image' if image else 'DEM'}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png", metadata={"Software": None})
    plt.close(fig)


def before_after_figure(path, raw: np.ndarray, ortho: np.ndarray, valid: np.ndarray, frame: int, rec: dict) -> None:
    """The raw (oblique) frame beside its ortho on the map grid, north up."""
    o = ortho[0] if ortho.shape[0] == 1 else np.moveaxis(ortho, 0, 2)
    o = np.ma.masked_where(~valid if o.ndim == 2 else np.repeat(~valid[..., None], o.shape[2], 2), o)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.8), gridspec_kw={"width_ratios": [raw.shape[1] / raw.shape[0],
                                                                                       o.shape[1] / o.shape[0]]})
    a1.imshow(raw, cmap="gray")
    a1.set_title(f"frame {frame} as taken (view tilt {rec['view_tilt_deg']:.1f}°, "
                 f"{rec['camera_height_m']:.0f} m above the ground)", fontsize=9)
    x0, y0, x1, y1 = rec["bounds"]
    a2.imshow(o, cmap="gray", extent=(0, o.shape[1] * rec["gsd_m"], 0, o.shape[0] * rec["gsd_m"]))
    a2.set_facecolor("#333333")
    a2.set_title(f"orthorectified ({rec['method']}), {rec['gsd_m']:.3g} m/px, north up", fontsize=9)
    a2.set_xlabel("east [m]", fontsize=8)
    a2.set_ylabel("north [m]", fontsize=8)
    a1.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png", metadata={"Software": None})
    plt.close(fig)
