"""Geology: the located descent's count frame orthorectified (before / after), the craters counted on it, the
crater size-frequency distribution with isochrons and the model age, degradation classes and clasts."""

import json

import pandas as pd
import streamlit as st

from selenite.app import core, ui
from selenite.geology.report import format_age

ui.header("Surface geology", "Dating the landing site from the descent: ortho of the highest clear frame, GSD "
          "calibrated on the orbital map, craters counted in the footprint, Poisson and CSFD-fit model ages.")
root = ui.choose_run("geology", "Run the geology chain on the synthetic descent (locates it first)",
                     core.live_geology,
                     needs=("geology.json", "ortho_before_after.png", "craters_overlay.png"))
if root is not None:
    s = json.loads((root / "geology.json").read_text())
    d, g = s["date"], s["gsd"]
    m = st.columns(3)
    ages = d.get("ages", [])
    poisson = next((a for a in ages if a["method"].lower().startswith("poisson")), ages[0] if ages else None)
    m[0].metric("model age" + (f" ({poisson['method']})" if poisson else ""), format_age(poisson) if poisson else "—")
    m[1].metric("craters counted", f"{s['craters']['n']} in {d['area_km2']:.3g} km²")
    m[2].metric("GSD " + ("(calibrated on the map)" if g.get("calibrated") else "(from the pose)"),
                f"{g['used_gsd_m']:.3g} m/px")
    if not g.get("calibrated"):
        st.info(f"GSD not calibrated on the orbital map: {g['reason']}.")
    if "error" in d:
        st.warning(f"No model age: {d['error']}")
    tab1, tab2, tab3 = st.tabs(["Ortho and craters", "CSFD and ages", "Degradation and clasts"])
    with tab1:
        st.image(str(root / "ortho_before_after.png"), caption="The count frame as taken (left) and orthorectified.")
        st.image(str(root / "craters_overlay.png"), caption="Craters counted on the ortho.")
    with tab2:
        if (root / "csfd.png").is_file():
            st.image(str(root / "csfd.png"), caption="Cumulative and differential CSFD with isochrons.")
        if ages:
            st.dataframe(pd.DataFrame([{"method": a["method"], "model age": format_age(a), "N(1) km⁻²": a["n1_per_km2"],
                                        "craters": a["n"], "chronology": a["chronology_name"]} for a in ages]),
                         hide_index=True, key="geology_ages")
        for w in d.get("warnings", []) + g.get("warnings", []):
            st.warning(w)
    with tab3:
        for name, cap in (("degradation.png", "Basilevsky degradation class per crater."),
                          ("particles.png", "Clasts on the lowest clear frame."),
                          ("randomness.png", "Spatial randomness of the count.")):
            if (root / name).is_file():
                st.image(str(root / name), caption=cap)
    if (root / "report.html").is_file():
        st.download_button("Download report.html", (root / "report.html").read_bytes(), "geology_report.html",
                           mime="text/html", key="geology_report")
