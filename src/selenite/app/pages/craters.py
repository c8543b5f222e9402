"""Craters: detections on an uploaded image or DEM (or the synthetic world's orbital map), drawn on it."""

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from selenite.app import core, ui

ui.header("Craters", "The shipped crater detector (a U-Net of centre and size maps) on an optical image or a DEM: "
          "rims drawn on the input, the table of craters with diameters in pixels (and metres when georeferenced).")
kind = st.radio("Input", ["image", "DEM"], horizontal=True, key="craters_kind")
source = st.radio("Source", ["upload", "synthetic world's orbital map and DEM"], key="craters_source")
path = None
if source == "upload":
    path = ui.upload("Image (PNG/JPEG/TIFF)" if kind == "image" else "DEM (GeoTIFF)", key="craters_upload",
                     allowed=("png", "jpeg", "tiff") if kind == "image" else ("tiff",))
elif st.session_state.get("craters_world") or st.button("Use the synthetic world", key="craters_world_go"):
    world = ui.run_with_progress("Building the synthetic world", lambda n: core.synthetic_world(ui.work(), n))
    if world is not None:
        st.session_state["craters_world"] = str(world)
        path = world / ("orbital_map.tif" if kind == "image" else "dem.tif")
if path is not None:
    out = ui.work() / "craters" / hashlib.sha256(f"{path}:{kind}".encode()).hexdigest()[:12] / "craters.csv"
    if not out.exists():
        from selenite.craters.pipeline import detect_file

        ui.run_with_progress("detecting craters", lambda n: detect_file(
            dem=path if kind == "DEM" else None, image=path if kind == "image" else None, out=out, notify=n))
    if out.exists():
        cr = pd.read_csv(out)
        st.metric("craters detected", len(cr))
        st.image(str(out.with_name("craters_overlay.png")), caption=f"Detected rims on {Path(path).name}.")
        st.dataframe(cr, hide_index=True, key="craters_table")
