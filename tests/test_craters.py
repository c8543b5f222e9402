"""selenite craters: rims, catalogues, the match rule, peak extraction, tiling, shipped weights, CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from selenite.craters.catalog import read_craters
from selenite.craters.detect import Runner, extract_objects, predict_maps, suppress
from selenite.craters.metrics import match_craters, object_scores
from selenite.craters.net import default_weights, load_weights
from selenite.craters.rims import catalogue_to_pixels, detector_targets, disk_mask, ring_mask
from selenite.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NAC = SHARED / "images" / "nac_change4_crops" / "train"
SELENITE = [sys.executable, "-m", "selenite"]


def cli(*args):
    return subprocess.run([*SELENITE, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_rings_and_disks_have_the_geometry_of_circles():
    r = 20.0
    ring = ring_mask((64, 64), [31.3], [30.7], [2 * r])
    assert ring.sum() == pytest.approx(2 * math.pi * r, rel=0.06)      # a 1-px ring: its circumference
    disk = disk_mask((64, 64), [31.3], [30.7], [2 * r])
    assert disk.sum() == pytest.approx(math.pi * r * r, rel=0.01)
    t = detector_targets((64, 64), [31.0, 5.0], [30.0, 5.0], [12.0, 100.0], (4, 64))
    assert t[1].max() == pytest.approx(1.0) and t[1][30, 31] == pytest.approx(1.0)
    assert np.unique(t[2][t[3] > 0]) == pytest.approx([math.log2(12.0)])  # the 100 px crater is out of range
    assert t[0].sum() == pytest.approx(1.5 * math.pi * 12.0, rel=0.15)


def test_box_tables_become_circles_and_formats_are_recognised(tmp_path):
    (tmp_path / "a.txt").write_text("ID\tX\tY\tW\tH\n1\t10\t20\t8\t6\n")
    (tmp_path / "b.txt").write_text("ID,X,Y,W,H,C_X,CY\n1,10,20,8,6,14,23\n")
    for name in ("a.txt", "b.txt"):
        c = read_craters(tmp_path / name)
        assert c.loc[0, ["x_px", "y_px", "diameter_px"]].tolist() == [13.5, 22.5, 7.0]
    (tmp_path / "cr.csv").write_bytes(b"Lon,Lat,Diam_km\r10,-45,20.5\r-170,3,30\r")
    c = read_craters(tmp_path / "cr.csv")
    assert c.diameter_m.tolist() == [20500.0, 30000.0] and c.lon.tolist() == [10.0, -170.0]
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bin.csv").write_bytes(b"\x00\x01\x02")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    for bad in ("empty.csv", "bin.csv", "other.csv", "missing.csv"):
        with pytest.raises(InputError):
            read_craters(tmp_path / bad)


@pytest.mark.skipif(not (SHARED / "craters").is_dir(), reason="../shared/data is absent (a fresh clone)")
def test_real_catalogue_with_old_mac_line_endings_reads():
    c = read_craters(SHARED / "craters" / "head2010_20km_deepmoon.csv")
    assert len(c) == 5185 and c.diameter_m.min() >= 20_000.0 - 1e-6


def test_lonlat_craters_land_on_the_right_pixels_with_the_local_scale():
    from selenite.geo.crs import local_stereographic
    from selenite.geo.raster import RasterInfo

    crs = local_stereographic(30.0, -60.0)
    info = RasterInfo(crs, Affine(10.0, 0, -5000.0, 0, -10.0, 5000.0), 1000, 1000)
    c = catalogue_to_pixels(pd.DataFrame({"lon": [30.0], "lat": [-60.0], "diameter_m": [800.0]}), info)
    assert c.x_px[0] == pytest.approx(499.5, abs=1e-6) and c.y_px[0] == pytest.approx(499.5, abs=1e-6)
    assert c.diameter_px[0] == pytest.approx(80.0, rel=1e-4)        # scale factor 1 at the projection centre


def test_match_rule_is_the_stated_one_and_one_to_one():
    truth = pd.DataFrame({"x_px": [100.0], "y_px": [100.0], "diameter_px": [20.0]})

    def det(dx, d):
        return pd.DataFrame({"x_px": [100.0 + dx], "y_px": [100.0], "diameter_px": [d]})

    assert len(match_craters(det(9.9, 20.0), truth)) == 1
    assert len(match_craters(det(10.1, 20.0), truth)) == 0
    assert len(match_craters(det(0.0, 29.9), truth)) == 1 and len(match_craters(det(0.0, 30.1), truth)) == 0
    assert len(match_craters(det(0.0, 13.4), truth)) == 1 and len(match_craters(det(0.0, 13.2), truth)) == 0
    two = pd.concat([det(1.0, 20.0), det(0.0, 21.0)], ignore_index=True)
    s = object_scores(two, truth)
    assert (s.n_matched, s.precision, s.recall) == (1, 0.5, 1.0)
    assert s.diameter_error_median == pytest.approx(0.05)               # the closer (cheaper) one was kept
    # the same rule on the sphere: 1 km crater, detection 400 m east
    t = pd.DataFrame({"lon": [20.0], "lat": [0.0], "diameter_m": [1000.0]})
    d = pd.DataFrame({"lon": [20.0 + math.degrees(400 / 1_737_400)], "lat": [0.0], "diameter_m": [1100.0]})
    assert object_scores(d, t).n_matched == 1
    d.loc[0, "lon"] = 20.0 + math.degrees(600 / 1_737_400)
    assert object_scores(d, t).n_matched == 0


def test_peaks_give_sub_pixel_centres_and_sizes_and_nms_drops_duplicates():
    t = detector_targets((96, 96), [30.3, 60.6], [40.2, 50.7], [12.0, 20.0], (4, 64))
    maps = np.stack([t[0], t[1], np.where(t[3] > 0, t[2], 0.0)]).astype(np.float32)
    df = extract_objects(maps, 0.5, (4, 48)).sort_values("x_px").reset_index(drop=True)
    assert len(df) == 2
    assert df.x_px.tolist() == pytest.approx([30.3, 60.6], abs=0.12)
    assert df.y_px.tolist() == pytest.approx([40.2, 50.7], abs=0.12)
    assert df.diameter_px.tolist() == pytest.approx([12.0, 20.0], rel=0.05)
    dup = pd.DataFrame({"x_px": [10.0, 11.0, 40.0], "y_px": [10.0, 10.0, 10.0], "diameter_px": [10.0, 11.0, 10.0],
                        "score": [0.9, 0.8, 0.7]})
    kept = suppress(dup)
    assert kept.score.tolist() == [0.9, 0.7]


def test_tiled_prediction_equals_the_whole_and_onnx_equals_torch():
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 5, padding=2), torch.nn.Conv2d(3, 3, 3, padding=1)).eval()
    x = np.random.default_rng(0).standard_normal((700, 900)).astype(np.float32)
    whole = predict_maps(conv, x, tile=2048)
    tiled = predict_maps(conv, x, tile=256, overlap=32)
    # the same everywhere (the image's own outer 4 px see different padding in the two paths)
    assert np.abs(whole - tiled)[:, 4:-4, 4:-4].max() < 1e-4
    model, _ = load_weights(default_weights("dem"), "dem")
    a = Runner(model, "torch")(x[None, None, :256, :256])
    b = Runner(model, "onnxruntime")(x[None, None, :256, :256])
    assert np.abs(a - b).max() < 1e-3


def test_weights_refuse_the_wrong_kind_and_other_files(tmp_path):
    for kind in ("dem", "image"):
        _, card = load_weights(default_weights(kind), kind)
        assert 0.05 < card["meta"]["threshold"] < 0.95 and card["kind"] == kind
        assert default_weights(kind).stat().st_size < 5e6
    with pytest.raises(InputError, match="trained on dem"):
        load_weights(default_weights("dem"), "image")
    junk = tmp_path / "w.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a selenite crater weights"):
        load_weights(junk)


def test_dem_detector_finds_synthetic_held_out_craters():
    from selenite.craters.detect import DetectSettings
    from selenite.craters.recipe import SEED_TEST, synthetic_scenes
    from selenite.craters.train import score_scenes

    model, card = load_weights(default_weights("dem"), "dem")
    scenes = synthetic_scenes("dem", SEED_TEST, 12)
    res = score_scenes(model, "dem", scenes, DetectSettings(threshold=card["meta"]["threshold"]))
    # bench (100 held-out scenes) measures F1 0.80; 12 scenes vary by a few hundredths
    assert next(iter(res.values()))["f1"] > 0.70


@pytest.mark.skipif(not NAC.is_dir(), reason="../shared/data is absent (a fresh clone): no NAC crops")
def test_image_detector_meets_the_target_on_held_out_real_nac_crops():
    from selenite.craters.data import NAC_TEST, nac_split
    from selenite.craters.detect import DetectSettings
    from selenite.craters.train import score_scenes

    model, card = load_weights(default_weights("image"), "image")
    assert not any(n in card["meta"]["trained_on"].split("test crops")[0] for n in NAC_TEST)
    test = nac_split(NAC)["test"]
    meta = card["meta"]
    res = score_scenes(model, "image", test, DetectSettings(threshold=meta["threshold"], tta=True,
                                                            min_diameter_px=meta["min_diameter_px"]))
    f1 = next(iter(res.values()))["f1"]
    assert f1 >= 0.80, f"object F1 {f1:.3f} on held-out NAC crops"


def test_cli_detect_evaluate_and_bad_input(tmp_path):
    from selenite.craters.data import synthetic_scene
    from selenite.geo.crs import local_stereographic
    from selenite.geo.raster import write_cog

    sc = synthetic_scene("dem", 3_000_500)
    tif = tmp_path / "dem.tif"
    write_cog(tif, sc.array, crs=local_stereographic(100.0, -30.0),
              transform=Affine(20.0, 0, -2560.0, 0, -20.0, 2560.0))
    out = tmp_path / "c.csv"
    p = cli("-q", "craters", "detect", "--dem", tif, "--lonlat", "--out", out)
    assert p.returncode == 0, p.stderr
    det = pd.read_csv(out)
    assert {"x_px", "y_px", "diameter_px", "score", "lon", "lat", "diameter_m"} <= set(det.columns)
    assert np.allclose(det.diameter_m, det.diameter_px * 20.0)
    assert (tmp_path / "c_overlay.png").stat().st_size > 1000
    assert json.loads((tmp_path / "c.json").read_text())["n_craters"] == len(det)
    html = (tmp_path / "c_report.html").read_text()       # self-contained: the overlay embedded, nothing fetched
    assert f"{len(det)} craters detected" in html and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html
    truth = tmp_path / "t.csv"
    sc.craters.to_csv(truth, index=False)
    p = cli("craters", "evaluate", out, "--truth", truth, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["objects"]["f1"] > 0.5
    # bad input: one line, exit 2, nothing written
    notimg = tmp_path / "x.png"
    notimg.write_text("hello")
    empty = tmp_path / "e.png"
    empty.write_bytes(b"")
    nocrs = tmp_path / "nocrs.tif"
    import rasterio
    with rasterio.open(nocrs, "w", driver="GTiff", width=64, height=64, count=1, dtype="float32") as ds:
        ds.write(np.random.default_rng(0).random((1, 64, 64), dtype=np.float32))
    for args in (["--image", notimg], ["--image", empty], ["--dem", nocrs, "--lonlat"],
                 ["--image", notimg, "--weights", default_weights("dem")],
                 ["--dem", tif, "--weights", default_weights("image")]):
        o = tmp_path / "bad.csv"
        p = cli("craters", "detect", *args, "--out", o)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)
        assert not o.exists()


def test_cli_train_and_finetune_write_loadable_weights(tmp_path):
    w = tmp_path / "w.pt"
    p = cli("-q", "craters", "train", "--kind", "dem", "--synthetic", "6", "--steps", "3", "--batch", "2",
            "--out", w)
    assert p.returncode == 0, p.stderr
    _, card = load_weights(w, "dem")
    assert card["meta"]["steps"] == 3
    p = cli("craters", "train", "--kind", "dem", "--out", tmp_path / "x.pt")
    assert p.returncode == 2 and "--synthetic" in p.stderr
