"""How the shipped segmentation weights are made: ``python -m selenite.segment.recipe --work DIR --epochs 30``
(``segment_unet_dropout.pt``, seed 0) and ``… --members 3 --out segment_ensemble.pt`` (seeds 0, 1, 2).

Scenes 0 … N−1 train, 100 000 … validate (early stopping, batch-norm statistics are re-estimated on the training
scenes, temperatures on the validation scenes); the held-out test scenes of the benchmark start at 200 000. Every
seed is fixed, so the recipe reproduces the weights up to floating-point order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from selenite.segment.data import write_scenes
from selenite.segment.net import default_weights


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--val", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=default_weights())
    ap.add_argument("--scope", default="decoder", choices=("decoder", "all"))
    ap.add_argument("--members", type=int, default=1, help="Deep ensemble of this many networks (seeds 0, 1, …).")
    a = ap.parse_args(argv)
    from selenite.segment.pipeline import train_files

    for name, n, s0 in (("train", a.train, 0), ("val", a.val, 100_000)):
        if not (a.work / name / "dataset.json").is_file():
            write_scenes(a.work / name, n, s0, 128)
    card = train_files(a.work / "train", a.work / "val", a.out, "unet-dropout", a.epochs, 16, None, 0,
                       notify=lambda s, f: print(f"epoch fraction {f:.2f}", flush=True), scope=a.scope,
                       members=a.members)
    print(json.dumps({k: v for k, v in card.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()
