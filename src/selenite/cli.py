"""The ``selenite`` command line: one sub-app per stage, thin wrappers over library functions.

Every user mistake surfaces as one line on stderr and exit code 2 (``SeleniteError``); ``selenite verify``
exits 1 when a run's files do not match its manifest.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from selenite import __version__
from selenite.errors import SeleniteError

app = typer.Typer(
    name="selenite", help="Open toolkit for the whole lunar landing: sites, descent localization, surface dating.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
synth_app = typer.Typer(help="The synthetic lunar world: terrain, maps, descent sequences with exact truth.",
                        no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks; each writes its section of docs/benchmarks.md.", no_args_is_help=True)
locate_app = typer.Typer(help="Post-landing: reconstruct the descent and locate the lander on an orbital map.",
                         no_args_is_help=True)
terrain_app = typer.Typer(help="DEM products: slope, roughness, horizons, Sun and Earth visibility, permanent "
                          "shadow.", no_args_is_help=True)
sites_app = typer.Typer(help="Pre-landing: rank south-pole landing sites from DEMs, light and crater data, with "
                        "explanations and validation.", no_args_is_help=True)
craters_app = typer.Typer(help="Craters as objects in DEMs and images: detect with shipped weights, evaluate, "
                          "train, fine-tune.", no_args_is_help=True)
geology_app = typer.Typer(help="After touchdown: orthorectify descent frames, calibrate their scale, date the surface "
                          "(CSFD) and its craters, size rocks.", no_args_is_help=True)
segment_app = typer.Typer(help="Terrain segmentation of surface images (background, small rocks, large rocks, sky) "
                          "with uncertainty: TTA, MC dropout, calibration, out-of-domain checks.",
                          no_args_is_help=True)
app.add_typer(synth_app, name="synth")
app.add_typer(segment_app, name="segment")
app.add_typer(geology_app, name="geology")
app.add_typer(craters_app, name="craters")
app.add_typer(sites_app, name="sites")
app.add_typer(terrain_app, name="terrain")
app.add_typer(locate_app, name="locate")
app.add_typer(bench_app, name="bench")

console = Console(stderr=True)
STATE = {"quiet": False}

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML file with settings (its [stage] table "
                                                "or top level).", dir_okay=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo steps whose outputs already exist and verify.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"selenite {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """selenite command line."""
    STATE["quiet"] = quiet
    level = logging.ERROR if quiet else (logging.DEBUG if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@contextmanager
def progress_bar():
    """A rich progress display fed by ``notify(step, fraction)`` callbacks (silent with --quiet)."""
    if STATE["quiet"]:
        yield lambda step, frac: None
        return
    prog = Progress(TextColumn("{task.description:<18}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), console=console, transient=False)
    tasks: dict[str, int] = {}

    def notify(step: str, frac: float) -> None:
        if not tasks:
            prog.start()   # started on the first report, so an early input error prints its one line only
        if step not in tasks:
            tasks[step] = prog.add_task(step, total=1.0)
        prog.update(tasks[step], completed=frac)

    try:
        yield notify
    finally:
        if tasks:
            prog.stop()


def say(message: str) -> None:
    if not STATE["quiet"]:
        typer.echo(message)


# ---------------------------------------------------------------------------------------------------------
# geology
# ---------------------------------------------------------------------------------------------------------
@geology_app.command("date")
def geology_date(
    craters: Annotated[Path, typer.Option("--craters", help="craterstats .scc/.diam (km) or a CSV with "
                                          "diameter_m / diameter_km (e.g. from `selenite craters detect`).")],
    d_range: Annotated[tuple[float, float] | None, typer.Option("--range", help="Diameter range DMIN DMAX "
                                                                "(km unless --units m); default: all craters.")]
    = None,
    units: Annotated[str, typer.Option("--units", help="Units of --range: km or m.")] = "km",
    area: Annotated[float | None, typer.Option("--area", help="Counted area in km² (required for a CSV; "
                                               "overrides the file's).")] = None,
    chron: Annotated[str, typer.Option("--chronology", help="neukum2001, neukum1983 or yue2022.")] = "neukum2001",
    fits: Annotated[bool, typer.Option("--fits", help="Also the cumulative and differential fits.")] = False,
    resurfacing: Annotated[bool, typer.Option("--resurfacing", help="Resurfacing correction for the "
                                              "cumulative fit.")] = False,
    binning: Annotated[str, typer.Option("--binning", help="root-2, 10/decade or 20/decade.")] = "root-2",
    quantiles: Annotated[str, typer.Option("--quantiles", help="grid (as craterstats 3.6) or exact "
                                           "(analytic Gamma quantiles).")] = "grid",
    gsd: Annotated[float | None, typer.Option("--gsd", help="Metres per pixel for a CSV with pixel "
                                              "diameters only.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="CSFD plot to write (PNG).", dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Model age of a crater count: Poisson (median, +1σ, −1σ), N(1), craters in range, CSFD plot."""
    from selenite.errors import InputError
    from selenite.geology.dating import age_line, date_count

    if units not in ("km", "m"):
        raise InputError(f"--units must be km or m (got {units!r})")
    rng = None if d_range is None else tuple(v / 1000.0 if units == "m" else v for v in d_range)
    rec = date_count(craters, rng, area, chron, fits=fits, resurfacing=resurfacing, binning=binning,
                     quantiles=quantiles, gsd_m=gsd, plot=plot)
    if as_json:
        typer.echo(json.dumps(rec, indent=1))
        return
    for a in rec["ages"]:
        typer.echo(age_line(a))
    for w in rec["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if plot is not None:
        say(f"plot → {plot}")


@geology_app.command("randomness")
def geology_randomness(
    craters: Annotated[Path, typer.Option("--craters", help="craterstats .scc with crater positions and the "
                                          "area polygon.")],
    trials: Annotated[int, typer.Option("--trials", help="Monte-Carlo configurations per bin.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the Monte Carlo.")] = 0,
    plot: Annotated[Path | None, typer.Option("--plot", help="Figure to write (PNG).", dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """M2CND and SDAA per root-2 diameter bin against Monte-Carlo random placements (Michael et al. 2012)."""
    from selenite.geology.dating import randomness_record

    with progress_bar() as notify:
        rec = randomness_record(craters, trials=trials, seed=seed, plot=plot, notify=notify)
    if as_json:
        typer.echo(json.dumps(rec, indent=1))
        return
    typer.echo(f"{'D range [m]':>17s}  {'n':>4s}  {'M2CND nσ':>9s}  {'SDAA nσ':>8s}  verdict")
    for row in rec["bins"]:
        typer.echo(f"{row['d_min_km'] * 1000:8.4g}–{row['d_max_km'] * 1000:<8.4g} {row['n']:5d}  "
                   f"{row['m2cnd']['n_sigma']:+9.2f}  {row['sdaa']['n_sigma']:+8.2f}  {row['verdict']}")
    for w in rec["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


@geology_app.command("ortho")
def geology_ortho(
    out: Annotated[Path, typer.Option("--out", help="Ortho GeoTIFF to write (0 = no data).", dir_okay=False)],
    gsd: Annotated[float, typer.Option("--gsd", help="Output metres per pixel.")],
    frame: Annotated[Path | None, typer.Option("--frame", help="The frame image (default with --run: the "
                                               "run's frame of that index).")] = None,
    pose: Annotated[Path | None, typer.Option("--pose", help="Pose JSON: one frame (camera, R_world_to_camera, "
                                              "t, crs_wkt, ground), a run's poses.json or a synthetic "
                                              "truth.json (with --frame-index).")] = None,
    run: Annotated[Path | None, typer.Option("--run", help="A `selenite locate` run folder.")] = None,
    frame_index: Annotated[int | None, typer.Option("--frame-index", help="Frame index within the run.")] = None,
    normal: Annotated[tuple[float, float, float] | None, typer.Option("--normal", help="Ground normal nx ny nz "
                                                                       "in the world frame (default: the "
                                                                       "pose file's, else vertical).")] = None,
    ground_z: Annotated[float | None, typer.Option("--ground-z", help="Height of the ground plane in the world "
                                                   "frame (default: the pose file's ground).")] = None,
    dem: Annotated[Path | None, typer.Option("--dem", help="Project onto this DEM (in the frame's map CRS) "
                                             "instead of the plane.")] = None,
) -> None:
    """Orthorectify a descent frame from its pose and the surface normal (or a DEM) → georeferenced GeoTIFF."""
    from selenite.geology.frames import ortho_file

    rec = ortho_file(out, gsd, pose=pose, run=run, frame_index=frame_index, frame=frame, normal=normal,
                     ground_z=ground_z, dem=dem)
    say(f"{rec['ortho']}: {rec['size_px'][0]}×{rec['size_px'][1]} px at {gsd:g} m/px ({rec['method']}, view "
        f"tilt {rec['view_tilt_deg']:.1f}°, {rec['valid_fraction']:.0%} covered)")


@geology_app.command("gsd")
def geology_gsd(
    control: Annotated[Path, typer.Option("--control", help="CSV of ≥ 5 control points: image_x, image_y, "
                                          "map_x, map_y (m) or map_col, map_row (with --map-gsd).")],
    image: Annotated[Path | None, typer.Option("--image", help="The image (its size bounds the points).")]
    = None,
    map_gsd: Annotated[float | None, typer.Option("--map-gsd", help="Metres per map pixel when the map points "
                                                  "are pixels.")] = None,
    max_residual: Annotated[float, typer.Option("--max-residual", help="Warn above this residual (image "
                                                "px).")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Ground sample distance of an image from control points on a map (least squares), with residuals."""
    from selenite.geology.gsd import gsd_from_file

    rec = gsd_from_file(control, map_gsd, max_residual, image=image)
    if as_json:
        typer.echo(json.dumps(rec, indent=1))
        return
    typer.echo(f"GSD {rec['gsd_m']:.5g} ± {rec['gsd_sigma_m']:.2g} m/px from {rec['n_points']} points "
               f"(rotation {rec['rotation_deg']:.2f}°, RMS residual {rec['rms_residual_px']:.2f} px = "
               f"{rec['rms_residual_m']:.3g} m)")
    for w in rec["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


@geology_app.command("degradation")
def geology_degradation(
    craters: Annotated[Path, typer.Option("--craters", help="Craters: a `selenite craters` CSV (pixels of the "
                                          "DEM/image or lon/lat + diameter) or a .scc with positions.")],
    out: Annotated[Path, typer.Option("--out", help="CSV of classes to write.", dir_okay=False)],
    dem: Annotated[Path | None, typer.Option("--dem", help="DEM the craters are measured on.")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="Or a north-up image (an ortho GeoTIFF, or a "
                                               "plain image with --gsd), with --sun.")] = None,
    sun: Annotated[tuple[float, float] | None, typer.Option("--sun", help="Sun azimuth (° clockwise from "
                                                            "north) and elevation (°) of the image.")] = None,
    gsd: Annotated[float | None, typer.Option("--gsd", help="Metres per pixel of a plain image.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Class map to write (PNG).", dir_okay=False)]
    = None,
) -> None:
    """Basilevsky class (A, AB, B, BC, C) and age bracket per crater from DEM or image profiles."""
    from selenite.errors import InputError
    from selenite.geology.degradation import degradation_file, degradation_image_file

    if (dem is None) == (image is None):
        raise InputError("give exactly one of --dem DEM or --image IMAGE")
    if dem is not None:
        rec = degradation_file(craters, dem, out, plot)
    else:
        if sun is None:
            raise InputError("image profiles need the Sun's direction: give --sun AZIMUTH ELEVATION")
        rec = degradation_image_file(craters, image, sun, out, plot, gsd)
    say(f"{rec['measured']} of {rec['n']} craters measured → {out}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(rec["classes"].items())))


@geology_app.command("particles")
def geology_particles(
    image: Annotated[Path, typer.Option("--image", help="Close-range image (ortho or near-nadir).")],
    gsd: Annotated[float, typer.Option("--gsd", help="Metres per pixel (from `selenite geology gsd`).")],
    out: Annotated[Path, typer.Option("--out", help="CSV of clasts to write.", dir_okay=False)],
    max_size: Annotated[float | None, typer.Option("--max-size", help="Largest clast sought (m); default "
                                                   "1/8 of the image.")] = None,
    k: Annotated[float, typer.Option("--k", help="Threshold in robust standard deviations.")] = 4.0,
    plot: Annotated[Path | None, typer.Option("--plot", help="Figure to write (PNG).", dir_okay=False)] = None,
) -> None:
    """Rocks and bright clasts: sizes in mm/cm via the GSD and their size distribution."""
    from selenite.geology.particles import particles_file

    rec = particles_file(image, gsd, out, max_size, k, plot)
    dm = rec["diameter_m"]
    size = "" if dm["min"] is None else (f": {dm['min'] * 1000:.3g}–{dm['max'] * 1000:.3g} mm, median "
                                         f"{dm['median'] * 1000:.3g} mm")
    say(f"{rec['n_clasts']} clasts ({rec['n_whole']} whole){size} → {out}")


@geology_app.command("analyze")
def geology_analyze(
    out: Annotated[Path, typer.Option("--out", help="Run folder to write.", file_okay=False)],
    run: Annotated[Path | None, typer.Option("--run", help="A `selenite locate` run folder.")] = None,
    poses: Annotated[Path | None, typer.Option("--poses", help="Instead of --run: a pose file (a run's poses.json "
                                               "or a synthetic truth.json).", dir_okay=False)] = None,
    frames_dir: Annotated[Path | None, typer.Option("--frames", help="Folder of the frames (default: the run's, "
                                                    "or the pose file's folder).")] = None,
    map_path: Annotated[Path | None, typer.Option("--map", help="Orbital map for the GSD calibration (default: "
                                                  "the run's map).")] = None,
    dem: Annotated[Path | None, typer.Option("--dem", help="DEM in the frames' map CRS: DEM ortho and DEM "
                                             "degradation profiles.")] = None,
    craters: Annotated[Path | None, typer.Option("--craters", help="Use this count (lon/lat + diameter, or .scc) "
                                                 "instead of detecting craters.")] = None,
    count_frame: Annotated[int | None, typer.Option("--count-frame", help="Frame to count craters on (default: "
                                                    "the highest clear frame).")] = None,
    rock_frame: Annotated[int | None, typer.Option("--rock-frame", help="Frame to size rocks on (default: the "
                                                   "lowest clear frame).")] = None,
    chron: Annotated[str, typer.Option("--chronology", help="neukum2001, neukum1983 or yue2022.")] = "neukum2001",
    d_range: Annotated[tuple[float, float] | None, typer.Option("--range", help="Diameter range DMIN DMAX in "
                                                                "metres for the age.")] = None,
    min_px: Annotated[float, typer.Option("--min-px", help="Smallest crater dated, in ortho pixels.")] = 10.0,
    sun: Annotated[tuple[float, float] | None, typer.Option("--sun", help="Sun azimuth (° clockwise from north) "
                                                            "and elevation (°) at the count frame, for image "
                                                            "degradation profiles.")] = None,
    trials: Annotated[int, typer.Option("--trials", help="Monte-Carlo configurations for randomness.")] = 300,
    force: ForceOpt = False,
) -> None:
    """The whole geology chain on a located descent: orthos, GSD on the map, craters, age, randomness,
    degradation classes, rocks → run folder with geology.json and report.html."""
    from selenite.geology.analyze import run_analyze

    with progress_bar() as notify:
        path = run_analyze(out, run=run, poses=poses, frames_dir=frames_dir, map_path=map_path, dem=dem,
                           craters=craters, count_frame=count_frame, rock_frame=rock_frame, chron=chron,
                           d_range_m=d_range, min_px=min_px, sun=sun, trials=trials, force=force, notify=notify)
    rec = json.loads(path.read_text())
    d = rec["date"]
    from selenite.geology.dating import age_line

    say(f"count frame {rec['count_frame']}: {rec['craters']['n']} craters on {d['area_km2']:.3g} km²")
    if "error" in d:
        say(f"no model age: {d['error']}")
    else:
        for a in d["ages"]:
            say(age_line(a))
    say(f"→ {out / 'report.html'}")


# ---------------------------------------------------------------------------------------------------------
# segment
# ---------------------------------------------------------------------------------------------------------
@segment_app.command("predict")
def segment_predict(
    images: Annotated[list[Path], typer.Argument(help="Images (PNG/JPEG/TIFF, 8- or 16-bit).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the outputs.", file_okay=False)],
    tta: Annotated[bool, typer.Option("--tta", help="4-flip test-time augmentation.")] = False,
    mc_passes: Annotated[int, typer.Option("--mc-passes", help="Monte-Carlo dropout passes (0 = none; "
                                           "20 as LunarSite).")] = 0,
    weights: Annotated[Path | None, typer.Option("--weights", help="Weights (default: the shipped ones).")] = None,
) -> None:
    """Class map, overlay and coverage per image; with --mc-passes entropy and mutual-information maps."""
    from selenite.segment.pipeline import predict_files

    with progress_bar() as notify:
        recs = predict_files(images, out, weights, tta, mc_passes, notify=notify)
    for r in recs:
        cov = ", ".join(f"{k} {v:.1%}" for k, v in r["coverage"].items())
        extra = (f"; mean entropy {r['mean_entropy']:.3f}, mean MI {r['mean_mutual_information']:.4f}"
                 if mc_passes else "")
        say(f"{Path(r['image']).name}: {cov}{extra}")


@segment_app.command("train")
def segment_train(
    data: Annotated[Path, typer.Option("--data", help="Dataset folder: images/ + masks/ (selenite scenes) or "
                                       "ALRL's render/ + clean/.")],
    out: Annotated[Path, typer.Option("--out", help="Weights file to write (.pt).", dir_okay=False)],
    kind: Annotated[str, typer.Option("--kind", help="unet or unet-dropout.")] = "unet-dropout",
    val: Annotated[Path | None, typer.Option("--val", help="Validation dataset (default: a 10 % split).")] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = 20,
    batch: Annotated[int, typer.Option("--batch")] = 16,
    size: Annotated[int | None, typer.Option("--size", help="Resize images to SIZE × SIZE.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    members: Annotated[int, typer.Option("--members", help="Deep ensemble: this many networks, seeds SEED, "
                                         "SEED+1, …, in one weights file.")] = 1,
) -> None:
    """Train the U-Net (Dice + cross-entropy) on the CPU, or a deep ensemble of them."""
    from selenite.segment.pipeline import train_files

    with progress_bar() as notify:
        card = train_files(data, val, out, kind, epochs, batch, size, seed, notify=notify, members=members)
    if members > 1:
        say(f"{members} members, ensemble validation mIoU {card['ensemble_val_miou']:.4f} → {out}")
    else:
        say(f"best validation mIoU {card['best_val_miou']:.4f} → {out}")


@segment_app.command("ensemble")
def segment_ensemble(
    weights: Annotated[list[Path], typer.Argument(help="Weights files of one kind (members).")],
    val: Annotated[Path, typer.Option("--val", help="Validation dataset for the ensemble's temperatures.")],
    out: Annotated[Path, typer.Option("--out", help="Ensemble weights file to write (.pt).", dir_okay=False)],
) -> None:
    """Combine separately trained weights into one deep-ensemble file (temperatures refitted on --val)."""
    from selenite.segment.pipeline import ensemble_files

    card = ensemble_files(weights, val, out)
    say(f"{card['n_members']} members, ensemble validation mIoU {card['ensemble_val_miou']:.4f} → {out}")


@segment_app.command("calibrate")
def segment_calibrate(
    data: Annotated[Path, typer.Option("--data", help="Labelled dataset folder.")],
    weights: Annotated[Path | None, typer.Option("--weights")] = None,
    tta: Annotated[bool, typer.Option("--tta")] = False,
    mc_passes: Annotated[int, typer.Option("--mc-passes")] = 0,
    plot: Annotated[Path | None, typer.Option("--plot", help="Reliability diagram (PNG).", dir_okay=False)] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many images.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """mIoU and expected calibration error (15 bins) with a reliability diagram."""
    from selenite.segment.pipeline import calibrate_files

    rec = calibrate_files(data, weights, tta, mc_passes, plot, limit)
    if as_json:
        typer.echo(json.dumps(rec, indent=1))
        return
    say(f"{rec['images']} images: mIoU {rec['miou']:.4f}, ECE {rec['ece']:.4f} "
        + "(" + ", ".join(f"{k} {v:.3f}" for k, v in rec["iou"].items()) + ")")


@segment_app.command("ood")
def segment_ood(
    in_domain: Annotated[Path, typer.Option("--in-domain", help="Images like the training data.")],
    out_of_domain: Annotated[Path, typer.Option("--out-of-domain", help="Images to test (e.g. real photos).")],
    weights: Annotated[Path | None, typer.Option("--weights")] = None,
    mc_passes: Annotated[int, typer.Option("--mc-passes")] = 20,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many images per set.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Mean mutual information and entropy per set, and the lift out-of-domain / in-domain."""
    from selenite.segment.pipeline import ood_files

    rec = ood_files(in_domain, out_of_domain, weights, mc_passes, limit=limit)
    if as_json:
        typer.echo(json.dumps(rec, indent=1))
        return
    for k in ("in_domain", "out_of_domain"):
        r = rec[k]
        say(f"{k:14s} {r['inputs']:4d} inputs: mean MI {r['mean_mi']:.5f}, mean entropy {r['mean_entropy']:.4f}")
    say(f"MI lift {rec['mi_lift']:.2f}×, entropy lift {rec['entropy_lift']:.2f}×")


# ---------------------------------------------------------------------------------------------------------
# craters
# ---------------------------------------------------------------------------------------------------------
@craters_app.command("detect")
def craters_detect(
    out: Annotated[Path, typer.Option("--out", help="Crater CSV to write (an overlay PNG and a JSON sidecar "
                                      "go beside it).", dir_okay=False)],
    dem: Annotated[Path | None, typer.Option("--dem", help="A DEM (GeoTIFF/PDS3).")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="An optical image (PNG/JPEG/TIFF).")] = None,
    gsd: Annotated[float | None, typer.Option("--gsd", help="Metres per pixel (adds diameter_m).")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Weights file (default: the shipped ones "
                                                 "for the input's kind).")] = None,
    lonlat: Annotated[bool, typer.Option("--lonlat", help="Require lon/lat output (the input must be "
                                         "georeferenced).")] = False,
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help="Flip test-time augmentation (default: on "
                                             "for images, off for DEMs).")] = None,
    threshold: Annotated[float | None, typer.Option(help="Centre-probability threshold (default: the one "
                                                    "stored with the weights).")] = None,
    min_diameter: Annotated[float | None, typer.Option("--min-diameter", help="Smallest crater (px).")] = None,
    max_diameter: Annotated[float | None, typer.Option("--max-diameter", help="Largest crater (px).")] = None,
) -> None:
    """Craters in a DEM or an image → CSV (x_px, y_px, diameter_px, score[, lon, lat, diameter_m]) + overlay."""
    from selenite.craters.pipeline import detect_file

    with progress_bar() as notify:
        rec = detect_file(dem=dem, image=image, out=out, gsd=gsd, weights=weights, lonlat=lonlat, tta=tta,
                          threshold=threshold, min_diameter_px=min_diameter, max_diameter_px=max_diameter,
                          notify=notify)
    say(f"{rec['n_craters']} craters → {', '.join(rec['outputs'])}")


@craters_app.command("evaluate")
def craters_evaluate(
    detected: Annotated[Path, typer.Argument(help="Detections CSV (from `selenite craters detect`).")],
    truth: Annotated[Path, typer.Option("--truth", help="Truth table: same columns, labelled boxes "
                                        "(ID,X,Y,W,H), or lon/lat with a diameter.")],
    min_diameter: Annotated[float | None, typer.Option("--min-diameter", help="Score only true craters of "
                                                       "at least this diameter (px).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Object precision/recall/F1 (centre within 0.5 D, diameter ratio ≤ 1.5, one-to-one), errors, rim pixels."""
    from selenite.craters.pipeline import evaluate_files, format_evaluation

    res = evaluate_files(detected, truth, min_diameter_px=min_diameter)
    typer.echo(json.dumps(res, indent=1) if as_json else format_evaluation(res))


def _train_cli(kind: str, data: Path | None, synthetic: int, out: Path, steps: int, batch: int, device: str,
               init: Path | None, lr: float) -> None:
    from selenite.craters.data import folder_scenes
    from selenite.craters.detect import DetectSettings
    from selenite.craters.net import load_weights, save_weights
    from selenite.craters.recipe import SEED_TRAIN, SEED_VAL, synthetic_scenes
    from selenite.craters.train import TrainSettings, choose_threshold, train_model
    from selenite.errors import InputError

    if kind not in ("dem", "image"):
        raise InputError(f"--kind must be dem or image, not {kind!r}")
    if out.suffix != ".pt":
        raise InputError("--out must name a .pt weights file")
    if data is None and synthetic <= 0:
        raise InputError("give --data FOLDER (labelled scenes) or --synthetic N")
    if data is not None:
        scenes = folder_scenes(data, kind)
        if len(scenes) < 2:
            raise InputError(f"{data}: need at least 2 labelled scenes (one is kept for validation)")
        n_val = max(1, len(scenes) // 5)
        train, val, src = scenes[:-n_val], scenes[-n_val:], f"{len(scenes) - n_val} scenes of {data}"
    else:
        train = synthetic_scenes(kind, SEED_TRAIN, synthetic)
        val = synthetic_scenes(kind, SEED_VAL, max(2, synthetic // 10))
        src = f"{synthetic} synthetic {kind} scenes"
    model, card = (load_weights(init, kind) if init else (None, None))
    ts = TrainSettings(steps=steps, batch=batch, device=device, lr=lr)
    with progress_bar() as notify:
        model = train_model(kind, train, ts, model=model, notify=lambda s, f, r: notify(s, f))
    min_d = float(card["meta"].get("min_diameter_px", 4.0)) if card else 4.0
    th, sc = choose_threshold(model, kind, val, DetectSettings(min_diameter_px=min_d, tta=kind == "image"))
    note = src + (f", fine-tuned from {init}" if init else "")
    save_weights(out, model, kind, {"threshold": th, "min_diameter_px": min_d, "trained_on": note,
                                    "validation": sc, "steps": steps, "history": ts.history})
    say(f"validation F1 {sc['f1']:.3f} at threshold {th} → {out}")


KindOpt = Annotated[str, typer.Option("--kind", help="dem or image.")]


@craters_app.command("train")
def craters_train(
    kind: KindOpt,
    out: Annotated[Path, typer.Option("--out", help="Weights file to write (.pt).", dir_okay=False)],
    data: Annotated[Path | None, typer.Option("--data", help="Folder of images/DEMs, each with a crater "
                                              "table of the same name.")] = None,
    synthetic: Annotated[int, typer.Option("--synthetic", help="Train on N synthetic scenes instead.")] = 0,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 2000,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 16,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Train a detector from scratch (the last fifth of the scenes chooses the threshold)."""
    _train_cli(kind, data, synthetic, out, steps, batch, device, None, 3e-3)


@craters_app.command("finetune")
def craters_finetune(
    data: Annotated[Path, typer.Option("--data", help="Folder of labelled images/DEMs.")],
    out: Annotated[Path, typer.Option("--out", help="Weights file to write (.pt).", dir_okay=False)],
    kind: KindOpt = "image",
    weights: Annotated[Path | None, typer.Option("--weights", help="Start from these (default: shipped).")] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 500,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 16,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Go on training shipped (or given) weights on your own labelled scenes, at a lower learning rate."""
    from selenite.craters.net import default_weights

    _train_cli(kind, data, 0, out, steps, batch, device, weights or default_weights(kind), 1e-3)


# ---------------------------------------------------------------------------------------------------------
# synth
# ---------------------------------------------------------------------------------------------------------
@synth_app.command("world")
def synth_world(
    out: Annotated[Path, typer.Option("--out", help="Run folder to write (created; resumed if it exists).")],
    seed: Annotated[int | None, typer.Option(help="Random seed; everything is deterministic from it.")] = None,
    preset: Annotated[str, typer.Option(help="Named settings: tiny, demo, default, change6, south-pole.")] = "demo",
    config: ConfigOpt = None,
    size_px: Annotated[int | None, typer.Option(help="DEM size in pixels (square).")] = None,
    age_ga: Annotated[float | None, typer.Option(help="Model age of the surface, Ga.")] = None,
    no_descent: Annotated[bool, typer.Option("--no-descent", help="Skip the descent sequence.")] = False,
    force: ForceOpt = False,
) -> None:
    """Build a synthetic world: DEM, crater catalogue, orbital map, descent frames with truth, report."""
    from selenite.config import resolve_config
    from selenite.pipelines import run_synth_world
    from selenite.synth.world import WorldConfig, confs

    overrides = {"seed": seed, "size_px": size_px, "age_ga": age_ga}
    if no_descent:
        overrides["descent"] = {"enabled": False}
    cfg = resolve_config(WorldConfig, confs, stage="synth", preset=preset, config_file=config, overrides=overrides)
    with progress_bar() as notify:
        path = run_synth_world(cfg, out, force=force, progress=notify)
    say(f"world written to {path} (report: {path / 'report.html'})")


# ---------------------------------------------------------------------------------------------------------
# terrain
# ---------------------------------------------------------------------------------------------------------
DemOpt = Annotated[Path, typer.Option("--dem", help="DEM (GeoTIFF or PDS3) in a projected lunar CRS, metres.")]
OutDirOpt = Annotated[Path, typer.Option("--out", help="Run folder to write (created; resumed if it exists).")]


@terrain_app.command("attributes")
def terrain_attributes(
    dem: DemOpt,
    out: OutDirOpt,
    baseline_m: Annotated[float | None, typer.Option("--baseline-m", help="Baseline of the footprint slope and "
                                                     "roughness (m), e.g. a lander's 5–10 m.")] = None,
    preset: Annotated[str, typer.Option(help="Named settings: default, year.")] = "default",
    config: ConfigOpt = None,
    force: ForceOpt = False,
) -> None:
    """slope.tif, slope_baseline.tif, aspect.tif, roughness.tif, tri.tif, curvature.tif (COGs), streamed."""
    from selenite.config import resolve_config
    from selenite.terrain.config import TerrainConfig, confs
    from selenite.terrain.pipeline import run_attributes

    cfg = resolve_config(TerrainConfig, confs, stage="terrain", preset=preset, config_file=config,
                         overrides={"baseline_m": baseline_m})
    with progress_bar() as notify:
        path = run_attributes(dem, out, cfg, force=force, progress=notify)
    say(f"written to {path}")


@terrain_app.command("visibility")
def terrain_visibility(
    dem: DemOpt,
    out: OutDirOpt,
    start: Annotated[str | None, typer.Option(help="Start of the period (ISO date/time, UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="End of the period (ISO date/time, UTC, excluded).")] = None,
    step: Annotated[str | None, typer.Option(help="Time step: 6h, 30min, 1d ...")] = None,
    azimuths: Annotated[int | None, typer.Option(help="Horizon azimuths (default 360).")] = None,
    height: Annotated[float | None, typer.Option("--height", help="The observer's eye above the ground, m "
                                                 "(default 2; PGDA and the literature use 0, 2 and 10).")] = None,
    far_dem: Annotated[list[Path] | None, typer.Option("--far-dem", help="Coarser DEMs around it for the terrain "
                                                       "beyond the DEM's edge (e.g. the 1.8 km LOLA polar cap or "
                                                       "LDEM_4); repeat it, best first.")] = None,
    no_horizon_file: Annotated[bool, typer.Option("--no-horizon-file", help="Do not write horizon.tif (one int16 "
                                                  "band per azimuth: 3 GB for a 2048² DEM at 360).")] = False,
    preset: Annotated[str, typer.Option(help="Named settings: default (18.6 years, 12 h), year (2026, "
                                        "6 h).")] = "default",
    config: ConfigOpt = None,
    force: ForceOpt = False,
) -> None:
    """horizon.tif, sun_visibility.tif, earth_visibility.tif, psr.tif, longest_dark_days.tif,
    longest_sun_days.tif, sun_earth_longest_days.tif, sun_stay.tif, sun_earth_stay.tif (COGs) and
    visibility.json."""
    from selenite.config import resolve_config
    from selenite.terrain.config import TerrainConfig, confs
    from selenite.terrain.pipeline import run_visibility

    cfg = resolve_config(TerrainConfig, confs, stage="terrain", preset=preset, config_file=config,
                         overrides={"start": start, "end": end, "step": step, "azimuths": azimuths,
                                    "height_m": height, "write_horizon": False if no_horizon_file else None})
    with progress_bar() as notify:
        path = run_visibility(dem, out, cfg, far_dem=far_dem, force=force, progress=notify)
    meta = json.loads((path / "visibility.json").read_text())
    say(f"mean Sun visibility {meta['sun_visibility_mean_pct']:.1f} %, Earth {meta['earth_visibility_mean_pct']:.1f} %,"
        f" permanently shadowed {100 * meta['psr_fraction']:.2f} % of the DEM; written to {path}")


@terrain_app.command("compare")
def terrain_compare(
    ours: Annotated[Path, typer.Argument(help="Our product (e.g. sun_visibility.tif or psr.tif).")],
    reference: Annotated[Path, typer.Argument(help="The reference raster (e.g. a PGDA product), any lunar CRS.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Agreement with a reference raster: bias/MAE/RMSE/r, or for masks agreement, chance agreement, kappa, IoU."""
    from selenite.terrain.compare import compare_rasters, format_comparison

    c = compare_rasters(ours, reference)
    typer.echo(json.dumps(c, indent=1) if as_json else format_comparison(c))


@terrain_app.command("reproject")
def terrain_reproject(
    dem: DemOpt,
    out: Annotated[Path, typer.Option("--out", help="Output GeoTIFF (COG).", dir_okay=False)],
    crs: Annotated[str | None, typer.Option(help="Target CRS (default: polar stereographic beyond ±80°, else a "
                                            "local stereographic map centred on the DEM).")] = None,
    res_m: Annotated[float | None, typer.Option("--res-m", help="Target pixel size (m).")] = None,
) -> None:
    """Resample a DEM (e.g. in longitude/latitude) onto a projected lunar grid in metres (bilinear)."""
    from selenite.terrain.compare import reproject_dem

    r = reproject_dem(dem, out, crs, res_m)
    say(f"{out}: {r['width']} × {r['height']} px of {r['pixel_m']:.2f} m in {r['crs']}")


# ---------------------------------------------------------------------------------------------------------
# locate
# ---------------------------------------------------------------------------------------------------------
@locate_app.command("run")
def locate_run(
    frames: Annotated[Path, typer.Option("--frames", help="Folder of descent frames, in time order by file name.")],
    camera: Annotated[Path, typer.Option("--camera", help="Camera JSON: a pinhole (width, height, fx, fy, cx, "
                                         "cy [, k1, k2, p1, p2, k3]), an OpenCV fish-eye (\"model\": \"fisheye\", "
                                         "k1..k4), or only a field of view ({\"model\": \"fisheye\", "
                                         "\"fov_deg\": 90}) or sensor_width_mm + focal_mm, whose focal length and "
                                         "distortion are then self-calibrated.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to write (created; resumed if it exists).")],
    dom: Annotated[Path | None, typer.Option("--dom", help="Orbital orthoimage: a GeoTIFF in a lunar CRS, or a "
                                             "plain image (PNG/JPEG/TIFF without georeference; results then in map "
                                             "pixels). Or give --dem.")] = None,
    start_altitude: Annotated[float | None, typer.Option("--start-altitude", help="Altitude of the first frame "
                                                         "above the landing ground (m); without it the scale "
                                                         "comes from the map.")] = None,
    preset: Annotated[str, typer.Option(help="Named settings: default, fast.")] = "default",
    config: ConfigOpt = None,
    features: Annotated[str | None, typer.Option(
        help="Local features: xfeat (default), aliked (ALIKED + LightGlue) or sift.")] = None,
    times: Annotated[Path | None, typer.Option(
        "--times", help="CSV file,time_s of the frames (default: clock times in the file names, HH_MM_SS or "
        "HHMMSS, else the frame number).")] = None,
    dom_gsd: Annotated[float | None, typer.Option(
        "--dom-gsd", help="Metres per pixel of a plain-image DOM (without it, distances are in map pixels).")] = None,
    dom_north_up: Annotated[bool, typer.Option(
        "--dom-north-up/--dom-not-north-up",
        help="A plain-image DOM has north up (headings are given from it).")] = True,
    self_calibrate: Annotated[str | None, typer.Option(
        "--self-calibrate", help="Refine the focal length and distortion in the reconstruction: auto (when the "
        "camera file gives no distortion), on or off.")] = None,
    dem: Annotated[Path | None, typer.Option(
        "--dem", help="A DEM of the landing area (GeoTIFF in a lunar CRS) instead of --dom: the map is the DEM "
        "rendered under the descent's Sun.")] = None,
    sun_az: Annotated[float | None, typer.Option(
        "--sun-az", help="With --dem: the Sun's azimuth (degrees clockwise from north) during the descent; without "
        "it the map search tries 8 azimuths and keeps the best supported.")] = None,
    sun_el: Annotated[float | None, typer.Option(
        "--sun-el", help="With --dem: the Sun's elevation (degrees) during the descent (default 15).")] = None,
    force: ForceOpt = False,
) -> None:
    """Locate the lander: landing.json, trajectory.csv/.geojson, maneuvers.json, plots, report.html."""
    from selenite.config import resolve_config
    from selenite.locate.config import LocateConfig, confs
    from selenite.locate.pipeline import run_locate

    cfg = resolve_config(LocateConfig, confs, stage="locate", preset=preset, config_file=config,
                         overrides={"start_altitude_m": start_altitude, "features": features,
                                    "self_calibrate": self_calibrate})
    with progress_bar() as notify:
        path = run_locate(frames, dom, camera, out, cfg, force=force, progress=notify, dom_gsd_m=dom_gsd,
                          dom_north_up=dom_north_up, times_csv=times, dem_path=dem, sun_az_deg=sun_az,
                          sun_el_deg=sun_el)
    from selenite.locate.report import landing_sentence

    land = json.loads(path.read_text())
    say(landing_sentence(land))
    if land.get("limited_by"):
        say(f"limited by the {land['limited_by']}")
    say(f"written to {out} (report: {out / 'report.html'})")


@locate_app.command("evaluate")
def locate_evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A 'selenite locate run' folder.")],
    truth: Annotated[Path, typer.Option("--truth", help="Truth JSON (a synthetic world's descent/truth.json, or "
                                        "any JSON with the landing's lon, lat [, dom_col, dom_row]).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Errors of the coarse and fine fixes (metres and DOM pixels) against a truth file."""
    from selenite.locate.evaluate import evaluate_run, format_evaluation

    ev = evaluate_run(run_dir, truth)
    typer.echo(json.dumps(ev, indent=1) if as_json else format_evaluation(ev))


# ---------------------------------------------------------------------------------------------------------
# verify, demo
# ---------------------------------------------------------------------------------------------------------
@app.command("verify")
def verify(run_dir: Annotated[Path, typer.Argument(help="A run folder with a manifest.json.")]) -> None:
    """Re-check the checksum of every output and input listed in a run's manifest (exit 1 on mismatch)."""
    from selenite.runs import verify_run

    report = verify_run(run_dir)
    for line in report.problems:
        typer.echo(line, err=True)
    if not report.ok:
        typer.echo(f"selenite: verify failed: {len(report.problems)} of {report.checked} files differ", err=True)
        raise typer.Exit(1)
    say(f"ok: {report.checked} files match the manifest of {run_dir}")


@app.command("info")
def info(path: Annotated[Path, typer.Argument(help="A GeoTIFF or PDS3 raster (.tif, .LBL, .IMG).")]) -> None:
    """Describe a lunar raster: CRS, size, pixel size, corner lon/lat, value range."""
    import numpy as np

    from selenite.geo.raster import raster_info, read_raster

    ri = raster_info(path)
    data, _ = read_raster(path)
    corners = ri.pixel_to_lonlat(np.array([-0.5, ri.width - 0.5]), np.array([-0.5, ri.height - 0.5]))
    typer.echo(json.dumps({
        "path": str(path), "crs": ri.crs.name, "width": ri.width, "height": ri.height,
        "pixel_size": list(ri.res), "bounds_map": list(ri.bounds),
        "corners_lonlat": {"top_left": [float(corners[0][0]), float(corners[1][0])],
                           "bottom_right": [float(corners[0][1]), float(corners[1][1])]},
        "value_min": float(np.nanmin(data)), "value_max": float(np.nanmax(data)),
        "nodata_fraction": float(np.isnan(data).mean()),
    }, indent=1))


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo run.")] = Path("demo_run"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic world.")] = 1,
    preset: Annotated[str, typer.Option(help="Synthetic world preset.")] = "demo",
    force: ForceOpt = False,
) -> None:
    """Build the embedded synthetic world, run every stage that has landed on it, write report.html."""
    from selenite.pipelines import run_demo

    with progress_bar() as notify:
        report = run_demo(out, seed=seed, preset=preset, force=force, progress=notify)
    say(f"demo report: {report.resolve()}")


@app.command("app")
def web_app(
    port: Annotated[int, typer.Option("--port", help="Port on localhost.")] = 8501,
    run: Annotated[list[Path] | None, typer.Option("--run", help="Run folder to show (a demo folder or a stage's "
                                                   "run); repeat for more.")] = None,
) -> None:
    """The web app (Streamlit, offline): Sites, Terrain, Locate, Craters, Geology and Segment pages."""
    from selenite.app import launch

    raise typer.Exit(launch(port, run or []))


@sites_app.command("features")
def sites_features(
    dem: Annotated[Path, typer.Option("--dem", help="DEM (GeoTIFF or PDS3), any lunar CRS.", dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", help="Cell table to write (.parquet; a .json beside it).",
                                      dir_okay=False)],
    craters: Annotated[Path | None, typer.Option(help="Crater catalogue CSV.", dir_okay=False)] = None,
    cell_m: Annotated[float | None, typer.Option("--cell-m", help="Cell size (m, default 1000).")] = None,
    region_lat: Annotated[float | None, typer.Option("--region-lat", help="Cells poleward of this latitude "
                                                     "(default -80).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask distributed scheduler address.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Only the per-cell features of a DEM (and crater catalogue), streamed: a table, no model."""
    from selenite.config import resolve_config
    from selenite.sites.config import SitesConfig, confs
    from selenite.sites.pipeline import features_table

    if out.suffix.lower() != ".parquet":
        raise typer.BadParameter("--out must end in .parquet")
    cfg = resolve_config(SitesConfig, confs, stage="sites", preset="default", config_file=config,
                         overrides={"cell_m": cell_m, "region_lat": region_lat})
    with progress_bar() as notify:
        path = features_table(out, cfg, dem=dem, craters=craters, scheduler=scheduler, progress=notify)
    meta = json.loads(path.with_suffix(".json").read_text())
    say(f"{meta['cells']:,} cells × {len(meta['features'])} features in {meta['seconds']['dem']:.1f} s; "
        f"written to {path}")


@sites_app.command("rank")
def sites_rank(
    out: OutDirOpt,
    dem: Annotated[Path | None, typer.Option("--dem", help="DEM (GeoTIFF or PDS3; any lunar CRS: read onto the "
                                             "cell grid).", dir_okay=False)] = None,
    slope: Annotated[Path | None, typer.Option(help="Slope raster (degrees), e.g. PGDA's; replaces the DEM's "
                                               "slope columns.", dir_okay=False)] = None,
    roughness: Annotated[Path | None, typer.Option(help="Roughness raster (m).", dir_okay=False)] = None,
    illumination: Annotated[Path | None, typer.Option(help="Sun visibility (%), e.g. sun_visibility.tif of "
                                                      "`selenite terrain visibility` or PGDA's.",
                                                      dir_okay=False)] = None,
    earth: Annotated[Path | None, typer.Option(help="Earth visibility (%).", dir_okay=False)] = None,
    psr: Annotated[Path | None, typer.Option(help="PSR mask (1 = permanently shadowed).", dir_okay=False)] = None,
    worst_month: Annotated[Path | None, typer.Option("--worst-month", help="Lowest monthly Sun visibility (%).",
                                                     dir_okay=False)] = None,
    sun_earth: Annotated[Path | None, typer.Option("--sun-earth", help="Longest Sun + Earth period (days).",
                                                   dir_okay=False)] = None,
    dark: Annotated[Path | None, typer.Option(help="Longest darkness (days).", dir_okay=False)] = None,
    light: Annotated[Path | None, typer.Option("--light", help="A `selenite terrain visibility` run folder: all "
                                               "its products (Sun, Earth, PSR, stays, ...).", file_okay=False)] = None,
    craters: Annotated[Path | None, typer.Option(help="Crater catalogue CSV (lon, lat, diameter; Robbins-style "
                                                 "or `selenite craters` output).", dir_okay=False)] = None,
    regions: Annotated[Path | None, typer.Option(help="Region polygons to validate against (e.g. the Artemis III "
                                                 "regions GeoJSON).", dir_okay=False)] = None,
    reference_sites: Annotated[Path | None, typer.Option("--reference-sites", help="Published sites (points, e.g. "
                                                         "Wueller et al. 2026's shapefile) to compare with.",
                                                         dir_okay=False)] = None,
    cell_m: Annotated[float | None, typer.Option("--cell-m", help="Cell size (m, default 1000).")] = None,
    region_lat: Annotated[float | None, typer.Option("--region-lat", help="Cells poleward of this latitude "
                                                     "(default -80).")] = None,
    top: Annotated[int | None, typer.Option(help="Sites to list (default 100).")] = None,
    scorer: Annotated[str | None, typer.Option(help="mission (default: the share of landing times with a 6.5-day "
                                               "Sun + Earth stay, gated by slope, PSR reach and 6° from the pole) "
                                               "or learned (XGBoost on --label).")] = None,
    label: Annotated[str | None, typer.Option(help="Label of the learned scorer: rule (default: slope / Sun / Earth "
                                              "thresholds, circular) or hazard (Monte-Carlo touchdowns on "
                                              "--hazard-dem).")] = None,
    hazard_dem: Annotated[list[Path] | None, typer.Option("--hazard-dem", help="Lander-scale DEM(s) or a folder of "
                                                          "them: hazard probability per covered cell (a feature, "
                                                          "or with --label hazard the label).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask distributed scheduler address (default: local "
                                                  "threads).")] = None,
    preset: Annotated[str, typer.Option(help="Named settings: default, quick.")] = "default",
    config: ConfigOpt = None,
    force: ForceOpt = False,
) -> None:
    """cells.gpkg / cells.parquet (features, score, SHAP), score.tif, top_sites.csv / .geojson, model and card,
    validation.json (with --regions / --reference-sites) and report.html."""
    from selenite.config import resolve_config
    from selenite.sites.config import SitesConfig, confs
    from selenite.sites.pipeline import run_rank

    cfg = resolve_config(SitesConfig, confs, stage="sites", preset=preset, config_file=config,
                         overrides={"cell_m": cell_m, "region_lat": region_lat, "top": top, "label": label,
                                    "scorer": scorer})
    with progress_bar() as notify:
        path = run_rank(out, cfg, dem=dem, slope=slope, roughness=roughness, illumination=illumination, earth=earth,
                        psr=psr, worst_month=worst_month, sun_earth=sun_earth, dark=dark, light=light, craters=craters,
                        regions=regions, reference_sites=reference_sites, hazard_dems=hazard_dem,
                        scheduler=scheduler, force=force, progress=notify)
    ev = json.loads((path / "evaluation.json").read_text())
    if ev.get("scorer") == "mission":
        msg = (f"{ev['cells']:,} cells scored by the mission scorer, {ev['eligible_cells']:,} pass its gates, "
               f"{ev['scored_above_zero']:,} have 6.5-day Sun + Earth stays")
    else:
        sp = ev["spatial_cv"]
        msg = (f"{ev['labelled_cells']:,} cells scored; spatial-CV AUC {sp.get('auc', float('nan')):.3f}"
               f" (label: {ev['label']['kind']})")
    if (path / "validation.json").exists():
        v = json.loads((path / "validation.json").read_text())
        for n, m in v.get("regions", {}).get("top_n", {}).items():
            msg += (f"; top {n}: {m['regions_matched']} regions (random {m['random_mean']:.1f}, "
                    f"p = {m['p_value']:.3f})")
    say(msg + f"; written to {path}")


# ---------------------------------------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------------------------------------
@bench_app.command("synth")
def bench_synth(
    presets: Annotated[list[str] | None, typer.Option("--preset", help="Presets to time (repeatable).")] = None,
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """Time and memory to build synthetic worlds; updates the 'synth' section of docs/benchmarks.md."""
    from selenite.bench.record import machine_line, update_section
    from selenite.bench.synth import bench_world

    rows = []
    for name in presets or ["tiny", "demo"]:
        r = bench_world(name)
        rows.append(f"| {r['preset']} | {r['size_px']}² | {r['frames']} × {r['frame_size']} | {r['seconds']:.1f} |"
                    f" {r['peak_rss_mib']:.0f} |")
        say(json.dumps(r))
    body = ("## Synthetic world (`selenite bench synth`)\n\n"
            f"Machine: {machine_line()}. Whole `synth world` run (terrain, albedo, orbital map, descent frames), "
            "presets run in order in one process (the first includes numba compilation when its cache is cold; "
            "peak RSS is the process maximum so far).\n\n"
            "| preset | DEM | descent frames | seconds | peak RSS (MiB) |\n|---|---|---|---|---|\n" + "\n".join(rows))
    update_section(output, "synth", body)
    say(f"updated {output}")


@bench_app.command("locate")
def bench_locate(
    cases: Annotated[list[str] | None, typer.Option("--case", help="Cases to run (repeatable); default all.")] = None,
    data: Annotated[Path, typer.Option("--data", help="Shared data folder (for the NAC textures).")] = Path(
        "../shared/data"),
    work: Annotated[Path | None, typer.Option("--work", help="Keep worlds and runs here (default: a temporary "
                                              "folder, removed).")] = None,
    preset: Annotated[str, typer.Option("--locate-preset", help="Locate preset to benchmark.")] = "default",
    dev: Annotated[bool, typer.Option("--dev", help="Run the development cases (for tuning) and print them; "
                                      "docs/benchmarks.md is not touched.")] = False,
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """Locate synthetic descents (NAC textures, sun changes, headings, plume); updates docs/benchmarks.md."""
    from selenite.bench.locate import markdown, run_bench
    from selenite.bench.record import machine_line, update_section

    data_dir = data if (data / "images").is_dir() else None
    if data_dir is None:
        say(f"shared data not found at {data}: the NAC-textured cases are skipped")
    rows = run_bench(cases, work, data_dir, preset, progress=lambda name: say(f"case {name} …"), dev=dev)
    for r in rows:
        say(json.dumps(r))
    if dev:
        typer.echo(markdown(rows, machine_line()))
        return
    update_section(output, "locate", markdown(rows, machine_line()))
    say(f"updated {output}")


@bench_app.command("locate-real")
def bench_locate_real(
    work: Annotated[Path, typer.Option("--work", help="Folder for the run and the baselines.")],
    data: Annotated[Path, typer.Option("--data", help="Shared data folder (descent/mars2020_lvs).")] = Path(
        "../shared/data"),
    preset: Annotated[str, typer.Option("--locate-preset", help="Locate preset to benchmark.")] = "default",
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """A real descent (Mars 2020 LCAM) on its unreferenced map, with the published and SIFT baselines."""
    from selenite.bench.locate_real import real_markdown, run_real
    from selenite.bench.record import machine_line, update_section
    from selenite.errors import InputError

    if not (data / "descent" / "mars2020_lvs" / "frames").is_dir():
        raise InputError(f"the Mars 2020 descent is not under {data}/descent/mars2020_lvs")
    row = run_real(data, work, preset)
    say(json.dumps({k: v for k, v in row.items() if k not in ("phases", "camera")}))
    update_section(output, "locate-real", real_markdown(row, machine_line()))
    say(f"updated {output}")


@bench_app.command("locate-drape")
def bench_locate_drape(
    work: Annotated[Path, typer.Option("--work", help="Folder for the cases and runs.")],
    data: Annotated[Path, typer.Option("--data", help="Shared data folder (the NAC crops).")] = Path(
        "../shared/data"),
    cases: Annotated[list[str] | None, typer.Option("--case", help="Cases to run (repeatable); default all.")] = None,
    preset: Annotated[str, typer.Option("--locate-preset", help="Locate preset to benchmark.")] = "default",
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """Descents from the second generator (real NAC images draped on relief, ray-cast lenses), with mismatched
    pairs for the false-fix rate."""
    from selenite.bench.locate_drape import drape_markdown, run_drape_bench
    from selenite.bench.record import machine_line, update_section
    from selenite.errors import InputError

    if not (data / "images" / "nac_change4_crops").is_dir():
        raise InputError(f"the NAC crops are not under {data}/images/nac_change4_crops")
    rows = run_drape_bench(data, work, preset, cases, progress=say)
    for r in rows:
        say(json.dumps(r))
    update_section(output, "locate-drape", drape_markdown(rows, machine_line()))
    say(f"updated {output}")


@bench_app.command("locate-scale")
def bench_locate_scale(
    work: Annotated[Path, typer.Option("--work", help="Folder for the case (about 3 GB; resumed if it exists).")],
    preset: Annotated[str, typer.Option("--locate-preset", help="Locate preset to benchmark.")] = "default",
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """The Chang'E-6-size case (630 frames 2352×1728, DOM 10,530×54,462 px), built on the fly; timed."""
    from selenite.bench.locate_scale import run_scale_case, scale_markdown
    from selenite.bench.record import machine_line, update_section

    row = run_scale_case(work, preset, progress=say)
    say(json.dumps(row))
    update_section(output, "locate-scale", scale_markdown(row, machine_line()))
    say(f"updated {output}")


@bench_app.command("sites")
def bench_sites(
    work: Annotated[Path, typer.Option("--work", help="Folder for the synthetic DEMs and outputs.")],
    sizes: Annotated[list[int] | None, typer.Option("--size", help="DEM sizes (px; default 7600 15200 "
                                                    "30400).")] = None,
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """DEM → 1 km features over 80–90°S: time and peak memory by DEM size (target: 30,400² in ≤ 3 min, ≤ 2 GB)."""
    from selenite.bench.record import machine_line, update_section
    from selenite.bench.sites import (
        hazard_markdown,
        polar_case_dem,
        run_features_case,
        run_hazard_case,
        sites_markdown,
    )

    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes or [7600, 15200, 30400]:
        say(f"synthetic DEM {n}² …")
        polar_case_dem(work, n)
        say(f"features of {n}² …")
        rows.append(run_features_case(work, n))
        say(json.dumps(rows[-1]))
    body = sites_markdown(rows, machine_line())
    if not sizes or 7600 in sizes:
        say("hazard-label case (7,600², 300 lander-scale patches) …")
        hz = run_hazard_case(work, 7600)
        say(json.dumps({k: v for k, v in hz.items() if k != "evaluation"}))
        body += "\n\n" + hazard_markdown(hz)
    update_section(output, "sites", body)
    say(f"updated {output}")


@bench_app.command("craters")
def bench_craters(
    work: Annotated[Path, typer.Option("--work", help="Folder for the 7,600² synthetic DEM and outputs.")],
    synthetic: Annotated[int, typer.Option(help="Held-out synthetic scenes per kind.")] = 100,
    throughput: Annotated[bool, typer.Option("--throughput/--no-throughput", help="Time a 7,600² DEM.")] = True,
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """Object F1 (network vs LoG baseline) on held-out synthetic scenes and NAC crops; 7,600² DEM throughput."""
    from selenite.bench.craters import NAC_DIR, craters_markdown, run_ldem_case, run_scene_cases, run_throughput_case
    from selenite.bench.record import machine_line, update_section
    from selenite.bench.sites import polar_case_dem

    work.mkdir(parents=True, exist_ok=True)
    rows = run_scene_cases(synthetic, notify=lambda r: say(json.dumps(r, default=str)))
    thr = None
    if throughput:
        thr = run_throughput_case(polar_case_dem(work, 7600), work)
        say(json.dumps(thr))
    ldem = None
    if (NAC_DIR.parents[2] / "dem" / "LDEM_4.LBL").is_file():
        ldem = run_ldem_case(NAC_DIR.parents[2], work)
        say(json.dumps(ldem))
    update_section(output, "craters", craters_markdown(rows, thr, machine_line(), ldem))
    say(f"updated {output}")


@bench_app.command("segment")
def bench_segment(
    work: Annotated[Path, typer.Option("--work", help="Folder for the held-out scenes and figures (kept).")],
    weights: Annotated[list[Path] | None, typer.Option("--weights", help="Weights to measure; repeat for more "
                                                       "(default: every shipped file).")] = None,
    n_test: Annotated[int, typer.Option("--n-test", help="Held-out scenes.")] = 300,
    train_dir: Annotated[Path | None, typer.Option("--train-data", help="Training scenes, for the positional "
                                                   "baseline.")] = None,
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """mIoU (± TTA) and ECE (± MC dropout) on held-out scenes, OOD lift on real images, 480² CPU time."""
    from selenite.bench.record import machine_line, update_section
    from selenite.bench.segment import run_segment_bench, segment_markdown
    from selenite.segment.net import shipped_weights

    work.mkdir(parents=True, exist_ok=True)
    results = [run_segment_bench(work, w, n_test, train_dir, notify=lambda r: say(json.dumps(r, default=str)))
               for w in (weights or shipped_weights())]
    (work / "bench_segment.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    update_section(output, "segment", segment_markdown(results, machine_line()))
    say(f"updated {output}")


@bench_app.command("terrain")
def bench_terrain(
    work: Annotated[Path, typer.Option("--work", help="Folder for the DEMs and runs (kept).")],
    sizes: Annotated[list[int] | None, typer.Option("--size", help="DEM sizes (px, repeatable).")] = None,
    azimuths: Annotated[list[int] | None, typer.Option("--azimuths", help="Azimuth counts (repeatable).")] = None,
    attributes_size: Annotated[int, typer.Option(help="Side (px) of the DEM streamed through the attributes; "
                                                 "0 skips it.")] = 8192,
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """Horizons + a year of Sun/Earth visibility: time and memory by DEM size and azimuth count; attributes
    streamed over a large DEM."""
    from selenite.bench.record import machine_line, update_section
    from selenite.bench.terrain import attributes_markdown, run_attributes_case, run_terrain_case, terrain_markdown

    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes or [512, 1024, 2048]:
        for a in azimuths or ([90, 180, 360] if n == max(sizes or [2048]) else [360]):
            say(f"case {n}² × {a} azimuths …")
            rows.append(run_terrain_case(work, n, a))
            say(json.dumps(rows[-1]))
    repeats = []
    if any(r["size"] == 2048 and r["azimuths"] == 360 and "error" not in r for r in rows):
        for k in range(2):        # the target case again: its run-to-run spread, not one lucky run
            say(f"case 2048² × 360 azimuths, repeat {k + 1} …")
            repeats.append(run_terrain_case(work, 2048, 360))
            say(json.dumps(repeats[-1]))
    body = terrain_markdown(rows, machine_line(), repeats)
    if attributes_size:
        say(f"attributes of a {attributes_size}² DEM …")
        ar = run_attributes_case(work, attributes_size)
        say(json.dumps(ar))
        body += "\n\n" + attributes_markdown(ar)
    update_section(output, "terrain", body)
    say(f"updated {output}")


@bench_app.command("south-pole")
def bench_south_pole(
    work: Annotated[Path, typer.Option("--work", help="Folder for the runs (kept).")],
    data: Annotated[Path | None, typer.Option("--data", help="The shared real-data folder (Head et al. 2010's "
                                              "craters, the 10 m Connecting Ridge); without it those parts are "
                                              "left out.", file_okay=False)] = None,
    output: Annotated[Path, typer.Option("--output", help="Benchmarks file to update.")] = Path("docs/benchmarks.md"),
) -> None:
    """The real LOLA south pole end to end: light at 0, 2 and 10 m against Wueller et al. 2026 and the cold-trap
    PSRs, 10 m against 240 m, craters on the DEM, sites against the Artemis III regions; time and memory."""
    from selenite.bench.record import machine_line, update_section
    from selenite.bench.south_pole import run_bench, south_pole_markdown
    from selenite.errors import InputError

    if data is not None and not data.is_dir():
        raise InputError(f"no data folder at {data}")
    res = run_bench(work, data, notify=say)
    (work / "bench_south_pole.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    update_section(output, "south-pole", south_pole_markdown(res, machine_line()))
    say(f"updated {output}")


def main() -> None:
    """Console entry point: SeleniteError → one line on stderr, exit 2 (usage errors: click's exit 2)."""
    try:
        app()  # standalone: usage errors print click's message and exit 2; --help/--version exit 0
    except SeleniteError as exc:
        sys.stderr.write(f"selenite: error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("selenite: interrupted\n")
        sys.exit(130)
