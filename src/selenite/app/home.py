"""The selenite web app: ``selenite app`` runs ``streamlit run`` on this file."""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent
st.set_page_config(page_title="selenite", layout="wide")   # no icon: icons would be fetched from a CDN


def overview() -> None:
    from selenite.app import core

    st.title("selenite")
    st.caption("From choosing a south-pole landing site to locating the lander from its descent camera and dating "
               "the surface it landed on. Every page works on the run folders given to `selenite app --run` or "
               "runs live on the synthetic world.")
    found = core.discover(core.configured_runs())
    if not found:
        st.info("No run folders were given (`selenite app --run DEMO_RUN`): each page can run its stage live on "
                "the synthetic world.")
    for stage, runs in sorted(found.items()):
        for r in runs:
            c = st.columns([3, 1])
            c[0].markdown(f"**{stage}** — `{r}`")
            if (r / "report.html").is_file():
                c[1].download_button("report.html", (r / "report.html").read_bytes(), f"{stage}_report.html",
                                     mime="text/html", key=f"report_{stage}_{r}")


pages = [st.Page(overview, title="Overview", default=True),
         st.Page(str(HERE / "pages" / "sites.py"), title="Sites"),
         st.Page(str(HERE / "pages" / "terrain.py"), title="Terrain"),
         st.Page(str(HERE / "pages" / "locate.py"), title="Locate"),
         st.Page(str(HERE / "pages" / "craters.py"), title="Craters"),
         st.Page(str(HERE / "pages" / "geology.py"), title="Geology"),
         st.Page(str(HERE / "pages" / "segment.py"), title="Segment")]
st.navigation(pages).run()
