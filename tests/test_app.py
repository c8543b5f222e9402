"""The web app: uploads checked by content, run discovery, every page's logic through Streamlit's AppTest (live
runs on the synthetic world, then the same runs given as --run folders), and one end-to-end run in Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selenite.app import core
from selenite.errors import InputError

HOME = str(Path(core.__file__).with_name("home.py"))


def _png_bytes(tmp_path: Path) -> bytes:
    p = tmp_path / "x.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(p)
    return p.read_bytes()


def test_uploads_are_typed_by_content_and_stay_in_their_folder(tmp_path):
    folder = tmp_path / "uploads"
    png = _png_bytes(tmp_path)
    saved = core.save_upload(png, folder)
    assert saved.parent == folder and saved.suffix == ".png" and saved.read_bytes() == png
    assert core.save_upload(png, folder) == saved                 # same content, same file
    with pytest.raises(InputError, match="not PNG / JPEG / TIFF"):
        core.save_upload(b"<html>../../etc/passwd</html>", folder)   # a text file named .png is refused
    with pytest.raises(InputError, match="empty"):
        core.save_upload(b"", folder)
    with pytest.raises(InputError, match="limit"):
        core.save_upload(png + b"\0" * 2000, folder, max_bytes=1000)
    with pytest.raises(InputError, match="TIFF"):
        core.save_upload(png, folder, allowed=("tiff",))          # a DEM upload must be a TIFF
    assert sorted(p.name for p in folder.iterdir()) == [saved.name]


def test_run_discovery_by_manifest(tmp_path):
    demo = tmp_path / "demo"
    for sub, cmd in (("", "demo"), ("sites", "sites rank"), ("locate", "locate run"), ("misc", "bench x")):
        (demo / sub).mkdir(parents=True, exist_ok=True)
        (demo / sub / "manifest.json").write_text(json.dumps({"command": cmd}))
    (demo / "south_pole" / "light").mkdir(parents=True)
    (demo / "south_pole" / "manifest.json").write_text(json.dumps({"command": "south pole"}))
    (demo / "south_pole" / "light" / "manifest.json").write_text(json.dumps({"command": "terrain visibility"}))
    found = core.discover([demo])
    assert found == {"sites": [demo / "sites"], "locate": [demo / "locate"],
                     "terrain": [demo / "south_pole" / "light"]}
    assert core.check_runs([demo]) == [demo.resolve()]
    with pytest.raises(InputError, match="no selenite run"):
        core.check_runs([demo / "misc"])
    p = subprocess.run([sys.executable, "-m", "selenite", "app", "--run", str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no such run folder" in p.stderr


@pytest.fixture(scope="module")
def app_work(tmp_path_factory):
    """The app's work folder for this module (uploads and live runs); no --run folders at first."""
    work = tmp_path_factory.mktemp("app_work")
    old = {k: os.environ.get(k) for k in (core.WORK_ENV, core.RUNS_ENV, core.LIGHT_ENV)}
    os.environ[core.WORK_ENV] = str(work)
    os.environ[core.RUNS_ENV] = ""
    os.environ[core.LIGHT_ENV] = "quick"          # the real pole's light over one year: the pages, not the physics
    yield work
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _page(name: str, timeout: float = 900):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(HOME, default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    if name != "overview":
        at.switch_page(f"pages/{name}.py").run()
        assert not at.exception, at.exception
    return at


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


@pytest.mark.slow
def test_live_pages(app_work):
    """Each stage run live from its page (button → progress → results), as a user without run folders would: the
    real south pole for Terrain and Sites, the synthetic world for the stages after landing."""
    at = _page("terrain")
    at.button(key="terrain_run_go").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    vis = json.loads((app_work / "south_pole" / "light" / "visibility.json").read_text())
    assert vis["pixel_m"] == pytest.approx(240.0) and vis["far_field"]["coarse_m"] == pytest.approx(1786.875)
    assert "Run summary" in [s.value for s in at.subheader]

    at = _page("geology")                                 # locates the descent first, then the geology chain
    at.button(key="geology_run_go").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    m = _metrics(at)
    g = json.loads((app_work / "geology" / "geology.json").read_text())
    age = next(v for k, v in m.items() if k.startswith("model age"))
    assert m["craters counted"].startswith(f"{g['craters']['n']} in")
    if "error" in g["date"]:                              # too few craters on the tiny world: said, not hidden
        assert age == "—" and any(g["date"]["error"] in w.value for w in at.warning)
    else:
        assert age.endswith(("Ga", "Ma"))

    at = _page("locate")
    at.button(key="locate_run_go").click().run()         # already made by the geology page: the run is reused
    m = _metrics(at)
    sigma = float(m["σ (1-σ, m; fine fix)"])
    truth = json.loads((app_work / "world" / "descent" / "truth.json").read_text())
    landing = json.loads((app_work / "locate" / "landing.json").read_text())
    assert 0 < sigma < 5 and m["landing latitude"] == f"{landing['lat']:.5f}°"
    assert abs(landing["lat"] - truth["landing"]["lat"]) * 1737.4e3 * np.pi / 180 < 10   # within 10 m

    at = _page("sites")
    at.button(key="sites_run_go").click().run()              # the real pole's light is already there: reused
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    top = at.dataframe(key="sites_table").value
    assert len(top) > 0 and (np.diff(top["score"].to_numpy()) <= 1e-9).all()     # ranked by score
    assert (top["lat"] <= -84.0).all()                                           # within 6° of the pole
    assert any(m.startswith("Artemis III regions in the top 10") for m in _metrics(at))

    at = _page("craters")
    at.radio(key="craters_source").set_value("synthetic world's orbital map and DEM").run()
    at.button(key="craters_world_go").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert int(_metrics(at)["craters detected"]) == len(at.dataframe[0].value) > 0


@pytest.mark.slow
def test_pages_read_given_run_folders(app_work):
    """The runs made above, given as --run folders: every page shows them without running anything; choosing
    another site changes the explanation shown."""
    if not (app_work / "geology" / "geology.json").is_file():
        pytest.skip("needs the live runs of test_live_pages")
    os.environ[core.RUNS_ENV] = str(app_work)
    try:
        at = _page("overview")
        assert any("locate" in m.value for m in at.markdown)
        at = _page("sites")
        assert at.selectbox(key="sites_run").value == str(app_work / "south_pole" / "sites")
        first = at.subheader[1].value
        ranks = at.selectbox(key="sites_rank").options
        at.selectbox(key="sites_rank").set_value(ranks[1] if len(ranks) > 1 else ranks[0]).run()
        assert len(ranks) == 1 or at.subheader[1].value != first
        feats = at.dataframe[1].value
        assert len(feats) >= 4 and np.isfinite(feats["SHAP (score)"].to_numpy(float)).all()
        for name in ("terrain", "locate", "geology"):
            at = _page(name)
            assert not at.error and len(at.selectbox(key=f"{name}_run").options) == 2, name
    finally:
        os.environ[core.RUNS_ENV] = ""


def test_segment_page_on_a_rendered_scene(app_work):
    at = _page("segment")
    at.radio(key="segment_source").set_value("a rendered ground-level scene").run()
    assert not at.exception and not at.error
    cover = [float(v.rstrip(" %")) for v in _metrics(at).values()]
    assert len(cover) == 4 and abs(sum(cover) - 100) < 0.5
    assert any("MI above" in c.value for c in at.caption)


@pytest.mark.slow
def test_end_to_end_in_chromium(app_work, tmp_path):
    """The app served on localhost and driven in Debian's Chromium: every page loads without an error, an image
    uploaded on Segment gives its classes and uncertainty, and no request leaves localhost."""
    from selenite.app import browser

    if browser.ensure_chromium() is None:
        pytest.skip("Chromium is not installed and apt-get could not install it")
    if not (app_work / "geology" / "geology.json").is_file():
        pytest.skip("needs the live runs of test_live_pages")
    img = tmp_path / "upload.png"
    from selenite.synth.scenes import SceneSpec, render_scene

    Image.fromarray(render_scene(300_300, SceneSpec(size_px=200))[0]).save(img)
    with browser.serve([app_work], app_work) as url:
        seen = browser.drive(url, tmp_path / "shots", img)
    assert seen["external_requests"] == []
    for name, rec in seen["pages"].items():
        assert rec["errors"] == 0, name
        assert Path(rec["screenshot"]).stat().st_size > 20_000, name
    assert set(seen["pages"]) == set(browser.PAGES)
