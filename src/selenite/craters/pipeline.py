"""``selenite craters detect|evaluate``: files in, files out.

Inputs: a DEM (GeoTIFF/PDS3, heights) or an optical image (PNG/JPEG/TIFF, 8 or 16 bit, grey or colour). The
content decides, not the name: a file that neither rasterio nor the image readers can open is refused.
Outputs are written beside each other atomically (temporary names renamed at the end): the crater CSV, an
overlay PNG and a JSON sidecar with the settings, the weights used and their card.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from selenite.craters.catalog import read_craters, write_craters
from selenite.craters.detect import DetectSettings, detect_array
from selenite.craters.metrics import common_frame, object_scores, pixel_scores
from selenite.craters.net import default_weights, load_weights
from selenite.errors import InputError

MAX_PIXELS = 2_000_000_000


def read_image(path: str | Path) -> tuple[np.ndarray, object | None]:
    """Grey float32 image and, for a georeferenced TIFF in a lunar CRS, its RasterInfo."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    info = None
    arr = None
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        try:
            from selenite.geo.raster import read_raster
            arr, info = read_raster(path, require_crs=False)
            if info.crs is None:
                info = None
        except InputError:
            arr = None
    if arr is None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im.load()
                if im.mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr"):
                    im = im.convert("L")
                arr = np.asarray(im)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InputError(f"{path}: not an image this reads (PNG, JPEG, TIFF): {exc}") from None
        if arr.dtype == bool or arr.dtype.kind not in "uif":
            raise InputError(f"{path}: unsupported pixel type {arr.dtype} (use 8- or 16-bit grey or colour)")
    arr = np.asarray(arr, np.float32)
    if arr.ndim != 2 or min(arr.shape) < 16:
        raise InputError(f"{path}: the image is empty or too small ({'×'.join(map(str, arr.shape))} px; "
                         "need at least 16×16)")
    if arr.size > MAX_PIXELS:
        raise InputError(f"{path}: {arr.size} px is more than this reads at once ({MAX_PIXELS})")
    if not np.isfinite(arr).any() or np.nanmax(arr) == np.nanmin(arr):
        raise InputError(f"{path}: the image holds no signal (constant or all nodata)")
    return arr, info


def read_dem_input(path: str | Path, need_crs: bool) -> tuple[np.ndarray, object | None]:
    """DEM heights and, when it has a lunar CRS, its RasterInfo (else None: pixel output only)."""
    from selenite.geo.crs import is_lunar
    from selenite.geo.raster import read_dem

    arr, info = read_dem(path, require_crs=False)
    if not is_lunar(info.crs):
        if need_crs:
            raise InputError(f"{path}: the DEM has no lunar CRS, so lon/lat cannot be given "
                             f"(drop --lonlat for pixel output)")
        info = None
    arr = np.asarray(arr, np.float32)
    if not np.isfinite(arr).any():
        raise InputError(f"{path}: the DEM is all nodata")
    if min(arr.shape) < 16:
        raise InputError(f"{path}: the DEM is too small ({arr.shape[1]}×{arr.shape[0]} px)")
    return arr, info


