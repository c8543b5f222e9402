"""Driving the running app in a real browser (Debian's Chromium through Playwright): every page loaded, an image
uploaded on Segment, a screenshot of each page, and every request the page made recorded — the app must work
offline, so nothing may leave localhost. Used by the end-to-end test and to make the screenshots in ``docs/``:
``python -m selenite.app.browser --run DEMO_RUN --out docs/screenshots``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# page → (url path, text that shows the page has finished)
PAGES = {"overview": ("", "selenite"), "sites": ("sites", "Top sites"), "terrain": ("terrain", "Run summary"),
         "locate": ("locate", "Manoeuvres"), "craters": ("craters", "craters detected"),
         "geology": ("geology", "model age"), "segment": ("segment", "mutual information (mean")}


def ensure_chromium() -> str | None:
    """Path of Debian's Chromium, installing it with apt-get if missing; None with the reason printed if not."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True)
    return CHROMIUM if Path(CHROMIUM).exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(runs: list[Path], work: Path, port: int | None = None, timeout: float = 90.0):
    """``selenite app`` in a subprocess on localhost; yields its base URL once its health check answers."""
    port = port or free_port()
    env = dict(os.environ, SELENITE_APP_WORK=str(work))
    cmd = [sys.executable, "-m", "selenite", "app", "--port", str(port)]
    for r in runs:
        cmd += ["--run", str(r)]
    log = open(Path(work) / "server.log", "w")  # noqa: SIM115 — closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() - t0 > timeout:
                raise RuntimeError(f"the app did not start: {(Path(work) / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def drive(url: str, out: Path, upload: Path, timeout_ms: int = 240_000) -> dict:
    """Visit every page, upload ``upload`` on Segment, screenshot each page into ``out``; returns what was seen."""
    from playwright.sync_api import sync_playwright

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    host = urlparse(url).hostname
    seen: dict = {"pages": {}, "external_requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda req: None if urlparse(req.url).hostname in (host, None) or req.url.startswith(
            ("data:", "blob:")) else seen["external_requests"].append(req.url))
        for name, (path, ready) in PAGES.items():
            page.goto(f"{url}/{path}", wait_until="domcontentloaded")
            if name == "segment":
                inp = page.locator("input[type=file]").first
                inp.wait_for(state="attached", timeout=timeout_ms)
                inp.set_input_files(str(upload))
            if name == "craters":
                page.get_by_text("synthetic world's orbital map and DEM").first.click()
                page.get_by_role("button", name="Use the synthetic world").click()
            page.get_by_text(ready, exact=False).first.wait_for(timeout=timeout_ms)
            page.wait_for_timeout(1500)                      # let images and charts finish drawing
            errors = page.locator("[data-testid=stException], [data-testid=stAlertContentError]").count()
            page.screenshot(path=str(out / f"app_{name}.png"), full_page=True)
            seen["pages"][name] = {"errors": errors, "screenshot": str(out / f"app_{name}.png")}
        browser.close()
    return seen


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, action="append", default=[], help="Run folder for the app (repeat).")
    ap.add_argument("--out", type=Path, required=True, help="Folder for the screenshots.")
    ap.add_argument("--image", type=Path, help="Image to upload on Segment (default: a rendered scene).")
    ap.add_argument("--work", type=Path, help="The app's work folder (default: OUT/work).")
    a = ap.parse_args(argv)
    if ensure_chromium() is None:
        sys.exit("selenite: error: Chromium is not installed and could not be installed (apt-get install chromium)")
    work = a.work or a.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    image = a.image
    if image is None:
        from PIL import Image

        from selenite.synth.scenes import SceneSpec, render_scene

        img, _ = render_scene(300_200, SceneSpec(size_px=320))
        image = work / "scene.png"
        Image.fromarray(img).save(image)
    with serve(a.run, work) as url:
        seen = drive(url, a.out, image)
    from PIL import Image

    for rec in seen["pages"].values():                # palette PNGs: a quarter of the size, for the docs
        with Image.open(rec["screenshot"]) as im:
            small = im.convert("RGB").quantize(colors=192, method=Image.Quantize.MEDIANCUT)
        small.save(rec["screenshot"], optimize=True)
    print(json.dumps(seen, indent=1))


if __name__ == "__main__":
    main()
