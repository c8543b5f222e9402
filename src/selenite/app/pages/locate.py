"""Locate: where the lander came down on the orbital map (coarse and fine fixes, σ-ellipse), the reconstructed
descent in 3-D, its manoeuvres and the ground sample distance of every frame."""

import json

import pandas as pd
import streamlit as st

from selenite.app import core, ui

ui.header("Descent localisation", "The descent images matched to the orbital map (DOM): a coarse fix from the best "
          "keyframe, a fine fix from the bundle-adjusted reconstruction, and its 1-σ ellipse.")
root = ui.choose_run("locate", "Locate the synthetic world's descent", core.live_locate,
                     needs=("landing.json", "trajectory.csv", "maneuvers.json", "map_fix.png"))
if root is not None:
    landing = json.loads((root / "landing.json").read_text())
    m = st.columns(4)
    if landing.get("lon") is not None:
        m[0].metric("landing latitude", f"{landing['lat']:.5f}°")
        m[1].metric("landing longitude", f"{landing['lon']:.5f}° E")
    else:
        m[0].metric("landing map column", f"{landing['dom_col']:.1f}")
        m[1].metric("landing map row", f"{landing['dom_row']:.1f}")
    unit = landing.get("units", "m")
    m[2].metric(f"σ (1-σ, {unit}; {landing.get('level', 'fine')} fix)",
                "unknown" if landing["sigma_m"] is None else f"{landing['sigma_m']:.2f}")
    m[3].metric("frames reconstructed", f"{landing.get('frames_reconstructed', '—')} / {landing['frames_total']}")
    ell = landing.get("sigma_ellipse_m")
    st.image(str(root / "map_fix.png"), caption="The DOM around the landing: coarse fix, fine fix and the σ-ellipse"
             + (f" (σ east {ell['east']:.2f} {unit}, north {ell['north']:.2f} {unit})." if ell else "."))
    if landing.get("limited_by"):
        st.warning(f"Fix level {landing['level']}: limited by the {landing['limited_by']}.")
    traj = pd.read_csv(root / "trajectory.csv")
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Trajectory (3-D)")
        azim = st.slider("View azimuth (°)", 0, 360, 225, 15, key="locate_azim")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(5, 4.5))
        ax = fig.add_subplot(projection="3d")
        ax.plot(traj["x"] - traj["x"].iloc[-1], traj["y"] - traj["y"].iloc[-1], traj["z"], "-o", ms=2, lw=1)
        ax.scatter([0], [0], [0], color="red", s=30, label="landing")
        ax.set_xlabel("east (m)")
        ax.set_ylabel("north (m)")
        ax.set_zlabel("height (m)")
        ax.view_init(elev=25, azim=azim)
        ax.legend(fontsize=8)
        ui.show_figure(fig)
    with c2:
        st.subheader("Ground sample distance per frame")
        st.line_chart(traj.set_index("frame")[["gsd_m"]], x_label="frame", y_label="nadir GSD (m/px)")
        st.line_chart(traj.set_index("frame")[["altitude_m"]], x_label="frame", y_label="altitude (m)")
    st.subheader("Manoeuvres")
    man = json.loads((root / "maneuvers.json").read_text())

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = [{"manoeuvre": k.replace("_", " "), "details": "; ".join(f"{kk.replace('_', ' ')} {fmt(vv)}"
                                                                    for kk, vv in v.items())}
            for k, v in man.items() if isinstance(v, dict)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="locate_maneuvers")
    st.caption(f"{man.get('frames', '?')} frames reconstructed; total heading change "
               f"{man.get('heading_total_change_deg', float('nan')):.1f}°.")
    if (root / "trajectory.png").is_file():
        with st.expander("Trajectory figure of the run"):
            st.image(str(root / "trajectory.png"))