def _tmp(path: Path) -> Path:
    """A hidden temporary name beside ``path`` with the same suffix (writers pick the format from it)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def overlay_png(path: Path, array: np.ndarray, kind: str, craters: pd.DataFrame) -> None:
    """The input (hillshade for a DEM) with the detected rims drawn in red."""
    import cv2

    a = np.nan_to_num(array, nan=float(np.nanmedian(array)))
    if kind == "dem":
        gy, gx = np.gradient(a)
        s = np.std(np.hypot(gx, gy)) or 1.0
        a = np.clip(0.5 + (gx - gy) / (4 * s), 0, 1) * 255
    else:
        lo, hi = np.percentile(a, [0.5, 99.5])
        a = np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1) * 255
    img = cv2.cvtColor(a.astype(np.uint8), cv2.COLOR_GRAY2BGR)
    th = max(1, int(round(min(a.shape) / 1500)))
    for r in craters.itertuples():
        cv2.circle(img, (int(round(r.x_px * 4)), int(round(r.y_px * 4))), int(round(r.diameter_px * 2)),
                   (0, 0, 255), th, lineType=cv2.LINE_AA, shift=2)
    if not cv2.imwrite(str(path), img):
        raise InputError(f"{path}: cannot write the overlay PNG")


def detect_file(*, dem: Path | None, image: Path | None, out: Path, gsd: float | None = None,
                weights: Path | None = None, lonlat: bool = False, tta: bool | None = None,
                threshold: float | None = None, min_diameter_px: float | None = None,
                max_diameter_px: float | None = None, overlay: Path | None = None, notify=None) -> dict:
    if (dem is None) == (image is None):
        raise InputError("give exactly one of --dem or --image")
    if gsd is not None and not gsd > 0:
        raise InputError("--gsd must be a positive number of metres per pixel")
    kind = "dem" if dem is not None else "image"
    src = dem if dem is not None else image
    if kind == "dem":
        array, info = read_dem_input(src, lonlat)
    else:
        array, info = read_image(src)
        if lonlat and info is None:
            raise InputError(f"{src}: the image is not georeferenced in a lunar CRS, so lon/lat cannot be given")
    wpath = Path(weights) if weights else default_weights(kind)
    model, card = load_weights(wpath, kind)
    meta = card["meta"]
    settings = DetectSettings(
        threshold=float(meta["threshold"] if threshold is None else threshold),
        min_diameter_px=float(meta.get("min_diameter_px", 4.0) if min_diameter_px is None else min_diameter_px),
        max_diameter_px=max_diameter_px, tta=(kind == "image") if tta is None else tta)
    craters, _ = detect_array(model, kind, array, settings, notify=notify)
    if info is not None:
        lon, lat = info.pixel_to_lonlat(craters.x_px.to_numpy(), craters.y_px.to_numpy())
        craters["lon"], craters["lat"] = np.asarray(lon, float), np.asarray(lat, float)
        px = float(np.sqrt(abs(info.transform.a * info.transform.e - info.transform.b * info.transform.d)))
        craters["diameter_m"] = craters.diameter_px * (gsd or px)
    elif gsd is not None:
        craters["diameter_m"] = craters.diameter_px * gsd
    out = Path(out)
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give the CSV file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    overlay = Path(overlay) if overlay else out.with_name(out.stem + "_overlay.png")
    sidecar = out.with_name(out.stem + ".json")
    report = out.with_name(out.stem + "_report.html")
    record = {"input": str(src), "kind": kind, "shape": list(array.shape), "n_craters": int(len(craters)),
              "settings": asdict(settings), "weights": str(wpath), "weights_card": meta,
              "georeferenced": info is not None, "gsd_m": gsd}
    tmps = [_tmp(p) for p in (out, overlay, sidecar, report)]
    try:
        write_craters(tmps[0], craters)
        overlay_png(tmps[1], array, kind, craters)
        tmps[2].write_text(json.dumps(record, indent=1, default=str))
        _write_report(tmps[3], record, craters, tmps[1])
        for t, p in zip(tmps, (out, overlay, sidecar, report), strict=True):
            os.replace(t, p)
    finally:
        for t in tmps:
            t.unlink(missing_ok=True)
    record["outputs"] = [str(out), str(overlay), str(sidecar), str(report)]
    return record


def _write_report(path: Path, record: dict, craters: pd.DataFrame, overlay: Path) -> None:
    """The detection as a self-contained report.html: settings, the overlay and the size range."""
    from selenite.report.html import Section, png_data_uri, render_report

    d = craters["diameter_px"] if len(craters) else pd.Series(dtype=float)
    sec = Section("Crater detection", [
        f"{record['n_craters']} craters detected on {Path(record['input']).name} ({record['kind']}, "
        f"{record['shape'][1]} × {record['shape'][0]} px) with {Path(record['weights']).name}, threshold "
        f"{record['settings']['threshold']:.2f}, diameters from {record['settings']['min_diameter_px']:g} px"
        + (f"; detected diameters {d.min():.1f}–{d.max():.1f} px (median {d.median():.1f})." if len(d) else ".")])
    if "diameter_m" in craters and len(craters):
        sec.paragraphs.append(f"In metres: {craters['diameter_m'].min():.3g}–{craters['diameter_m'].max():.3g} m.")
    sec.figures.append((png_data_uri(Path(overlay).read_bytes()), "Detected rims in red."))
    Path(path).write_text(render_report("selenite — craters", [sec], subtitle=str(record["input"])))


def evaluate_files(detected: Path, truth: Path, *, min_diameter_px: float | None = None,
                   min_score: float | None = None) -> dict:
    det = read_craters(detected)
    tru = read_craters(truth)
    if min_score is not None and "score" in det:
        det = det[det.score >= min_score]
    frame = common_frame(det, tru)
    if min_diameter_px is not None and frame == "px":
        tru = tru[tru.diameter_px >= min_diameter_px]
        det = det[det.diameter_px >= min_diameter_px / 1.5]
    res = {"frame": frame, "objects": object_scores(det, tru, frame=frame).as_dict()}
    if frame == "px":
        res["pixels"] = pixel_scores(det, tru)
    return res


def format_evaluation(res: dict) -> str:
    o = res["objects"]
    unit = "px" if res["frame"] == "px" else "m"
    lines = [f"objects ({unit}): precision {o['precision']:.3f}  recall {o['recall']:.3f}  F1 {o['f1']:.3f}  "
             f"({o['n_matched']} matched of {o['n_detected']} detected, {o['n_truth']} true)",
             f"matched: median centre offset {o['position_error_median']:.3f} D, median |ΔD|/D "
             f"{o['diameter_error_median']:.3f}, median bias {o['diameter_bias_median']:+.3f}"]
    if "pixels" in res:
        p = res["pixels"]
        lines.append(f"rim pixels (1-px rings): IoU {p['rim_iou']:.3f}  precision {p['rim_precision']:.3f}  "
                     f"recall {p['rim_recall']:.3f}")
    return "\n".join(lines)
