"""How the shipped crater weights are made: scenes, training, threshold choice, all from fixed seeds.

``python -m selenite.craters.recipe --kind dem|image --out DIR [--nac FOLDER] [--device cuda]`` (also what
``selenite craters train`` runs). Synthetic scenes use seeds 1,000,000+ (training), 2,000,000+ (validation:
threshold choice) and 3,000,000+ (test: reported by ``selenite bench craters``, never seen here). For the image
kind with real NAC crops: synthetic pre-training, then fine-tuning on the NAC training crops; a NAC-only model
is trained beside it and the better of the two on the NAC validation crops is kept (the held-out test crops
are not read here at all).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

SEED_TRAIN, SEED_VAL, SEED_TEST = 1_000_000, 2_000_000, 3_000_000


def _one(args):
    from selenite.craters.data import synthetic_scene

    kind, seed = args
    return synthetic_scene(kind, seed)


def synthetic_scenes(kind: str, base: int, n: int, procs: int = 1):
    jobs = [(kind, base + i) for i in range(n)]
    if procs <= 1:
        return [_one(j) for j in jobs]
    with get_context("fork").Pool(procs) as pool:
        return pool.map(_one, jobs, chunksize=8)


def build(kind: str, out: Path, *, nac: str | None = None, n_synth: int = 3000, n_val: int = 40,
          steps: int = 3000, finetune_steps: int = 1500, batch: int = 32, device: str = "cpu",
          workers: int = 0, procs: int = 1, log=print) -> dict:
    import torch

    from selenite.craters.data import nac_split
    from selenite.craters.detect import DetectSettings
    from selenite.craters.net import save_weights
    from selenite.craters.train import TrainSettings, choose_threshold, train_model

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train = synthetic_scenes(kind, SEED_TRAIN, n_synth, procs)
    val_syn = synthetic_scenes(kind, SEED_VAL, n_val, procs)
    log(f"{kind}: {len(train)} + {len(val_syn)} synthetic scenes in {time.perf_counter() - t0:.0f} s")
    hist: dict = {}
    ts = TrainSettings(steps=steps, batch=batch, device=device, workers=workers, seed=1)
    model = train_model(kind, train, ts, notify=lambda s, f, r: log(kind, "synthetic", r))
    hist["synthetic"] = ts.history
    min_d = 4.0
    candidates = {"synthetic": model}
    val = val_syn
    data_note = f"{n_synth} synthetic {kind} scenes (seeds {SEED_TRAIN}+), {steps} steps"
    if kind == "image" and nac:
        split = nac_split(nac)
        val = split["val"]
        min_d = 6.0     # the NAC labels leave out craters under ~6 px
        ft = TrainSettings(steps=finetune_steps, batch=batch, device=device, workers=workers, lr=1e-3, seed=2)
        import copy
        candidates["synthetic+nac"] = train_model(kind, split["train"], ft, model=copy.deepcopy(model),
                                                  notify=lambda s, f, r: log(kind, "finetune", r))
        hist["finetune"] = ft.history
        only = TrainSettings(steps=steps, batch=batch, device=device, workers=workers, seed=3)
        candidates["nac"] = train_model(kind, split["train"], only, notify=lambda s, f, r: log(kind, "nac", r))
        hist["nac_only"] = only.history
    torch.set_num_threads(max(1, min(8, procs)))
    choice = {}
    for name, m in candidates.items():
        th, sc = choose_threshold(m, kind, val, DetectSettings(min_diameter_px=min_d, tta=True))
        choice[name] = {"threshold": th, **sc}
        log(kind, name, "validation", choice[name])
    best = max(choice, key=lambda k: choice[k]["f1"])
    if best != "synthetic":
        split_names = {k: [s.name for s in v] for k, v in split.items()}
        data_note += (f"; then {'fine-tuned' if best == 'synthetic+nac' else 'replaced by a model trained'} on "
                      f"LROC NAC crops {split_names['train']} ({finetune_steps if best == 'synthetic+nac' else steps}"
                      f" steps); validation crops {split_names['val']}; test crops {split_names['test']} never used")
    meta = {"threshold": choice[best]["threshold"], "min_diameter_px": min_d, "variant": best,
            "trained_on": data_note, "validation": choice, "device": device, "torch": str(torch.__version__),
            "host": platform.node(), "seconds": round(time.perf_counter() - t0, 1)}
    path = out / f"craters_{kind}.pt"
    save_weights(path, candidates[best], kind, meta)
    (out / f"craters_{kind}_history.json").write_text(json.dumps({"meta": meta, "history": hist}, indent=1))
    log(f"{kind}: kept {best} (validation F1 {choice[best]['f1']:.3f}) → {path}")
    return meta


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=["dem", "image"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--nac")
    ap.add_argument("--synth", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--finetune-steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--procs", type=int, default=1)
    a = ap.parse_args(argv)
    np.seterr(all="ignore")
    build(a.kind, Path(a.out), nac=a.nac, n_synth=a.synth, steps=a.steps, finetune_steps=a.finetune_steps,
          batch=a.batch, device=a.device, workers=a.workers, procs=a.procs,
          log=lambda *x: print(*x, flush=True))


if __name__ == "__main__":
    main()
