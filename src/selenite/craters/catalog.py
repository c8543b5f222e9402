"""Crater tables: selenite's detections CSV, and the truth formats it is scored against.

Detections (``selenite craters detect``): ``x_px, y_px, diameter_px, score`` and, when the input is
georeferenced or a GSD is given, ``lon, lat, diameter_m``.

Truth tables accepted by ``read_craters``:
- the same columns as the detections (pixels, or lon/lat with ``diameter_m`` / ``diameter_km``);
- labelled boxes ``ID, X, Y, W, H[, C_X, CY]`` (the LROC NAC crater sets; comma- or tab-separated): a box's
  left/top edge X, Y in pixel-corner coordinates becomes the centre ``X + W/2 − ½`` (our pixel-centre
  convention) and the diameter the mean of W and H;
- lon/lat catalogues with other spellings (Robbins ``LON_CIRC_IMG/LAT_CIRC_IMG/DIAM_CIRC_IMG``, DeepMoon
  ``Long/Lat/Diameter (km)``, ``Lon/Lat/Diam_km``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from selenite.errors import InputError

DETECTION_COLUMNS = ["x_px", "y_px", "diameter_px", "score"]

_LONLAT_SPELLINGS = [
    ("LON_CIRC_IMG", "LAT_CIRC_IMG", "DIAM_CIRC_IMG", 1000.0),
    ("Long", "Lat", "Diameter (km)", 1000.0),
    ("Lon", "Lat", "Diam_km", 1000.0),
    ("lon", "lat", "diameter_km", 1000.0),
    ("lon", "lat", "diameter_m", 1.0),
]


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: no such crater table")
    raw = path.read_bytes()[:4096]
    if not raw.strip():
        raise InputError(f"{path}: the crater table is empty")
    if b"\0" in raw:
        raise InputError(f"{path}: not a text table (binary content)")
    text = raw.decode("utf-8", "replace")
    terminator = "\r" if "\r" in text and "\n" not in text else None
    first = text.replace("\r", "\n").split("\n", 1)[0]
    try:
        sep = csv.Sniffer().sniff(first, delimiters=",\t;").delimiter
    except csv.Error:
        sep = ","
    try:
        df = pd.read_csv(path, sep=sep, lineterminator=terminator)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as a crater table ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_craters(path: str | Path) -> pd.DataFrame:
    """A crater table in any accepted format → a frame with ``x_px, y_px, diameter_px`` and/or
    ``lon, lat, diameter_m`` (plus ``score`` when present)."""
    path = Path(path)
    df = _read_table(path)
    out = pd.DataFrame(index=df.index)
    if {"x_px", "y_px", "diameter_px"} <= set(df.columns):
        for c in ("x_px", "y_px", "diameter_px"):
            out[c] = pd.to_numeric(df[c], errors="coerce")
    elif {"X", "Y", "W", "H"} <= set(df.columns):
        w, h = (pd.to_numeric(df[c], errors="coerce") for c in ("W", "H"))
        out["x_px"] = pd.to_numeric(df["X"], errors="coerce") + w / 2.0 - 0.5
        out["y_px"] = pd.to_numeric(df["Y"], errors="coerce") + h / 2.0 - 0.5
        out["diameter_px"] = (w + h) / 2.0
    for lon_c, lat_c, d_c, to_m in _LONLAT_SPELLINGS:
        if {lon_c, lat_c, d_c} <= set(df.columns):
            out["lon"] = (pd.to_numeric(df[lon_c], errors="coerce") + 180.0) % 360.0 - 180.0
            out["lat"] = pd.to_numeric(df[lat_c], errors="coerce")
            out["diameter_m"] = pd.to_numeric(df[d_c], errors="coerce") * to_m
            break
    if out.shape[1] == 0:
        raise InputError(f"{path}: no crater columns found (need x_px/y_px/diameter_px, X/Y/W/H boxes, "
                         f"or lon/lat with a diameter); columns are {list(df.columns)[:12]}")
    if "score" in df.columns:
        out["score"] = pd.to_numeric(df["score"], errors="coerce")
    bad = out.drop(columns=[c for c in ("score",) if c in out]).isna().any(axis=1)
    if "diameter_px" in out:
        bad |= ~(out["diameter_px"] > 0)
    if "diameter_m" in out:
        bad |= ~(out["diameter_m"] > 0)
    if bad.all() and len(out):
        raise InputError(f"{path}: no row has valid crater coordinates and a positive diameter")
    return out[~bad].reset_index(drop=True)


def write_craters(path: str | Path, craters: pd.DataFrame) -> None:
    cols = DETECTION_COLUMNS + [c for c in ("lon", "lat", "diameter_m", "level") if c in craters]
    craters[cols].to_csv(path, index=False, float_format="%.6g")


def empty_detections() -> pd.DataFrame:
    return pd.DataFrame({c: np.zeros(0) for c in DETECTION_COLUMNS})
