"""``selenite geology analyze``: the whole geology chain on a located descent, into one run folder.

1. **frames** — every posed frame's height above the landing plane, nadir GSD (height / focal length) and view
   tilt; the *count frame* (default: the highest clear frame, which sees the most ground) and the *rock frame*
   (default: the lowest clear frame, the finest GSD) are chosen.
2. **ortho** — both frames orthorectified (plane or ``--dem``) at their nadir GSD; a before/after figure.
3. **gsd** — the count ortho's scale calibrated against the orbital map: SIFT matches between the ortho and
   the map crop under its footprint, a RANSAC similarity, then the least-squares GSD with leave-one-out residuals
   (``geology gsd``). The ratio calibrated / nominal rescales crater diameters and the counted area; where the
   map cannot be matched the nominal GSD is used and the record says so.
4. **craters** — on the count ortho with the shipped image weights (or a given count clipped to the footprint);
   only craters whose centre lies in the valid footprint count.
5. **date** — the count written as a craterstats ``.scc`` (footprint outline as the area polygon) and dated
   (Poisson, cumulative and differential fits), with its CSFD plot; **randomness** of its spatial distribution.
6. **degradation** — Basilevsky class per crater from ``--dem`` profiles, or from image profiles of the count
   ortho when the Sun's direction is known.
7. **particles** — bright clasts on the rock ortho in real units.
8. **report** — ``geology.json`` and ``report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from selenite.errors import InputError
from selenite.geology.frames import FramePose, ortho_grey, ortho_of, ortho_summary, pose_from_record, read_frame
from selenite.runs import Run, canonical_json, load_json_object

Notify = Callable[[str, float], None]


# ---------------------------------------------------------------------------------------------------------
# the descent: where its poses, frames and map are
# ---------------------------------------------------------------------------------------------------------
class Descent:
    """Poses of a located descent: a ``selenite locate`` run, or a pose file (a run's ``poses.json`` or a
    synthetic world's ``truth.json``) with its frames folder and, optionally, the orbital map."""

    def __init__(self, run: str | Path | None = None, poses: str | Path | None = None,
                 frames_dir: str | Path | None = None, map_path: str | Path | None = None):
        if (run is None) == (poses is None):
            raise InputError("give exactly one of --run LOCATE_RUN or --poses POSES.json")
        self.run = Path(run) if run is not None else None
        self.obscured: set[int] = set()
        if self.run is not None:
            if not self.run.is_dir():
                raise InputError(f"{self.run}: no such locate run folder")
            self.poses_path = self.run / "poses.json"
            self.data = load_json_object(self.poses_path, "poses.json in the locate run (re-run `selenite locate "
                                                          "run` to write it)")
            params = load_json_object(self.run / "manifest.json", "manifest.json in the locate run").get("params",
                                                                                                       {})
            self.frames_dir = Path(frames_dir) if frames_dir else Path(params.get("frames_dir", self.run))
            self.map_path = Path(map_path) if map_path else (Path(params["dom"]) if params.get("dom") else None)
            finfo = self.run / "frames.json"
            if finfo.is_file():
                self.obscured = {int(f["index"]) for f in json.loads(finfo.read_text())["frames"] if f["obscured"]}
        else:
            self.poses_path = Path(poses)
            self.data = load_json_object(self.poses_path, "pose file")
            self.frames_dir = Path(frames_dir) if frames_dir else self.poses_path.parent
            self.map_path = Path(map_path) if map_path else None
            self.obscured = {int(f.get("frame", f.get("index"))) for f in self.data.get("frames", [])
                             if f.get("obscured")}
        if not isinstance(self.data.get("frames"), list) or not self.data["frames"]:
            raise InputError(f"{self.poses_path}: holds no posed frames")
        if self.map_path is not None and not self.map_path.is_file():
            raise InputError(f"{self.map_path}: no such orbital map")
        self.indices = sorted(int(f.get("frame", f.get("index"))) for f in self.data["frames"])
        self.sun = self.data.get("sun")

    def pose(self, index: int) -> FramePose:
        """The frame's pose from the file loaded once (not re-read per frame)."""
        rec = next(f for f in self.data["frames"] if int(f.get("frame", f.get("index"))) == index)
        return pose_from_record(self.data, rec, self.frames_dir / rec["file"] if "file" in rec else None, index)

    def table(self) -> list[dict]:
        rows = []
        for i in self.indices:
            fp = self.pose(i)
            C = fp.pose.center
            h = float(np.dot(C - fp.ground_point, fp.normal))
            tilt = float(np.degrees(np.arccos(np.clip(-fp.pose.R[2] @ fp.normal, -1, 1))))
            rows.append({"frame": i, "file": fp.frame.name, "height_m": h,
                         "nadir_gsd_m": h / fp.pose.camera.fx, "view_tilt_deg": tilt, "obscured": i in self.obscured})
        return rows


def nice_gsd(g: float) -> float:
    """The nadir GSD rounded to two significant figures (an ortho grid a person can read)."""
    return float(f"{g:.2g}")


def choose_frames(table: list[dict], count_frame: int | None, rock_frame: int | None) -> tuple[int, int]:
    have = {r["frame"]: r for r in table}
    for k, what in ((count_frame, "--count-frame"), (rock_frame, "--rock-frame")):
        if k is not None and k not in have:
            raise InputError(f"{what} {k} is not among the {len(have)} posed frames ({min(have)}–{max(have)})")
    clear = [r for r in table if not r["obscured"] and r["height_m"] > 0] or table
    c = count_frame if count_frame is not None else max(clear, key=lambda r: r["height_m"])["frame"]
    r = rock_frame if rock_frame is not None else min(clear, key=lambda r: r["height_m"])["frame"]
    return c, r


# ---------------------------------------------------------------------------------------------------------
# footprint outline, lon/lat, and the count as a craterstats .scc
# ---------------------------------------------------------------------------------------------------------
def footprint_rings(valid: np.ndarray, transform, crs_wkt: str, simplify_px: float = 1.0) -> list[dict]:
    """Outline of the valid footprint as lon/lat rings (``ext`` outer boundaries, ``int`` holes)."""
    from selenite.geo.crs import map_to_lonlat

    m = valid.astype(np.uint8)
    contours, hier = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    rings = []
    for k, c in enumerate(contours):
        if cv2.contourArea(c) < 4:
            continue
        c = cv2.approxPolyDP(c, simplify_px, True).reshape(-1, 2).astype(float)
        x, y = transform * (c[:, 0] + 0.5, c[:, 1] + 0.5)
        lon, lat = map_to_lonlat(crs_wkt, np.asarray(x), np.asarray(y))
        pts = np.column_stack([lon, lat])
        pts = np.vstack([pts, pts[:1]])
        rings.append({"sub_area": 1, "tag": "int" if hier[0][k][3] >= 0 else "ext", "lonlat": pts})
    return rings


def write_scc(path: Path, diameters_km: np.ndarray, lon: np.ndarray, lat: np.ndarray, area_km2: float,
              rings: list[dict], perimeter_km: float | None = None, note: str = "") -> None:
    """A craterstats-style spatial crater count (.scc): area polygon, Total_area and the crater table."""
    lines = ["# Spatial crater count", "#", f"# {note}" if note else "#", "#", "# Ellipsoid axes: ",
             "a-axis radius = 1737.4 <km>", "b-axis radius = 1737.4 <km>", "c-axis radius = 1737.4 <km>", "#",
             "# area_shapes:", "unit_boundary = {vertex, sub_area, tag, lon, lat", "#",
             f"# Area_size 1 = {area_km2:.10g} <km^2>", "#"]
    v = 0
    for sub, ring in enumerate(rings, start=1):
        for lo, la in ring["lonlat"]:
            v += 1
            lines.append(f"{v}\t{sub}\t{ring['tag']}\t{lo:.11f}\t{la:.11f}")
    lines += ["}", "#", f"Total_area = {area_km2:.10g} <km^2>"]
    if perimeter_km is not None:
        lines.append(f"Total_perimeter = {perimeter_km:.10g} <km>")
    lines += ["#", "# crater_diameters:", "crater = {diam, fraction, lon, lat, topo_scale_factor"]
    lines += [f"{d:.10f}\t1\t{lo:.10f}\t{la:.10f}\t1" for d, lo, la in zip(diameters_km, lon, lat, strict=True)]
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------------------
# GSD calibration against the orbital map
# ---------------------------------------------------------------------------------------------------------
def _u8(a: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    a = a.astype(np.float32)
    sel = a[mask] if mask is not None else a[np.isfinite(a)]
    if sel.size == 0:
        return np.zeros(a.shape, np.uint8)
    lo, hi = np.percentile(sel, [1, 99])
    return np.clip((a - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)


def map_control_points(ortho: np.ndarray, valid: np.ndarray, transform, crs_wkt: str, map_path: Path,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Control points (ortho px, map metres in the map's CRS) from SIFT matches of the ortho on the orbital map
    crop under its footprint, kept by a RANSAC similarity (3 map px)."""
    import rasterio
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    from selenite.geo.raster import open_raster

    with open_raster(map_path) as ds:
        b = transform_bounds(rasterio.crs.CRS.from_wkt(crs_wkt), ds.crs, *rasterio.transform.array_bounds(
            valid.shape[0], valid.shape[1], transform))
        map_px = float(np.sqrt(abs(ds.transform.a * ds.transform.e - ds.transform.b * ds.transform.d)))
        pad = 8 * map_px
        win = from_bounds(b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad, ds.transform)
        win = win.round_offsets().round_lengths().intersection(Window(0, 0, ds.width, ds.height))
        crop = ds.read(1, window=win).astype(np.float32)
        ct = ds.window_transform(win)
    s = abs(transform.a) / map_px                     # ortho → map pixel scale (nominal)
    img = ortho if ortho.ndim == 2 else ortho.mean(axis=0)
    img_s = cv2.resize(img.astype(np.float32), None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    v_s = cv2.resize(valid.astype(np.uint8), (img_s.shape[1], img_s.shape[0]), interpolation=cv2.INTER_NEAREST)
    v_s = cv2.erode(v_s, np.ones((5, 5), np.uint8))
    cv2.setRNGSeed(seed)
    sift = cv2.SIFT_create(4000)
    k1, d1 = sift.detectAndCompute(_u8(img_s, v_s > 0), v_s * 255)
    k2, d2 = sift.detectAndCompute(_u8(crop), None)
    info = {"map": str(map_path), "map_pixel_m": map_px, "keypoints": [len(k1), len(k2)], "matches": 0,
            "inliers": 0}
    if d1 is None or d2 is None or len(k1) < 5 or len(k2) < 5:
        return np.zeros((0, 2)), np.zeros((0, 2)), info
    pairs = cv2.BFMatcher().knnMatch(d1, d2, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    info["matches"] = len(good)
    if len(good) < 5:
        return np.zeros((0, 2)), np.zeros((0, 2)), info
    p1 = np.float32([k1[g.queryIdx].pt for g in good]) / s        # ortho px (scaled back)
    p2 = np.float32([k2[g.trainIdx].pt for g in good])
    M, inl = cv2.estimateAffinePartial2D(p1, p2, ransacReprojThreshold=3.0, maxIters=5000, confidence=0.999)
    if M is None:
        return np.zeros((0, 2)), np.zeros((0, 2)), info
    inl = inl.ravel().astype(bool)
    info["inliers"] = int(inl.sum())
    mx, my = ct * (p2[inl, 0], p2[inl, 1])
    return p1[inl].astype(float) - 0.5, np.column_stack([mx, my]).astype(float), info


def calibrate_on_map(ortho, valid, transform, crs_wkt, map_path: Path | None, nominal: float) -> dict:
    """GSD of the ortho from control points on the map; ``used_gsd_m`` is what the count uses."""
    from selenite.geology.gsd import MIN_POINTS, calibrate

    rec: dict = {"nominal_gsd_m": nominal, "calibrated": False}
    if map_path is None:
        rec.update(used_gsd_m=nominal, reason="no orbital map given: the nominal GSD (height / focal length) is "
                                              "used")
        return rec
    img_px, map_m, info = map_control_points(ortho, valid, transform, crs_wkt, map_path)
    rec["matching"] = info
    if len(img_px) < MIN_POINTS:
        rec.update(used_gsd_m=nominal, reason=f"only {len(img_px)} control points matched on the map (≥ "
                                              f"{MIN_POINTS} needed): the nominal GSD is used")
        return rec
    res = calibrate(img_px, map_m, max_residual_px=2.0)
    rec.update(calibrated=True, gsd_m=res["gsd_m"], gsd_sigma_m=res["gsd_sigma_m"], n_points=res["n_points"],
               rms_residual_px=res["rms_residual_px"], rotation_deg=res["rotation_deg"],
               flagged_points=len(res.get("flagged_points", [])))
    rec["ratio_to_nominal"] = res["gsd_m"] / nominal
    z = abs(res["gsd_m"] - nominal) / max(res["gsd_sigma_m"], 1e-12)
    rec["used_gsd_m"] = res["gsd_m"]
    rec["warnings"] = res["warnings"][:5]
    if z > 3 and abs(rec["ratio_to_nominal"] - 1) > 0.01:
        rec["warnings"].append(f"the calibrated GSD {res['gsd_m']:.4g} m differs from the pose's "
                               f"{nominal:.4g} m by {z:.1f}σ ({rec['ratio_to_nominal'] - 1:+.1%}): the pose's "
                               "height or the map's scale is off")
    return rec


# ---------------------------------------------------------------------------------------------------------
# craters on the count ortho
# ---------------------------------------------------------------------------------------------------------
def detect_on_ortho(ortho: np.ndarray, valid: np.ndarray, min_diameter_px: float, threshold: float | None,
                    notify: Notify | None = None) -> pd.DataFrame:
    """Craters on the ortho (shipped image weights, flip TTA); no-data filled with the valid median so that
    the footprint's edge is not a contrast step."""
    from selenite.craters.detect import DetectSettings, detect_array
    from selenite.craters.net import default_weights, load_weights

    img = ortho_grey(ortho).astype(np.float32)
    img = np.where(valid, img, float(np.median(img[valid])))
    model, card = load_weights(default_weights("image"), "image")
    meta = card["meta"]
    settings = DetectSettings(threshold=float(meta["threshold"] if threshold is None else threshold),
                              min_diameter_px=float(min_diameter_px), max_diameter_px=None, tta=True)
    craters, _ = detect_array(model, "image", img, settings, notify=notify)
    return craters


def inside(valid: np.ndarray, x_px, y_px, margin_px: int = 1) -> np.ndarray:
    """Centres (pixel centres at integers) inside the valid footprint shrunk by ``margin_px``."""
    v = cv2.erode(valid.astype(np.uint8), np.ones((2 * margin_px + 1,) * 2, np.uint8)) > 0 if margin_px else valid
    ci = np.round(np.asarray(x_px, float)).astype(int)
    ri = np.round(np.asarray(y_px, float)).astype(int)
    ok = (ci >= 0) & (ri >= 0) & (ci < v.shape[1]) & (ri < v.shape[0])
    out = np.zeros(ci.shape, bool)
    out[ok] = v[ri[ok], ci[ok]]
    return out


def given_craters_on_ortho(path: Path, transform, crs_wkt: str, shape) -> pd.DataFrame:
    """A user's crater file (lon/lat + diameter, or a .scc with positions) as ortho pixels."""
    from selenite.geo.crs import as_crs
    from selenite.geo.raster import RasterInfo
    from selenite.geology.degradation import craters_on_raster

    info = RasterInfo(as_crs(crs_wkt), transform, shape[1], shape[0])
    cr = craters_on_raster(path, info, require_lonlat=True)
    return pd.DataFrame({"x_px": cr["col"], "y_px": cr["row"], "diameter_px": cr["diameter_m"] / abs(transform.a),
                         "score": np.nan})


# ---------------------------------------------------------------------------------------------------------
# the chain
# ---------------------------------------------------------------------------------------------------------
def _write_ortho_tif(path, data, crs_wkt, transform) -> None:
    from selenite.geo.raster import write_cog

    write_cog(path, data, crs=crs_wkt, transform=transform, nodata=0)


def _read_ortho(path) -> tuple[np.ndarray, np.ndarray, object, str]:
    from selenite.geo.raster import open_raster

    with open_raster(path) as ds:
        arr = ds.read()
        return arr, (arr != 0).any(axis=0), ds.transform, ds.crs.to_wkt()


def run_analyze(out: str | Path, *, run: str | Path | None = None, poses: str | Path | None = None,
                frames_dir: str | Path | None = None, map_path: str | Path | None = None,
                dem: str | Path | None = None, craters: str | Path | None = None,
                count_frame: int | None = None, rock_frame: int | None = None, chron: str = "neukum2001",
                d_range_m: tuple[float, float] | None = None, min_px: float = 10.0,
                threshold: float | None = None, trials: int = 300,
                sun: tuple[float, float] | None = None, force: bool = False,
                notify: Notify | None = None) -> Path:
    """The geology chain on a located descent → run folder with ``geology.json`` and ``report.html``."""
    from selenite.geology.csfd import CHRONOLOGIES

    if chron not in CHRONOLOGIES:
        raise InputError(f"unknown chronology {chron!r} (choose from: {', '.join(CHRONOLOGIES)})")
    if not min_px > 0:
        raise InputError(f"--min-px must be positive (got {min_px})")
    if d_range_m is not None and not 0 < d_range_m[0] < d_range_m[1]:
        raise InputError(f"--range must be 0 < DMIN < DMAX (got {d_range_m[0]:g} {d_range_m[1]:g})")
    if trials < 10:
        raise InputError(f"--trials must be at least 10 (got {trials})")
    for p, what in ((dem, "--dem"), (craters, "--craters")):
        if p is not None and not Path(p).is_file():
            raise InputError(f"{what} {p}: no such file")
    # inputs are recorded (and fingerprinted) by absolute path: the run folder may be anywhere
    dem, craters, map_path, poses, run, frames_dir = (Path(p).resolve() if p is not None else None for p in
                                                      (dem, craters, map_path, poses, run, frames_dir))
    desc = Descent(run, poses, frames_dir, map_path)
    table = desc.table()
    cf, rf = choose_frames(table, count_frame, rock_frame)
    sun_dir = sun if sun is not None else ((desc.sun["azimuth_deg"], desc.sun["elevation_deg"]) if desc.sun
                                           else None)
    out = Path(out)
    params = {"run": str(run) if run else None, "poses": str(poses) if poses else None,
              "frames_dir": str(desc.frames_dir), "map": str(desc.map_path) if desc.map_path else None,
              "dem": str(dem) if dem else None, "craters": str(craters) if craters else None,
              "count_frame": cf, "rock_frame": rf, "chronology": chron, "range_m": list(d_range_m or []),
              "min_px": min_px, "threshold": threshold, "trials": trials,
              "sun": list(sun_dir) if sun_dir else None}
    note = notify or (lambda step, frac: None)
    reads = [desc.poses_path] + ([desc.map_path] if desc.map_path else []) + ([Path(dem)] if dem else []) + (
        [Path(craters)] if craters else [])
    with Run(out, command="geology analyze", params=params, force=force) as run_:
        for p, role in zip(reads, ["poses", "map", "dem", "craters"][:len(reads)], strict=False):
            run_.add_input(p, role)

        # 1–2. frames and orthos --------------------------------------------------------------------------------
        def make_orthos(tmp):
            recs = {}
            for key, k in (("count", cf), ("rock", rf)):
                fp = desc.pose(k)
                img = read_frame(fp.frame, fp.pose.camera)
                row = next(r for r in table if r["frame"] == k)
                g = nice_gsd(row["nadir_gsd_m"])
                data, valid, transform, method, bounds = ortho_of(fp, img, g, dem)
                _write_ortho_tif(tmp[f"ortho_{key}.tif"], data, fp.crs_wkt, transform)
                recs[key] = ortho_summary(fp, f"ortho_{key}.tif", g, valid, method, bounds)
                recs[key]["area_km2"] = float(valid.sum()) * g * g / 1e6
                if key == "count":
                    from selenite.geology.plots import before_after_figure

                    before_after_figure(tmp["ortho_before_after.png"], img, data, valid, k, recs[key])
                note("ortho", 0.5 if key == "count" else 1.0)
            Path(tmp["frames.json"]).write_text(canonical_json({"frames": table, "count_frame": cf,
                                                                "rock_frame": rf, "orthos": recs}) + "\n")

        run_.step("ortho", ["frames.json", "ortho_count.tif", "ortho_rock.tif", "ortho_before_after.png"],
                  make_orthos, params={"count_frame": cf, "rock_frame": rf, "dem": params["dem"]},
                  reads=reads[:1] + ([Path(dem)] if dem else []))
        frames_rec = json.loads(run_.path("frames.json").read_text())

        # 3. GSD against the map -------------------------------------------------------------------------------
        def make_gsd(tmp):
            arr, valid, transform, crs = _read_ortho(run_.path("ortho_count.tif"))
            rec = calibrate_on_map(arr, valid, transform, crs, desc.map_path, frames_rec["orthos"]["count"]["gsd_m"])
            Path(tmp["gsd.json"]).write_text(canonical_json(rec) + "\n")
            note("gsd", 1.0)

        run_.step("gsd", ["gsd.json"], make_gsd, params={"map": params["map"]},
                  reads=["ortho_count.tif"] + ([desc.map_path] if desc.map_path else []))
        gsd_rec = json.loads(run_.path("gsd.json").read_text())

        # 4. craters --------------------------------------------------------------------------------------------
        def make_craters(tmp):
            from selenite.craters.pipeline import overlay_png
            from selenite.geo.crs import map_to_lonlat

            arr, valid, transform, crs = _read_ortho(run_.path("ortho_count.tif"))
            if craters is not None:
                df = given_craters_on_ortho(Path(craters), transform, crs, valid.shape)
                source = str(craters)
            else:
                df = detect_on_ortho(arr, valid, min_diameter_px=4.0, threshold=threshold,
                                     notify=lambda s, f: note("craters", f))
                source = "shipped image weights (craters_image.pt), flip TTA"
            df = df[inside(valid, df.x_px, df.y_px)].reset_index(drop=True)
            scale = gsd_rec["used_gsd_m"]
            x, y = transform * (df.x_px.to_numpy() + 0.5, df.y_px.to_numpy() + 0.5)
            lon, lat = map_to_lonlat(crs, np.asarray(x), np.asarray(y))
            df["lon"], df["lat"] = np.asarray(lon, float), np.asarray(lat, float)
            df["diameter_m"] = df.diameter_px * scale
            df.to_csv(tmp["craters.csv"], index=False, float_format="%.6g")
            view = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, 2)
            overlay_png(Path(tmp["craters_overlay.png"]), view, "image", df)
            Path(tmp["craters.json"]).write_text(canonical_json({"source": source, "n": len(df)}) + "\n")

        run_.step("craters", ["craters.csv", "craters_overlay.png", "craters.json"], make_craters,
                  params={"craters": params["craters"], "threshold": threshold},
                  reads=["ortho_count.tif", "gsd.json"] + ([Path(craters)] if craters else []))

        # 5. date and randomness --------------------------------------------------------------------------------
        def make_date(tmp):
            from selenite.geology.dating import date_count

            arr, valid, transform, crs = _read_ortho(run_.path("ortho_count.tif"))
            df = pd.read_csv(run_.path("craters.csv"))
            g_used = gsd_rec["used_gsd_m"]
            area_km2 = float(valid.sum()) * g_used**2 / 1e6
            rings = footprint_rings(valid, transform, crs)
            write_scc(Path(tmp["count.scc"]), df.diameter_m.to_numpy() / 1000, df.lon.to_numpy(), df.lat.to_numpy(),
                      area_km2, rings, note=f"selenite geology analyze: frame {cf}, ortho GSD {g_used:.4g} m")
            d_lo = max(min_px * g_used, d_range_m[0]) if d_range_m else min_px * g_used
            d_hi = d_range_m[1] if d_range_m else None
            rec = {"area_km2": area_km2, "gsd_m": g_used, "min_diameter_m": d_lo, "n_total": len(df)}
            in_range = df.diameter_m.to_numpy() >= d_lo
            if d_hi is not None:
                in_range &= df.diameter_m.to_numpy() <= d_hi
            if in_range.sum() < 2:
                rec["error"] = (f"{int(in_range.sum())} craters ≥ {d_lo:.3g} m in the count frame: too few to "
                                "date")
                _blank_png(tmp["csfd.png"], rec["error"])
            else:
                hi = d_hi if d_hi is not None else float(df.diameter_m[in_range].max()) * 1.0001
                try:
                    rec.update(date_count(tmp["count.scc"], (d_lo / 1000, hi / 1000), None, chron, fits=True,
                                          plot=tmp["csfd.png"]))
                except InputError as exc:
                    rec["error"] = str(exc)
                    _blank_png(tmp["csfd.png"], rec["error"])
                rec["craters"] = "count.scc"
                rec["plot"] = "csfd.png"          # the run's name, not the temporary one it was written to
            Path(tmp["date.json"]).write_text(canonical_json(rec) + "\n")
            note("date", 1.0)

        run_.step("date", ["count.scc", "date.json", "csfd.png"], make_date,
                  params={"chronology": chron, "range_m": params["range_m"], "min_px": min_px},
                  reads=["craters.csv", "ortho_count.tif", "gsd.json"])

        def make_randomness(tmp):
            from selenite.geology.dating import randomness_record

            df = pd.read_csv(run_.path("craters.csv"))
            if len(df) < 8:
                rec = {"skipped": f"{len(df)} craters in the count frame: randomness needs at least 8"}
                _blank_png(tmp["randomness.png"], rec["skipped"])
            else:
                rec = randomness_record(run_.path("count.scc"), trials=trials, seed=0, plot=tmp["randomness.png"],
                                        notify=lambda s, f: note("randomness", f))
                rec["craters"] = "count.scc"
                rec["plot"] = "randomness.png"
            Path(tmp["randomness.json"]).write_text(canonical_json(rec) + "\n")

        run_.step("randomness", ["randomness.json", "randomness.png"], make_randomness,
                  params={"trials": trials}, reads=["count.scc", "craters.csv"])

        # 6. degradation ----------------------------------------------------------------------------------------
        def make_degradation(tmp):
            from selenite.geology.degradation import degradation_file, degradation_image

            df = pd.read_csv(run_.path("craters.csv"))
            if len(df) == 0:
                rec = {"skipped": "no craters in the count frame"}
                pd.DataFrame().to_csv(tmp["degradation.csv"], index=False)
                _blank_png(tmp["degradation.png"], rec["skipped"])
            elif dem is not None:
                try:
                    rec = degradation_file(run_.path("craters.csv"), dem, tmp["degradation.csv"],
                                           tmp["degradation.png"])
                    rec["method"] = "dem"
                except InputError as exc:
                    rec = {"skipped": str(exc)}
                    pd.DataFrame().to_csv(tmp["degradation.csv"], index=False)
                    _blank_png(tmp["degradation.png"], rec["skipped"])
            elif sun_dir is not None:
                arr, valid, transform, crs = _read_ortho(run_.path("ortho_count.tif"))
                rec = degradation_image(arr, valid, df, gsd_rec["used_gsd_m"], sun_dir, tmp["degradation.csv"],
                                        tmp["degradation.png"])
                rec["method"] = "image"
            else:
                rec = {"skipped": "neither a DEM (--dem) nor the Sun's direction (--sun AZ EL) was given: image "
                                  "profiles need the Sun"}
                pd.DataFrame().to_csv(tmp["degradation.csv"], index=False)
                _blank_png(tmp["degradation.png"], rec["skipped"])
            for k in ("craters", "dem", "out", "plot"):
                rec.pop(k, None)
            Path(tmp["degradation.json"]).write_text(canonical_json(rec) + "\n")
            note("degradation", 1.0)

        run_.step("degradation", ["degradation.csv", "degradation.json", "degradation.png"], make_degradation,
                  params={"dem": params["dem"], "sun": params["sun"]},
                  reads=["craters.csv", "ortho_count.tif", "gsd.json"] + ([Path(dem)] if dem else []))

        # 7. particles ------------------------------------------------------------------------------------------
        def make_particles(tmp):
            from selenite.geology.particles import particles_on_ortho

            arr, valid, transform, crs = _read_ortho(run_.path("ortho_rock.tif"))
            g = frames_rec["orthos"]["rock"]["gsd_m"]
            rec = particles_on_ortho(arr, valid, g, tmp["particles.csv"], tmp["particles.png"])
            rec["frame"] = rf
            Path(tmp["particles.json"]).write_text(canonical_json(rec) + "\n")
            note("particles", 1.0)

        run_.step("particles", ["particles.csv", "particles.json", "particles.png"], make_particles,
                  reads=["ortho_rock.tif"])

        # 8. summary and report ---------------------------------------------------------------------------------
        def make_report(tmp):
            from selenite.geology.report import geology_section
            from selenite.report.html import write_report

            summary = summarize(run_.root)
            Path(tmp["geology.json"]).write_text(canonical_json(summary) + "\n")
            write_report(tmp["report.html"], "selenite — surface geology", [geology_section(run_.root, summary)],
                         subtitle=f"count frame {cf}, rock frame {rf}")

        run_.step("report", ["geology.json", "report.html"], make_report,
                  reads=["frames.json", "gsd.json", "date.json", "randomness.json", "degradation.json",
                         "particles.json", "craters.json"])
    return out / "geology.json"


def _blank_png(path, text: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6, 1.2))
    fig.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9)
    fig.savefig(path, dpi=80, format="png", metadata={"Software": None})
    plt.close(fig)


def summarize(root: Path) -> dict:
    """The chain's results in one record (what ``geology.json`` holds)."""
    def j(name):
        return json.loads((root / name).read_text())

    frames, gsd, date, rnd, deg, part, cr = (j(n) for n in ("frames.json", "gsd.json", "date.json",
                                                           "randomness.json", "degradation.json",
                                                           "particles.json", "craters.json"))
    out = {"count_frame": frames["count_frame"], "rock_frame": frames["rock_frame"],
           "orthos": frames["orthos"], "gsd": gsd, "craters": cr, "date": date,
           "randomness": {k: rnd[k] for k in rnd if k in ("skipped", "bins", "warnings", "area_km2_polygon")},
           "degradation": deg, "particles": {k: v for k, v in part.items() if k != "size_distribution"}}
    return out
