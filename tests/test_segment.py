"""Terrain segmentation: rendered scenes with exact masks, the dataset loaders, calibration measures, the shipped
weights on held-out scenes, uncertainty outputs, and bad input → exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from selenite.segment.infer import ece, miou
from selenite.synth.scenes import render_scene

# the shipped weights on 300 held-out scenes: mIoU 0.662, ECE 0.0057 single pass, 0.0070 with 20 MC passes;
# 30 scenes scatter more, so the bounds leave room for that and still fail a broken or uncalibrated model
# (the positional baseline scores 0.31)
MIN_MIOU = 0.55
MAX_ECE = 0.02


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "selenite", *args], capture_output=True, text=True, cwd=cwd)


def test_scenes_are_deterministic_with_exact_masks():
    """A scene is a function of its seed; the sky is black (the Moon has no atmosphere) and exactly where the
    rays miss the ground, above the ground in every column; rocks of both classes occur over a few scenes."""
    a, ma = render_scene(3)
    b, mb = render_scene(3)
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    seen = np.zeros(4, int)
    for s in range(6):
        img, m = render_scene(s)
        seen += np.bincount(m.ravel(), minlength=4)
        sky = m == 3
        if sky.any():
            assert img[sky].mean() <= 2.0           # read noise only
            # no ground pixel above a sky pixel in a column beyond the roll's tilt of the horizon
            top_ground = np.where((~sky).any(0), np.argmax(~sky, axis=0), m.shape[0])
            below = np.array([sky[r:, c].sum() for c, r in enumerate(top_ground)])
            assert below.sum() <= 0.01 * sky.sum()
        ground = ~sky
        assert img[ground].mean() > 10
    assert (seen > 0).all(), seen


def test_alrl_layout_is_read_with_its_colours(tmp_path):
    from selenite.segment.data import pairs, read_pair

    (tmp_path / "images" / "render").mkdir(parents=True)
    (tmp_path / "images" / "clean").mkdir(parents=True)
    truth = np.zeros((20, 30), np.uint8)
    truth[:5] = 3
    truth[10:14, 3:9] = 2
    truth[15:17, 20:23] = 1
    colours = np.array([[0, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 0]], np.uint8)
    rgb = colours[truth].astype(int) + np.random.default_rng(0).integers(-20, 21, (20, 30, 3))   # JPEG-like noise
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(tmp_path / "images" / "clean" / "clean0007.png")
    Image.fromarray((np.random.default_rng(1).random((20, 30)) * 255).astype(np.uint8)).save(
        tmp_path / "images" / "render" / "render0007.png")
    ps = pairs(tmp_path)
    assert len(ps) == 1 and ps[0][2] == "alrl"
    img, mask = read_pair(*ps[0])
    assert img.shape == (20, 30) and np.array_equal(mask, truth)


def test_ece_and_miou_on_known_cases():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.25, 1.0, 200_000)
    labels = np.zeros(conf.size, int)
    correct = rng.random(conf.size) < conf            # calibrated: right with probability = confidence
    probs = np.column_stack([conf, (1 - conf) / 3, (1 - conf) / 3, (1 - conf) / 3])
    labels[~correct] = 1
    e, table = ece(probs, labels)
    assert e < 0.005 and sum(table["count"]) == conf.size
    over = np.column_stack([np.full(1000, 0.9), np.full(1000, 0.1)])
    lab = np.r_[np.zeros(600, int), np.ones(400, int)]          # 90 % confident, 60 % right
    assert abs(ece(over, lab)[0] - 0.3) < 1e-9
    m, per = miou(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 3)
    assert per[0] == 0.5 and abs(per[1] - 2 / 3) < 1e-12 and np.isnan(per[2]) and abs(m - (0.5 + 2 / 3) / 2) < 1e-12


def test_segment_bad_input_exits_2(tmp_path):
    from selenite.craters.net import default_weights

    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    deep = tmp_path / "deep.tif"
    Image.fromarray(np.full((8, 8), 2**20, np.int32)).save(deep)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(good)
    out = tmp_path / "out"
    cases = [[str(empty)], [str(text)], [str(deep)], [str(tmp_path / "missing.png")],
             [str(good), "--weights", str(default_weights("image"))],       # crater weights: the wrong kind
             [str(good), "--mc-passes", "-1"]]
    for args in cases:
        p = _cli("segment", "predict", *args, "--out", str(out))
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
        assert not out.exists(), args


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """30 rendered scenes with seeds no training, validation or benchmark scene uses (300 000 +)."""
    from selenite.segment.data import write_scenes

    d = tmp_path_factory.mktemp("seg_held_out")
    write_scenes(d, 30, 300_000, 128, workers=2)
    return d


def test_shipped_weights_on_held_out_scenes(held_out, tmp_path):
    """The shipped weights on held-out scenes: mIoU well above the positional baseline, calibrated with MC
    dropout; the full figures over 300 scenes are in docs/benchmarks.md."""
    p = _cli("segment", "calibrate", "--data", str(held_out), "--json", "--plot",
             str(tmp_path / "rel.png"))
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["images"] == 30 and (tmp_path / "rel.png").exists()
    assert r["miou"] >= MIN_MIOU, r["miou"]
    assert r["ece"] <= MAX_ECE, r["ece"]


def test_predict_writes_classes_and_uncertainty(tmp_path):
    from selenite.synth.scenes import SceneSpec

    img, mask = render_scene(300_100, SceneSpec(size_px=200))
    src = tmp_path / "scene.png"
    Image.fromarray(img[:150]).save(src)                  # not square, not the training size
    out = tmp_path / "pred"
    p = _cli("segment", "predict", str(src), "--out", str(out), "--tta", "--mc-passes", "8")
    assert p.returncode == 0, p.stderr
    cls = np.asarray(Image.open(out / "scene_classes.png"))
    assert cls.shape == (150, 200) and cls.max() <= 3
    ent = np.load(out / "scene_entropy.npy")
    mi = np.load(out / "scene_mutual_information.npy")
    assert ent.shape == mi.shape == (150, 200)
    assert (mi >= 0).all() and (mi <= ent + 1e-5).all() and ent.max() <= np.log(4) + 1e-5
    rec = json.loads((out / "scene.json").read_text())
    assert abs(sum(rec["coverage"].values()) - 1) < 1e-6 and rec["mean_mutual_information"] > 0
    acc = float((cls == mask[:150]).mean())
    assert acc >= 0.8, acc
    html = (out / "report.html").read_text()              # self-contained: 3 figures embedded, nothing fetched
    assert html.count("data:image/png;base64,") == 3 and "https://" not in html and "http://" not in html


def test_train_a_plain_unet_and_refuse_mc_with_it(held_out, tmp_path):
    w = tmp_path / "plain.pt"
    p = _cli("segment", "train", "--data", str(held_out), "--out", str(w), "--kind", "unet", "--epochs", "1")
    assert p.returncode == 0, p.stderr
    from selenite.segment.net import load

    model, rec = load(w)
    assert rec["variant"] == "unet" and rec["card"]["n_train"] == 27 and rec["card"]["temperature"] > 0
    src = next((held_out / "images").iterdir())
    q = _cli("segment", "predict", str(src), "--weights", str(w), "--mc-passes", "5", "--out", str(tmp_path / "o"))
    assert q.returncode == 2 and "unet-dropout" in q.stderr


def test_ood_check_on_real_nac_images(shared_data, held_out):
    """The out-of-domain check on real LROC NAC crops (read in place, cut into 256² tiles) against held-out
    rendered scenes: every tile and scene is an input, the means are consistent (0 < MI ≤ entropy ≤ ln 4) and the
    lift is their ratio. The shipped decoder-dropout weights do NOT reach LunarSite's 4.7× lift (measured 1.08×
    over all real images, 0.8× on these four crops): stated in docs/benchmarks.md, not asserted away."""
    nac = shared_data / "images" / "nac_change4_crops" / "train"
    p = _cli("segment", "ood", "--in-domain", str(held_out), "--out-of-domain", str(nac), "--mc-passes", "10",
             "--limit", "4", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["out_of_domain"]["inputs"] == 36 and r["in_domain"]["inputs"] == 4
    for k in ("in_domain", "out_of_domain"):
        assert 0 < r[k]["mean_mi"] <= r[k]["mean_entropy"] <= np.log(4)
    assert abs(r["mi_lift"] - r["out_of_domain"]["mean_mi"] / r["in_domain"]["mean_mi"]) < 1e-12


def test_deep_ensemble_train_combine_and_disagreement(held_out, tmp_path):
    """A two-member plain-U-Net ensemble: one file, mutual information from the members' disagreement without
    any MC pass (0 ≤ MI ≤ entropy); an ensemble of one network twice has no disagreement (MI = 0 to float
    precision); members of different kinds are refused."""
    from selenite.segment.net import Ensemble, load

    w = tmp_path / "ens.pt"
    p = _cli("segment", "train", "--data", str(held_out), "--out", str(w), "--kind", "unet", "--epochs", "1",
             "--members", "2", "--seed", "5")
    assert p.returncode == 0, p.stderr
    model, rec = load(w)
    assert isinstance(model, Ensemble) and rec["n_members"] == 2
    assert [m["seed"] for m in rec["card"]["members"]] == [5, 6] and rec["card"]["temperature"] > 0
    src = next((held_out / "images").iterdir())
    out = tmp_path / "o"
    q = _cli("segment", "predict", str(src), "--weights", str(w), "--out", str(out))
    assert q.returncode == 0, q.stderr
    ent, mi = np.load(out / f"{src.stem}_entropy.npy"), np.load(out / f"{src.stem}_mutual_information.npy")
    assert (mi >= 0).all() and (mi <= ent + 1e-5).all() and mi.mean() > 1e-4

    one = tmp_path / "one.pt"
    assert _cli("segment", "train", "--data", str(held_out), "--out", str(one), "--kind", "unet",
                "--epochs", "1").returncode == 0
    twice = tmp_path / "twice.pt"
    r = _cli("segment", "ensemble", str(one), str(one), "--val", str(held_out), "--out", str(twice))
    assert r.returncode == 0, r.stderr
    out2 = tmp_path / "o2"
    assert _cli("segment", "predict", str(src), "--weights", str(twice), "--out", str(out2)).returncode == 0
    assert np.abs(np.load(out2 / f"{src.stem}_mutual_information.npy")).max() < 1e-5

    from selenite.segment.net import default_weights

    bad = _cli("segment", "ensemble", str(one), str(default_weights()), "--val", str(held_out), "--out",
               str(tmp_path / "bad.pt"))
    assert bad.returncode == 2 and "one kind" in bad.stderr and not (tmp_path / "bad.pt").exists()
