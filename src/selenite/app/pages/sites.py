"""Sites: the score map over a hillshade with the Artemis regions and the top sites; a site's features and why."""

import json

import numpy as np
import pandas as pd
import streamlit as st

from selenite.app import core, ui

ui.header("Landing sites", "Cells of the south pole ranked by what a landing needs (the mission scorer: the share "
          "of landing times with a 6.5-day Sun + Earth stay, gated by slope, PSR reach and 6° from the pole) or by "
          "the learned model; the top sites and, for any of them, the inputs and Shapley contributions behind it.")
root = ui.choose_run("sites", "Rank sites on the real south pole (LOLA 240 m)", core.live_sites,
                     needs=("evaluation.json", "top_sites.csv", "cells.parquet", "figures/map.png"))
if root is not None:
    ev = json.loads((root / "evaluation.json").read_text())
    top = pd.read_csv(root / "top_sites.csv")
    mission = ev.get("scorer") == "mission"
    m = st.columns(3)
    if mission:
        m[0].metric("cells passing the gates", f"{ev['eligible_cells']:,} of {ev['cells']:,}")
        vpath = root / "validation.json"
        if vpath.exists():
            t10 = json.loads(vpath.read_text())["regions"]["top_n"].get("10")
            if t10:
                m[1].metric("Artemis III regions in the top 10", f"{t10['regions_matched']} · p = {t10['p_value']:.3f}",
                            help=f"Random rankings of the same cells match {t10['random_mean']:.2f} on average; p = "
                                 "the share of them that match as many.")
        st.caption("Mission scorer: " + ev["definition"]["score"] + ". Gates: "
                   + "; ".join(ev["definition"]["gates"].values()) + ". Nothing fitted; the Artemis regions and "
                   "published sites are only the test.")
    else:
        m[0].metric("labelled cells", f"{ev['labelled_cells']} ({ev['positives']} positive)")
        m[1].metric("spatial-CV AUC", f"{ev['spatial_cv'].get('auc', float('nan')):.3f}")
        st.caption(f"Learned scorer. Label: {ev['label']['kind']}. Spatial block cross-validation: cells of a "
                   "block are never scored by a model that saw the block.")
    m[2].metric("top sites", str(len(top)))
    st.image(str(root / "figures" / "map.png"), caption="Score over the hillshade; Artemis III regions in orange, "
             "top sites in red.")
    st.subheader("Top sites")
    event = st.dataframe(top, key="sites_table", on_select="rerun", selection_mode="single-row", hide_index=True)
    picked = event.selection.rows if event is not None and hasattr(event, "selection") else []
    ranks = top["rank"].tolist()
    rank = st.selectbox("Site (or click a row above)", ranks, index=picked[0] if picked else 0, key="sites_rank")
    site = top[top["rank"] == rank].iloc[0]
    cells = pd.read_parquet(root / "cells.parquet")
    row = cells[cells["cell_id"] == site["cell_id"]].iloc[0]
    features = [c[5:] for c in cells.columns if c.startswith("shap_") and c != "shap_bias"]
    unit = "score" if mission else "log-odds"
    shap_col = f"SHAP ({unit})"
    table = pd.DataFrame({"feature": features, "value": [row[f] for f in features],
                          shap_col: [row[f"shap_{f}"] for f in features]})
    table = table.reindex(table[shap_col].abs().sort_values(ascending=False).index)
    st.subheader(f"Site {rank}: {site['lat']:.3f}°, {site['lon']:.3f}° — score {site['score']:.3f}")
    if mission:
        st.caption(f"Base value {row['shap_bias']:+.3f} (the mean score of random cells) plus the exact Shapley "
                   "contributions below gives the site's score.")
    else:
        st.caption(f"Base value {row['shap_bias']:+.3f} log-odds plus the contributions below gives the model's "
                   "raw score; the calibrated probability is the score shown.")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = table.head(12)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(show) + 1))
    v = show[shap_col].to_numpy(float)
    ax.barh(range(len(show)), v, color=np.where(v >= 0, "tab:green", "tab:red"))
    ax.set_yticks(range(len(show)), show["feature"], fontsize=8)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel(f"SHAP contribution ({unit})")
    fig.tight_layout()
    ui.show_figure(fig)
    st.dataframe(table, hide_index=True, key="sites_features")
    if (root / "figures" / "shap_summary.png").is_file():
        with st.expander("SHAP summary over all cells"):
            st.image(str(root / "figures" / "shap_summary.png"))
