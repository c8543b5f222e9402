"""Segment: an uploaded surface image (or a rendered scene) labelled background / small rocks / large rocks / sky,
with the predictive entropy and mutual information that say where the network does not know."""

import hashlib
import json

import numpy as np
import streamlit as st
from PIL import Image

from selenite.app import ui
from selenite.segment.net import shipped_weights

ui.header("Terrain segmentation", "The shipped U-Net with Monte-Carlo dropout (or the deep ensemble): classes per "
          "pixel, predictive entropy (total uncertainty) and mutual information (what the network does not know).")
source = st.radio("Image", ["upload", "a rendered ground-level scene"], key="segment_source")
path = None
if source == "upload":
    path = ui.upload("Surface image (PNG/JPEG/TIFF, 8- or 16-bit)", key="segment_upload")
else:
    seed = st.number_input("Scene seed", 0, 10**6, 300_100, key="segment_seed")
    from selenite.synth.scenes import SceneSpec, render_scene

    img, _ = render_scene(int(seed), SceneSpec(size_px=256))
    path = ui.work() / "scenes" / f"scene_{int(seed)}.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
c = st.columns(3)
weights = {w.stem.replace("segment_", "").replace("_", " "): w for w in shipped_weights()}
wname = c[0].selectbox("Weights", list(weights), key="segment_weights",
                       help="unet dropout: one network; ensemble: several trained from different seeds, whose "
                            "disagreement adds to the mutual information (slower).")
tta = c[1].checkbox("4-flip TTA", value=False, key="segment_tta")
passes = c[2].slider("MC-dropout passes (per network)", 0, 40, 20, key="segment_passes")
if path is not None:
    key = f"{path}:{wname}:{tta}:{passes}"
    out = ui.work() / "segment" / hashlib.sha256(key.encode()).hexdigest()[:12]
    rec_path = out / f"{path.stem}.json"
    if not rec_path.exists():
        from selenite.segment.pipeline import predict_files

        ui.run_with_progress("segmenting", lambda n: predict_files([path], out, weights=weights[wname], tta=tta,
                                                                   mc_passes=passes, notify=n))
    if rec_path.exists():
        rec = json.loads(rec_path.read_text())
        m = st.columns(4)
        for i, (k, v) in enumerate(rec["coverage"].items()):
            m[i].metric(k.replace("_", " "), f"{100 * v:.1f} %")
        cols = st.columns(3 if "mean_mutual_information" in rec else 1)
        cols[0].image(str(out / f"{path.stem}_overlay.png"), caption="classes (background grey, small rocks "
                      "orange, large rocks red, sky blue)", width="stretch")
        if "mean_mutual_information" in rec:
            cols[1].image(str(out / f"{path.stem}_entropy.png"), width="stretch",
                          caption=f"predictive entropy (mean {rec['mean_entropy']:.3f} nats)")
            cols[2].image(str(out / f"{path.stem}_mutual_information.png"), width="stretch",
                          caption=f"mutual information (mean {rec['mean_mutual_information']:.4f} nats)")
            mi = np.load(out / f"{path.stem}_mutual_information.npy")
            st.caption(f"{100 * float((mi > 0.1).mean()):.1f} % of pixels have MI above 0.1 nats.")
        st.download_button("Download the class map (PNG)", (out / f"{path.stem}_classes.png").read_bytes(),
                           f"{path.stem}_classes.png", mime="image/png", key="segment_download")
