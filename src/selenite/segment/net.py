"""The segmentation network: a U-Net (segmentation-models-pytorch) on a MobileNetV3-small encoder, one grey input
channel, four classes; ``unet-dropout`` adds Dropout2d after every ReLU of the decoder for Monte-Carlo dropout.

LunarSite put Dropout2d (p = 0.1) after every ReLU of the whole network. Here the encoder stays deterministic so
that Monte-Carlo passes re-run the decoder only on cached encoder features — what makes 20 passes affordable on a
CPU; the decoder's dropout carries the epistemic spread. Weights files are torch dicts with ``kind``
("selenite-segment"), the model ``variant`` and a model card; loading refuses anything else.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from selenite.errors import InputError
from selenite.synth.scenes import CLASSES

ENCODER = "timm-mobilenetv3_small_100"
DECODER_CHANNELS = (64, 32, 16, 16, 8)
KINDS = ("unet", "unet-dropout")
FILE_KIND = "selenite-segment"


def build(variant: str = "unet-dropout", p: float = 0.1, scope: str = "decoder") -> nn.Module:
    """The U-Net; for ``unet-dropout`` Dropout2d(p) after every ReLU of the decoder (``scope="decoder"``) or also
    after every activation of the encoder's batch-norm-activation layers (``scope="all"``, as LunarSite)."""
    import segmentation_models_pytorch as smp

    if variant not in KINDS:
        raise InputError(f"unknown model kind {variant!r} (choose from: {', '.join(KINDS)})")
    m = smp.Unet(ENCODER, encoder_weights=None, in_channels=1, classes=len(CLASSES),
                 decoder_channels=DECODER_CHANNELS)
    if variant == "unet-dropout":
        for block in m.decoder.blocks:
            for conv in (block.conv1, block.conv2):
                relu = conv[2]
                conv[2] = nn.Sequential(relu, nn.Dropout2d(p))
        if scope == "all":
            for mod in m.encoder.modules():
                if type(mod).__name__ == "BatchNormAct2d" and not isinstance(mod.act, nn.Identity):
                    mod.act = nn.Sequential(mod.act, nn.Dropout2d(p))
        elif scope != "decoder":
            raise InputError(f"unknown dropout scope {scope!r} (decoder or all)")
    m.variant = variant
    m.scope = scope if variant == "unet-dropout" else None
    m.temperature = 1.0
    m.temperature_mc = 1.0
    return m


def set_dropout(model: nn.Module, active: bool) -> None:
    """Dropout layers on (Monte-Carlo sampling) or off, the rest (batch norm) left in eval mode."""
    model.eval()
    for mod in model.modules():
        if isinstance(mod, nn.Dropout2d):
            mod.train(active)


def forward_decoder(model: nn.Module, feats: list[torch.Tensor]) -> torch.Tensor:
    return model.segmentation_head(model.decoder(feats))


def save(model: nn.Module, path: str | Path, card: dict) -> None:
    torch.save({"kind": FILE_KIND, "variant": model.variant, "scope": model.scope, "encoder": ENCODER,
                "decoder_channels": list(DECODER_CHANNELS), "classes": list(CLASSES), "card": card,
                "state_dict": {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}},
               path)


def load(path: str | Path) -> tuple[nn.Module, dict]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such weights file")
    try:
        rec = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 — any unreadable file is the user's input error
        raise InputError(f"{path}: not a selenite segmentation weights file (unreadable as torch weights)") from None
    if not isinstance(rec, dict) or rec.get("kind") != FILE_KIND:
        got = rec.get("kind") if isinstance(rec, dict) else type(rec).__name__
        raise InputError(f"{path}: weights of the wrong kind ({got!r}); segmentation needs {FILE_KIND!r} weights")
    model = build(rec["variant"], scope=rec.get("scope") or "decoder")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in rec["state_dict"].items()})
    model.eval()
    model.temperature = float(rec.get("card", {}).get("temperature", 1.0))
    model.temperature_mc = float(rec.get("card", {}).get("temperature_mc", model.temperature))
    return model, {k: v for k, v in rec.items() if k != "state_dict"}


def default_weights() -> Path:
    return Path(__file__).with_name("weights") / "segment_unet_dropout.pt"
