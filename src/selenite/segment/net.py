"""The segmentation network: a U-Net (segmentation-models-pytorch) on a MobileNetV3-small encoder, one grey input
channel, four classes; ``unet-dropout`` adds Dropout2d after every ReLU of the decoder for Monte-Carlo dropout.

LunarSite put Dropout2d (p = 0.1) after every ReLU of the whole network. Here the encoder stays deterministic so
that Monte-Carlo passes re-run the decoder only on cached encoder features — what makes 20 passes affordable on a
CPU; the decoder's dropout carries the epistemic spread. A deep ensemble (Lakshminarayanan et al. 2017) is a
list of such U-Nets trained from different seeds (initialisation and data order); its members' disagreement is the
epistemic term, with or without dropout. Weights files are torch dicts with ``kind`` ("selenite-segment"), the
model ``variant``, one ``state_dict`` or a list ``members`` of them, and a model card; loading refuses anything else.
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


class Ensemble(nn.Module):
    """A deep ensemble: members of one variant, each run on its own; predictions average their softmax."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise InputError("an ensemble needs at least one member")
        kinds = {f"{m.variant} (dropout: {m.scope})" if m.scope else m.variant for m in members}
        if len(kinds) != 1:
            raise InputError(f"ensemble members must be of one kind (got {'; '.join(sorted(kinds))})")
        self.members = nn.ModuleList(members)
        self.variant = members[0].variant
        self.scope = members[0].scope
        self.temperature = 1.0
        self.temperature_mc = 1.0


def members_of(model: nn.Module) -> list[nn.Module]:
    return list(model.members) if isinstance(model, Ensemble) else [model]


def set_dropout(model: nn.Module, active: bool) -> None:
    """Dropout layers on (Monte-Carlo sampling) or off, the rest (batch norm) left in eval mode."""
    model.eval()
    for mod in model.modules():
        if isinstance(mod, nn.Dropout2d):
            mod.train(active)


def forward_decoder(model: nn.Module, feats: list[torch.Tensor]) -> torch.Tensor:
    return model.segmentation_head(model.decoder(feats))


def _half(model: nn.Module) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def save(model: nn.Module, path: str | Path, card: dict) -> None:
    rec = {"kind": FILE_KIND, "variant": model.variant, "scope": model.scope, "encoder": ENCODER,
           "decoder_channels": list(DECODER_CHANNELS), "classes": list(CLASSES), "card": card}
    if isinstance(model, Ensemble):
        rec["members"] = [_half(m) for m in model.members]
    else:
        rec["state_dict"] = _half(model)
    torch.save(rec, path)


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
    states = rec["members"] if "members" in rec else [rec.get("state_dict")]
    members = []
    for sd in states:
        m = build(rec["variant"], scope=rec.get("scope") or "decoder")
        try:
            m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
        except (RuntimeError, AttributeError, TypeError):
            raise InputError(f"{path}: weights do not fit selenite's segmentation network") from None
        members.append(m)
    model = Ensemble(members) if "members" in rec else members[0]
    model.eval()
    model.temperature = float(rec.get("card", {}).get("temperature", 1.0))
    model.temperature_mc = float(rec.get("card", {}).get("temperature_mc", model.temperature))
    return model, {k: v for k, v in rec.items() if k not in ("state_dict", "members")} | {"n_members": len(members)}


def default_weights() -> Path:
    return Path(__file__).with_name("weights") / "segment_unet_dropout.pt"


def shipped_weights() -> list[Path]:
    """Every weights file in the package: the default first."""
    d = default_weights()
    return [d] + sorted(p for p in d.parent.glob("*.pt") if p != d)
