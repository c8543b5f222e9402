"""Streamlit pieces every page uses: choosing a run (given with --run, or made live on the synthetic world),
running long work with a progress bar, showing a user's mistake as one line, cached raster reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import streamlit as st

from selenite.app import core
from selenite.errors import SeleniteError

LIVE = "synthetic world (run here)"
T = TypeVar("T")


def header(title: str, about: str) -> None:
    st.title(title)
    st.caption(about)


def work() -> Path:
    return core.work_root()


def run_with_progress(label: str, fn: Callable[..., T]) -> T | None:
    """Run ``fn(notify)`` with a progress bar; a user's mistake (SeleniteError) is shown as one line and gives
    None."""
    bar = st.progress(0.0, text=label)

    def notify(step: str, frac: float) -> None:
        bar.progress(float(min(max(frac, 0.0), 1.0)), text=f"{label} — {step}")

    try:
        out = fn(notify)
    except SeleniteError as exc:
        bar.empty()
        st.error(str(exc))
        return None
    bar.progress(1.0, text=f"{label} — done")
    return out


def choose_run(stage: str, live_label: str, live: Callable[..., Path], needs: tuple[str, ...] = (),
               key: str | None = None) -> Path | None:
    """A run folder of ``stage``: one given to the app, or the live run (made on demand,
    then kept: the run folder's own skip-if-done makes a second visit instant). A run lacking any of ``needs``
    stops the page with one line."""
    runs = core.discover(core.configured_runs()).get(stage, [])
    options = [str(r) for r in runs] + [LIVE]
    key = key or f"{stage}_run"
    choice = st.selectbox("Run", options, key=key,
                          help="Run folders given with `selenite app --run`, or a live run (the real south pole for "
                               "Sites and Terrain, the synthetic world for the stages after landing).")
    root = None
    if choice != LIVE:
        root = Path(choice)
    elif (done := st.session_state.get(f"{key}_live")) and Path(done).is_dir():
        root = Path(done)
    elif st.button(live_label, key=f"{key}_go", type="primary"):
        root = run_with_progress(live_label, lambda notify: live(work(), notify))
        if root is not None:
            st.session_state[f"{key}_live"] = str(root)
    if root is not None:
        need(root, needs)
    return root


def need(root: Path, names: tuple[str, ...]) -> None:
    """Stop the page with one line if the run folder lacks an output (a run still going, or one that failed)."""
    missing = [n for n in names if not (Path(root) / n).is_file()]
    if missing:
        st.warning(f"{root}: this run is incomplete (no {', '.join(missing)}); finish it, or choose another run.")
        st.stop()


@st.cache_data(show_spinner=False, max_entries=32)
def read_raster(path: str, mtime: float, side: int = 900) -> np.ndarray:
    """A raster's first band, thinned to at most ``side`` pixels a side (cached by path and time)."""
    import rasterio

    with rasterio.open(path) as src:
        step = max(1, int(np.ceil(max(src.width, src.height) / side)))
        a = src.read(1, out_shape=(max(1, src.height // step), max(1, src.width // step))).astype(np.float32)
        if src.nodata is not None:
            a[a == src.nodata] = np.nan
    return a


def raster(path: Path) -> np.ndarray:
    return read_raster(str(path), Path(path).stat().st_mtime)


def show_figure(fig) -> None:
    import matplotlib.pyplot as plt

    st.pyplot(fig, clear_figure=True)
    plt.close(fig)


def upload(label: str, key: str, allowed: tuple[str, ...] = ("png", "jpeg", "tiff")) -> Path | None:
    """A file uploader whose bytes are checked by content and stored in the session's upload folder."""
    f = st.file_uploader(label, key=key, type=None,
                         help=f"{' / '.join(a.upper() for a in allowed)}, at most "
                              f"{core.MAX_UPLOAD_BYTES // 2**20} MB; the type is read from the content.")
    if f is None:
        return None
    try:
        return core.save_upload(f.getvalue(), work() / "uploads", allowed)
    except SeleniteError as exc:
        st.error(str(exc))
        return None
