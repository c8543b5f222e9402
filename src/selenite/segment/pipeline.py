"""``selenite segment``: predict, train, calibrate, ood — files in, files out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from selenite.errors import InputError
from selenite.runs import atomic_path
from selenite.synth.scenes import CLASSES, colorize

WORK_PX = 256          # longest side the network sees at prediction (it is trained on 128-px scenes)


def read_image(path: str | Path) -> np.ndarray:
    """A grey float image in 0..1 from an 8- or 16-bit PNG/JPEG/TIFF; bad input → one clear line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if im.width == 0 or im.height == 0:
                raise InputError(f"{path}: zero-size image")
            if mode in ("L", "P", "RGB", "RGBA", "LA"):
                arr = np.asarray(im.convert("L"), np.float32) / 255.0
            elif mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, np.float64)
                if a.max() > 65535 or a.min() < 0:
                    raise InputError(f"{path}: unsupported bit depth (32-bit integer values)")
                arr = (a / 65535.0).astype(np.float32)
            else:
                raise InputError(f"{path}: unsupported image mode {mode!r} (8- or 16-bit grey or RGB only)")
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise InputError(f"{path}: not an image (PNG, JPEG or TIFF)") from None
    return arr


def _png(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def _heat(a: np.ndarray, vmax: float) -> np.ndarray:
    import matplotlib

    v = np.clip(a / max(vmax, 1e-12), 0, 1)
    return (matplotlib.colormaps["magma"](v)[..., :3] * 255).astype(np.uint8)


def predict_files(images: list[Path], out: Path, weights: Path | None = None, tta: bool = False,
                  mc_passes: int = 0, notify=None) -> list[dict]:
    from selenite.segment.infer import predict_probs, prepare

    if mc_passes < 0 or mc_passes > 200:
        raise InputError(f"--mc-passes must be between 0 and 200 (got {mc_passes})")
    arrays = [read_image(p) for p in images]           # every input checked before anything is written
    model, rec = _load_for(weights, mc_passes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for k, (path, img) in enumerate(zip(images, arrays, strict=True)):
        res = predict_probs(model, prepare(img, WORK_PX), tta=tta, mc_passes=mc_passes, out_size=img.shape)
        cls = res["probs"].argmax(0).astype(np.uint8)
        stem = Path(path).stem
        _png(out / f"{stem}_classes.png", cls)
        grey = (np.repeat(img[..., None], 3, 2) * 255).astype(np.uint8)
        _png(out / f"{stem}_overlay.png", (0.55 * grey + 0.45 * colorize(cls)).astype(np.uint8))
        rec_i = {"image": str(path), "shape": list(img.shape), "tta": tta, "mc_passes": mc_passes,
                 "members": rec["n_members"],
                 "coverage": {c: float((cls == i).mean()) for i, c in enumerate(CLASSES)},
                 "mean_confidence": float(res["probs"].max(0).mean())}
        if "mutual_information" in res:                 # MC passes or an ensemble's members
            for name in ("entropy", "mutual_information"):
                a = res[name].astype(np.float32)
                with atomic_path(out / f"{stem}_{name}.npy") as tmp:
                    with open(tmp, "wb") as fh:
                        np.save(fh, a)
                _png(out / f"{stem}_{name}.png", _heat(a, np.log(len(CLASSES)) if name == "entropy" else 0.5))
                rec_i[f"mean_{name}"] = float(a.mean())
        with atomic_path(out / f"{stem}.json") as tmp:
            Path(tmp).write_text(json.dumps(rec_i, indent=1) + "\n")
        results.append(rec_i)
        if notify:
            notify("segment", (k + 1) / len(images))
    _predict_report(out, results, rec)
    return results


def _predict_report(out: Path, results: list[dict], weights_rec: dict) -> None:
    """report.html of a predict run: per image its overlay, uncertainty maps and class coverage (embedded)."""
    from selenite.report.html import Section, png_data_uri, write_report

    card = weights_rec.get("card", {})
    intro = Section("Terrain segmentation", [
        f"{len(results)} image(s); weights: {weights_rec['variant']}"
        + (f", ensemble of {weights_rec['n_members']}" if weights_rec["n_members"] > 1 else "")
        + f", trained on {card.get('n_train', '?')} rendered scenes; TTA {'on' if results[0]['tta'] else 'off'}, "
        f"{results[0]['mc_passes']} MC passes. Classes: background grey, small rocks orange, large rocks red, "
        "sky blue. Entropy is total uncertainty; mutual information what the network does not know."])
    secs = [intro]
    for r in results:
        stem = Path(r["image"]).stem
        sec = Section(Path(r["image"]).name)
        sec.tables.append((["class", "coverage"], [[k, f"{100 * v:.1f} %"] for k, v in r["coverage"].items()]))
        sec.figures.append((png_data_uri((out / f"{stem}_overlay.png").read_bytes()), "classes"))
        for name in ("entropy", "mutual_information"):
            if f"mean_{name}" in r:
                sec.figures.append((png_data_uri((out / f"{stem}_{name}.png").read_bytes()),
                                    f"{name.replace('_', ' ')} (mean {r[f'mean_{name}']:.4f} nats)"))
        secs.append(sec)
    write_report(out / "report.html", "selenite — segmentation", secs)


def _load_for(weights: Path | None, mc_passes: int):
    """The weights (default: the shipped single network), refused if MC passes are asked of a plain U-Net."""
    from selenite.segment.net import default_weights, load

    path = weights or default_weights()
    model, rec = load(path)
    if mc_passes and rec["variant"] != "unet-dropout":
        raise InputError(f"{path}: --mc-passes needs unet-dropout weights (these are {rec['variant']!r}; an "
                         "ensemble of them gives mutual information with --mc-passes 0)")
    return model, rec


def train_files(data: Path, val: Path | None, out: Path, variant: str = "unet-dropout", epochs: int = 20,
                batch: int = 16, size: int | None = None, seed: int = 0, notify=None,
                scope: str = "decoder", members: int = 1) -> dict:
    """Train on a dataset folder (selenite scenes or ALRL layout); validation: ``val`` or a 10 % split. With
    ``members`` > 1, a deep ensemble: one network per seed ``seed`` … ``seed + members − 1``."""
    from selenite.segment.data import load_arrays
    from selenite.segment.net import KINDS, Ensemble
    from selenite.segment.train import train

    if variant not in KINDS:
        raise InputError(f"unknown --kind {variant!r} (choose from: {', '.join(KINDS)})")
    if epochs < 1:
        raise InputError(f"--epochs must be at least 1 (got {epochs})")
    if not 1 <= members <= 16:
        raise InputError(f"--members must be between 1 and 16 (got {members})")
    out = _weights_out(out)
    x, y = load_arrays(data, size)
    if val is not None:
        xv, yv = load_arrays(val, size or x.shape[1])
    else:
        k = max(1, len(x) // 10)
        x, y, xv, yv = x[k:], y[k:], x[:k], y[:k]
    nets, infos = [], []
    for i in range(members):
        step = (lambda s, f, i=i: notify(s, (i + f) / members)) if notify else None
        net, info = train(x, y, xv, yv, variant=variant, epochs=epochs, batch=batch, seed=seed + i, notify=step,
                          scope=scope)
        nets.append(net)
        infos.append(info)
    info = infos[0] if members == 1 else {
        "members": [{"seed": i["seed"], "best_val_miou": i["best_val_miou"]} for i in infos],
        **{k: infos[0][k] for k in ("epochs", "batch", "lr", "variant", "dropout_scope")}}
    model = nets[0] if members == 1 else Ensemble(nets)
    card = {"trained_on": str(data), "n_train": int(len(x)), "validated_on": str(val) if val else "10 % split",
            "n_val": int(len(xv)), "size_px": int(x.shape[1]), **info}
    return _finish(model, card, xv, yv, out)


def _weights_out(out: Path) -> Path:
    out = Path(out)
    if out.suffix != ".pt":
        raise InputError(f"{out}: weights are written as a .pt file")
    return out


def _finish(model, card: dict, xv: np.ndarray, yv: np.ndarray, out: Path) -> dict:
    """Temperatures on the validation scenes, the ensemble's validation mIoU, then the weights file."""
    from selenite.segment.net import Ensemble, save
    from selenite.segment.train import fit_temperatures

    card.update(fit_temperatures(model, xv, yv))
    if isinstance(model, Ensemble):
        card["n_members"] = len(model.members)
        from selenite.segment.infer import miou, predict_probs, prepare

        pred = np.stack([predict_probs(model, prepare(im, None))["probs"].argmax(0) for im in xv])
        card["ensemble_val_miou"] = miou(pred, yv, len(CLASSES))[0]
    with atomic_path(out) as tmp:
        save(model, tmp, card)
    return card


def ensemble_files(weights: list[Path], val: Path, out: Path) -> dict:
    """A deep ensemble from separately trained weights files of one kind; temperatures refitted on ``val``."""
    from selenite.segment.data import load_arrays
    from selenite.segment.net import Ensemble, load, members_of

    if len(weights) < 2:
        raise InputError("an ensemble needs at least two weights files")
    out = _weights_out(out)
    loaded = [load(w) for w in weights]
    model = Ensemble([m for net, _ in loaded for m in members_of(net)])
    xv, yv = load_arrays(val, loaded[0][1]["card"].get("size_px"))
    card = {"members": [{"weights": Path(w).name, **{k: r["card"].get(k) for k in
                                                     ("seed", "best_val_miou", "epochs", "trained_on", "n_train")}}
                        for w, (_, r) in zip(weights, loaded, strict=True)],
            "variant": model.variant, "dropout_scope": model.scope, "validated_on": str(val), "n_val": int(len(xv)),
            "size_px": loaded[0][1]["card"].get("size_px")}
    return _finish(model, card, xv, yv, out)


def _dataset_probs(model, root: Path, tta: bool, mc_passes: int, limit: int | None, seed: int = 0):
    """Per-image mean probabilities, MC maps and labels of a dataset (each image at its own size)."""
    from selenite.segment.data import pairs, read_pair
    from selenite.segment.infer import predict_probs, prepare

    out = []
    for k, (a, b, lay) in enumerate(pairs(root)[:limit]):
        img, mask = read_pair(a, b, lay)
        res = predict_probs(model, prepare(img, None), tta=tta, mc_passes=mc_passes, seed=seed + k)
        out.append((res, mask))
    return out


def calibrate_files(data: Path, weights: Path | None, tta: bool, mc_passes: int, plot: Path | None,
                    limit: int | None = None) -> dict:
    """mIoU, ECE (15 bins) and a reliability diagram of the weights on a labelled dataset."""
    from selenite.segment.infer import ece, miou

    model, rec = _load_for(weights, mc_passes)
    res = _dataset_probs(model, data, tta, mc_passes, limit)
    probs = np.concatenate([r["probs"].reshape(len(CLASSES), -1).T for r, _ in res])
    labels = np.concatenate([m.ravel() for _, m in res])
    e, table = ece(probs, labels)
    m, per = miou(probs.argmax(1), labels, len(CLASSES))
    out = {"data": str(data), "images": len(res), "pixels": int(labels.size), "tta": tta, "mc_passes": mc_passes,
           "members": rec["n_members"],
           "ece": e, "miou": m, "iou": dict(zip(CLASSES, per, strict=True)), "reliability": table}
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        c = np.array(table["confidence"])
        a = np.array(table["accuracy"])
        n = np.array(table["count"])
        mid = (np.array(table["edges"][:-1]) + np.array(table["edges"][1:])) / 2
        ax.bar(mid[n > 0], a[n > 0], width=1 / 15, edgecolor="k", alpha=0.7, label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.plot(c[n > 0], a[n > 0], "r.", ms=4)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(f"ECE {e:.4f} ({len(res)} images)", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(plot) as tmp:
            fig.savefig(tmp, dpi=100, format="png", metadata={"Software": None})
        plt.close(fig)
        out["plot"] = str(plot)
    return out


def _images_of(root: Path, limit: int | None) -> list[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError(f"{root}: no such image folder")
    try:
        from selenite.segment.data import pairs

        return [a for a, _, _ in pairs(root)][:limit]
    except InputError:
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff"))
        if not files:
            raise InputError(f"{root}: no images (PNG, JPEG, TIFF)") from None
        return files[:limit]


def ood_files(in_domain: Path, out_of_domain: Path, weights: Path | None, mc_passes: int = 20,
              tile: int = 256, limit: int | None = 50, seed: int = 0) -> dict:
    """Mean MI and entropy per set and their lift (out-of-domain / in-domain). Large images are cut into
    ``tile``-px tiles (each a separate input), so an orbital image is seen at the network's scale."""
    from selenite.segment.infer import predict_probs, prepare

    model, rec = _load_for(weights, mc_passes)
    if rec["n_members"] < 2:
        if rec["variant"] != "unet-dropout":
            raise InputError("the OOD check needs unet-dropout weights or an ensemble (mutual information from MC "
                             "dropout or from the members' disagreement)")
        if mc_passes < 2:
            raise InputError("--mc-passes must be at least 2 for mutual information")

    def stats(root):
        mi, ent, n = [], [], 0
        for p in _images_of(root, limit):
            img = read_image(p)
            tiles = [img] if max(img.shape) <= tile else [
                img[r:r + tile, c:c + tile] for r in range(0, img.shape[0] - tile + 1, tile)
                for c in range(0, img.shape[1] - tile + 1, tile)]
            for t in tiles:
                res = predict_probs(model, prepare(t, None), mc_passes=mc_passes, seed=seed + n)
                mi.append(float(res["mutual_information"].mean()))
                ent.append(float(res["entropy"].mean()))
                n += 1
        return {"inputs": n, "mean_mi": float(np.mean(mi)), "mean_entropy": float(np.mean(ent))}

    a, b = stats(in_domain), stats(out_of_domain)
    return {"in_domain": {"path": str(in_domain), **a}, "out_of_domain": {"path": str(out_of_domain), **b},
            "mc_passes": mc_passes, "members": rec["n_members"],
            "mi_lift": b["mean_mi"] / a["mean_mi"] if a["mean_mi"] > 0 else float("inf"),
            "entropy_lift": b["mean_entropy"] / a["mean_entropy"] if a["mean_entropy"] > 0 else float("inf")}
