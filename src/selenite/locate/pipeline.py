"""``selenite locate run``: descent frames + orbital map → landing point, trajectory, maneuvers.

Steps (each skipped on resume when its outputs verify): frames (checks, plume detection, SSIM sampling),
features, sfm (pairs, pycolmap), geometry (vertical, altitudes, keyframes), search (map search and
full-resolution registration of the keyframes), coarse (homography chain, the published method), fine (DOM ties,
alignment, bundle adjustment with the DOM), outputs (landing.json, trajectory, maneuvers, plots, report).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from selenite.errors import InputError, RunError, SeleniteError
from selenite.geo.camera import Camera, PinholeCamera, camera_from_dict, load_camera_spec
from selenite.locate.config import LocateConfig
from selenite.locate.dom import Dom
from selenite.locate.features import Features, make_extractor, resize_for_matching
from selenite.locate.frames import (
    adaptive_sample,
    check_frames,
    detect_obscured,
    frame_size,
    frame_statistics,
    list_frames,
    read_frame,
    to_uint8,
)
from selenite.locate.search import no_overlap_error
from selenite.runs import Run, canonical_json

log = logging.getLogger(__name__)
SFM_FILES = ("cameras.bin", "images.bin", "points3D.bin", "rigs.bin", "frames.bin")


def _write_json(path, obj) -> None:
    Path(path).write_text(canonical_json(obj) + "\n")


def _read_json(path):
    return json.loads(Path(path).read_text())


def _save_reconstruction(rec, tmp: dict, prefix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        rec.write(d)
        for f in SFM_FILES:
            shutil.move(str(Path(d) / f), tmp[f"{prefix}/{f}"])


def _load_reconstruction(folder: Path):
    import pycolmap

    return pycolmap.Reconstruction(str(folder))


def _load_features(path: Path) -> dict[str, tuple[Features, float]]:
    data = np.load(path)
    out = {}
    for key in data.files:
        if key.startswith("kp_"):
            name = key[3:]
            out[name] = (Features(data[f"kp_{name}"], data[f"desc_{name}"], data[f"score_{name}"]),
                         float(data[f"scale_{name}"]))
    return out


def run_locate(frames_dir: str | Path, dom_path: str | Path | None, camera_path: str | Path, out: str | Path,
               cfg: LocateConfig, *, force: bool = False, progress=None, dom_gsd_m: float | None = None,
               dom_north_up: bool = True, times_csv: str | Path | None = None, dem_path: str | Path | None = None,
               sun_az_deg: float | None = None, sun_el_deg: float | None = None) -> Path:
    """Run the whole localisation into ``out``; returns the path of landing.json. A DOM without georeference
    (a plain image) is placed in a local frame of ``dom_gsd_m`` metres per pixel (unknown: map pixels). With
    ``dem_path`` instead of a DOM, the map is the DEM rendered under the descent's Sun (:mod:`.demmap`): given
    by ``sun_az_deg``/``sun_el_deg``, or its azimuth found by the map search."""
    notify = progress or (lambda step, frac: None)
    if (dom_path is None) == (dem_path is None):
        raise InputError("give the map as --dom IMAGE or as --dem DEM (one of them)")
    if dem_path is None and (sun_az_deg is not None or sun_el_deg is not None):
        raise InputError("--sun-az/--sun-el render a --dem; an image map is used as it is")
    if sun_el_deg is not None and not (0.0 < sun_el_deg < 90.0):
        raise InputError(f"--sun-el must be between 0 and 90 degrees, not {sun_el_deg}")
    if sun_az_deg is not None and not np.isfinite(sun_az_deg):
        raise InputError(f"--sun-az must be a number of degrees, not {sun_az_deg}")
    spec = load_camera_spec(camera_path)
    paths = list_frames(frames_dir)
    if dem_path is not None:
        from selenite.geo.raster import raster_info

        if dom_gsd_m is not None:
            raise InputError("--dom-gsd is for a plain-image DOM, not a --dem")
        raster_info(dem_path)                        # a georeferenced lunar raster, or one clear error
        dom = None
        dom_path = dem_path
        sun = {"dem": str(Path(dem_path).resolve()), "azimuth_deg": sun_az_deg, "elevation_deg": sun_el_deg}
    else:
        dom = Dom.open(dom_path, gsd_m=dom_gsd_m, north_up=dom_north_up)
        sun = None
    camera = spec.resolve(*frame_size(paths[0]))
    check_frames(paths, camera.width, camera.height)
    calibrate = {"auto": spec.self_calibrate, "on": True, "off": False}[cfg.self_calibrate]
    from selenite.locate.phases import frame_times

    secs, source = frame_times([p.name for p in paths], times_csv)
    times = {"seconds": [float(v) for v in secs], "source": source}
    out = Path(out)
    created = not out.exists() or (out.is_dir() and not any(out.iterdir()))
    try:
        return _run(paths, dom_path, camera_path, camera, calibrate, dom, frames_dir, out, cfg, force, notify, times,
                    sun)
    except SeleniteError:
        if created and out.is_dir():
            shutil.rmtree(out, ignore_errors=True)   # nothing half-written for a run that never got going
        raise


def _run(paths, dom_path, camera_path, camera: Camera, calibrate: bool, dom, frames_dir, out, cfg, force,
         notify, times: dict, sun: dict | None) -> Path:
    params = {"config": json.loads(cfg.model_dump_json()), "frames_dir": str(Path(frames_dir).resolve()),
              "dom": str(Path(dom_path).resolve()), "camera": camera.to_dict(), "self_calibrate": calibrate}
    if dom is not None:
        params.update({"dom_georeferenced": dom.georeferenced, "dom_gsd_m": abs(dom.info.transform.a),
                       "dom_gsd_known": dom.gsd_known})
    else:
        params["sun"] = sun
    with Run(out, command="locate run", params=params, force=force) as run:
        run.add_input(dom_path, "dem" if dom is None else "dom")
        run.add_input(camera_path, "camera")
        cfgp = json.loads(cfg.model_dump_json())

        # 1. frames -----------------------------------------------------------------------------------------
        def make_frames(tmp):
            notify("frames", 0.0)
            stats, thumbs = frame_statistics(paths, camera.width, camera.height, cfg.thumb_side, cfg.threads,
                                             notify)
            stats = detect_obscured(stats, thumbs, cfg.plume_sharpness_ratio, cfg.plume_contrast_ratio,
                                    cfg.plume_window)
            usable = [s["index"] for s in stats if not s["obscured"]]
            if len(usable) < 3:
                raise InputError(f"only {len(usable)} of {len(stats)} frames are clear (the rest obscured); "
                                 "at least 3 are needed")
            # a short sequence is kept whole: the SSIM test can call blurred, low-contrast frames of a fast
            # descent near duplicates (measured: 4 of 18 kept on a blurred second-generator case, SfM then failed)
            sampled = (list(usable) if len(usable) <= cfg.sample_above else
                       adaptive_sample(thumbs, usable, cfg.ssim_threshold, cfg.max_interval, cfg.min_overlap,
                                       cfg.ssim_blur_px))
            first_obscured = next((s["index"] for s in stats if s["obscured"]), None)
            _write_json(tmp["frames.json"], {"frames": stats, "usable": usable, "sampled": sampled,
                                             "first_obscured": first_obscured, "count": len(stats)})
            notify("frames", 1.0)

        frame_params = {k: cfgp[k] for k in ("thumb_side", "plume_sharpness_ratio", "plume_contrast_ratio",
                                             "plume_window", "ssim_threshold", "max_interval", "min_overlap",
                                             "ssim_blur_px", "sample_above")}
        stats = [p.stat() for p in paths]
        frame_params["files"] = [p.name for p in paths]
        frame_params["sizes"] = [st.st_size for st in stats]
        frame_params["mtimes"] = [st.st_mtime_ns for st in stats]
        run.step("frames", ["frames.json"], make_frames, params=frame_params)
        finfo = _read_json(run.path("frames.json"))
        names = [paths[i].name for i in finfo["sampled"]]

        # 1b. lens: self-calibration, then every usable frame resampled to a distortion-free pinhole ----------
        if calibrate or camera.has_distortion:
            from selenite.locate.calibrate import self_calibrate, undistort_frames, undistorted_path

            def make_calibration(tmp):
                res = {"initial": camera.to_dict(), "camera": camera.to_dict(), "self_calibrated": False}
                if calibrate:
                    res = {**self_calibrate(paths, finfo["usable"], camera, cfg.calibration_features,
                                            cfg.max_keypoints, cfg.max_side, cfg.calibration_frames, cfg.threads,
                                            cfg.seed, notify), "self_calibrated": True}
                _write_json(tmp["calibration.json"], res)

            run.step("calibration", ["calibration.json"], make_calibration,
                     params={k: cfgp[k] for k in ("calibration_features", "calibration_frames", "max_keypoints",
                                                  "max_side", "seed")}, reads=["frames.json"])
            lens = camera_from_dict(_read_json(run.path("calibration.json"))["camera"])
            folder = run.path("work/undistorted")

            def make_undistorted(tmp):
                _write_json(tmp["work/undistorted/camera.json"],
                            undistort_frames(paths, finfo["usable"], lens, folder))

            run.step("undistort", ["work/undistorted/camera.json"], make_undistorted,
                     reads=["calibration.json", "frames.json"])
            camera = PinholeCamera.from_dict(_read_json(run.path("work/undistorted/camera.json")))
            usable = set(finfo["usable"])
            paths = [undistorted_path(folder, i) if i in usable else p for i, p in enumerate(paths)]
            if not all(paths[i].is_file() for i in usable):
                raise SeleniteError("the undistorted frames of this run are missing; rerun with --force")

        # 2. features -----------------------------------------------------------------------------------------
        def make_features(tmp):
            ext = make_extractor(cfg.features, cfg.max_keypoints, cfg.threads)
            arrays = {}
            for k, i in enumerate(finfo["sampled"]):
                notify("features", k / len(names))
                small, q = resize_for_matching(to_uint8(read_frame(paths[i])), cfg.max_side)
                f = ext(small)
                n = names[k]
                arrays.update({f"kp_{n}": f.keypoints, f"desc_{n}": f.descriptors, f"score_{n}": f.scores,
                               f"scale_{n}": np.array(q)})
            with open(tmp["work/features.npz"], "wb") as fh:
                np.savez(fh, **arrays)
            notify("features", 1.0)

        feat_params = {k: cfgp[k] for k in ("features", "max_keypoints", "max_side")}
        run.step("features", ["work/features.npz"], make_features, params=feat_params, reads=["frames.json"])

        # 3. structure from motion --------------------------------------------------------------------------
        def make_sfm(tmp):
            from selenite.locate.sfm import (
                bridge_scale_gaps,
                frame_pairs,
                match_pairs,
                reconstruct,
                refine_keypoints,
            )

            feats = _load_features(run.path("work/features.npz"))
            full = [feats[n][0].scaled(feats[n][1]) for n in names]
            pairs = frame_pairs(len(names), cfg.sequential_overlap, cfg.loop_strides)
            notify("matching", 0.0)
            ext = make_extractor(cfg.features, cfg.max_keypoints, cfg.threads)
            pms = match_pairs(full, pairs, ext, (camera.width, camera.height), cfg.min_pair_inliers, notify)
            # frame k as its features were found: shrunk to max_side, with the factor back to full size
            def load_image(k):
                return resize_for_matching(to_uint8(read_frame(paths[finfo["sampled"][k]])), cfg.max_side)

            bridged = bridge_scale_gaps(full, pms, load_image, ext, (camera.width, camera.height),
                                        cfg.min_pair_inliers, cfg.sequential_overlap)
            refined = {}
            if cfg.refine_tracks:
                full, pms, refined = refine_keypoints(full, pms, load_image, cfg.min_pair_inliers)
            notify("matching", 1.0)
            notify("reconstruction", 0.0)
            with tempfile.TemporaryDirectory() as d:
                rec = reconstruct(Path(d), camera, names, full, pms, cfg.min_pair_inliers, cfg.threads, cfg.seed)
            _save_reconstruction(rec, tmp, "work/sfm")
            H = np.array([pm.H if pm.H is not None else np.full((3, 3), np.nan) for pm in pms])
            with open(tmp["work/pairs.npz"], "wb") as fh:
                np.savez(fh, i=np.array([pm.i for pm in pms]), j=np.array([pm.j for pm in pms]),
                         inliers=np.array([pm.inliers for pm in pms]), H=H)
            _write_json(tmp["work/bridged.json"], {"pairs": [{**b, "i": names[b["i"]], "j": names[b["j"]]}
                                                             for b in bridged], "tracks_refined": refined})
            notify("reconstruction", 1.0)

        sfm_params = {k: cfgp[k] for k in ("sequential_overlap", "loop_strides", "min_pair_inliers", "seed",
                                           "refine_tracks")}
        run.step("sfm", [*(f"work/sfm/{f}" for f in SFM_FILES), "work/pairs.npz", "work/bridged.json"], make_sfm,
                 params=sfm_params,
                 reads=["work/features.npz"])

        # 3b. a DEM given as the map: rendered under the descent's Sun (each candidate azimuth when not given) --
        candidates = []
        if dom is None:
            from selenite.locate.demmap import DEFAULT_SUN_ELEVATION, SUN_AZIMUTHS, render_dem_map

            el = sun["elevation_deg"] if sun["elevation_deg"] is not None else DEFAULT_SUN_ELEVATION
            azs = [sun["azimuth_deg"] % 360.0] if sun["azimuth_deg"] is not None else list(SUN_AZIMUTHS)
            candidates = [(float(a), f"work/map/sun_az{a:05.1f}.tif") for a in azs]

            def make_maps(tmp):
                rendered = []
                for k, (a, f) in enumerate(candidates):
                    notify("map from DEM", k / len(candidates))
                    rendered.append({"file": f, **render_dem_map(dom_path, tmp[f], a, el)})
                _write_json(tmp["work/map/maps.json"], {"maps": rendered, "elevation_given": sun["elevation_deg"]
                                                        is not None, "azimuth_given": sun["azimuth_deg"]
                                                        is not None})

            run.step("map", ["work/map/maps.json", *(f for _, f in candidates)], make_maps,
                     params={"sun": sun})
            dom = Dom.open(run.path(candidates[0][1]))

        # 4. geometry: vertical, altitudes, keyframes --------------------------------------------------------
        from selenite.locate import solve

        run.step("geometry", ["work/geometry.json"],
                 lambda tmp: _write_json(tmp["work/geometry.json"],
                                         solve.geometry(_load_reconstruction(run.path("work/sfm")), names, finfo,
                                                        camera, dom, cfg)),
                 params={k: cfgp[k] for k in ("vertical_frames", "start_altitude_m", "keyframes", "max_side")},
                 reads=[f"work/sfm/{f}" for f in SFM_FILES])

        # 5. map search --------------------------------------------------------------------------------------
        def make_search(tmp):
            geo = _read_json(run.path("work/geometry.json"))
            rec = _load_reconstruction(run.path("work/sfm"))
            if not candidates:
                _write_json(tmp["search.json"], solve.search(rec, geo, paths, camera, dom, cfg, notify))
                return
            # one search per Sun azimuth: the one whose best place is supported most is the descent's Sun
            tried, results = [], []
            for a, f in candidates:
                try:
                    res = solve.search(rec, geo, paths, camera, Dom.open(run.path(f)), cfg, notify)
                except InputError as exc:
                    tried.append({"azimuth_deg": a, "support": None, "error": str(exc)})
                    continue
                tried.append({"azimuth_deg": a, "support": res["best"]["support"], "peak_ratio": res["peak_ratio"]})
                results.append((res["best"]["support"], a, f, res))
            if not results:
                raise InputError(f"{tried[0]['error']} (the DEM rendered under {len(tried)} Sun azimuth"
                                 f"{'s' if len(tried) > 1 else ''}: none)")
            support, a, f, res = max(results, key=lambda r: r[0])
            res["map_from_dem"] = {"file": f, "dem": sun["dem"], "sun_azimuth_deg": a, "sun_elevation_deg": el,
                                   "azimuth_estimated": sun["azimuth_deg"] is None,
                                   "elevation_given": sun["elevation_deg"] is not None, "candidates": tried}
            _write_json(tmp["search.json"], res)

        run.step("search", ["search.json"], make_search,
                 params={k: cfgp[k] for k in ("rotations", "search_max_pixels", "search_tile", "template_min_side",
                                              "dom_keypoints_per_mpx", "min_map_inliers", "min_peak_ratio",
                                              "altitude_search_m")},
                 reads=["work/geometry.json", "work/sfm/images.bin", *(["work/map/maps.json"] if candidates else [])])
        if candidates:
            dom = Dom.open(run.path(_read_json(run.path("search.json"))["map_from_dem"]["file"]))

        # 6. coarse fix (homography chain) ----------------------------------------------------------------------
        def make_coarse(tmp):
            geo = _read_json(run.path("work/geometry.json"))
            s = _read_json(run.path("search.json"))
            _write_json(tmp["work/coarse.json"], solve.coarse(geo, s, dict(np.load(run.path("work/pairs.npz"))),
                                                              names, camera, dom))

        run.step("coarse", ["work/coarse.json"], make_coarse, reads=["search.json", "work/pairs.npz"])

        # 7. fine fix ---------------------------------------------------------------------------------------------
        def make_fine(tmp):
            geo = _read_json(run.path("work/geometry.json"))
            s = _read_json(run.path("search.json"))
            feats = _load_features(run.path("work/features.npz"))
            rec0 = _load_reconstruction(run.path("work/sfm"))
            try:
                res, rec = solve.fine(rec0, geo, s, feats, paths, finfo, camera, dom, cfg, notify)
            except RunError as exc:
                # a fix exists (the map search found the descent): keep it, say what limited it — unless the
                # search's place is too weakly supported to stand without the fine step's confirmation
                support = float(s.get("best", {}).get("support", 0.0))
                if support < cfg.unconfirmed_min_support * cfg.min_map_inliers:
                    raise no_overlap_error(int(support), s.get("peak_ratio"),
                                           f"and no tie point confirmed it ({exc})") from None
                log.warning("fine step: %s; the coarse fix is reported", exc)
                res, rec = solve.unrefined(rec0, geo, s, cfg, str(exc))
            _save_reconstruction(rec, tmp, "work/sfm_fine")
            _write_json(tmp["work/fine.json"], res)

        run.step("fine", ["work/fine.json", *(f"work/sfm_fine/{f}" for f in SFM_FILES)], make_fine,
                 params={k: cfgp[k] for k in ("tie_gsd_ratio", "tie_frames", "bootstrap", "direct_target_ratio",
                                              "unconfirmed_min_support", "min_map_inliers",
                                              "direct_min_side", "direct_max_ratio", "direct_sys_rms",
                                              "direct_margin", "direct_max_frames", "direct_window")},
                 reads=["search.json", "work/coarse.json"])

        # 8. outputs ------------------------------------------------------------------------------------------------
        from selenite.locate import outputs

        outs = ["landing.json", "trajectory.csv", "trajectory.geojson", "maneuvers.json", "poses.json",
                "phases.json", "trajectory.png", "map_fix.png", "report.html"]
        run.step("outputs", outs,
                 lambda tmp: outputs.write_outputs(tmp, run.root, names, finfo, camera, dom, cfg,
                                                   _load_reconstruction(run.path("work/sfm_fine")), times),
                 params={"times": times}, reads=["work/fine.json", "work/coarse.json", "frames.json"])
    return out / "landing.json"
