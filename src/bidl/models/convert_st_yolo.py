"""Read BIDL's ST-YOLO checkpoints (``applications/dvsdetection/st-yolo``) into bidl's
``Detector``, and write bidl's weights under BIDL's names.

BIDL's ST-YOLO trains with PyTorch Lightning: its ``LightningModule`` holds the detector as
``mdl`` (``YoloV5Detector``: ``backbone``, ``fpn``, ``yolox_head``), so the checkpoint's
``state_dict`` names are ``mdl.backbone.conv2.act.alpha``, ``mdl.fpn.C3_p4.conv1.conv.weight``,
``mdl.yolox_head.cls_preds.0.weight``; BIDL's own deployment scripts strip the ``mdl.``.
Beside the weights the file holds ``epoch``, ``global_step``, ``optimizer_states``,
``lr_schedulers``, ``loops``, ``callbacks`` and possibly ``hyper_parameters`` (omegaconf
objects); those are left aside (see ``bidl.engine.safe_load`` for how the file is read).

The names map one to one onto bidl's:

=============================  =======================================================
BIDL                           bidl
=============================  =======================================================
``mdl.backbone.<m>``           ``backbone.body.yolo.<m>``, the LIF cell ``act`` -> ``neuron``
``mdl.fpn.<m>``                ``neck.<m>``, YOLOX's CSP convolutions ``convN`` -> ``cvN``
``mdl.yolox_head.<m>``         ``head.<m>``
=============================  =======================================================

BIDL keeps each LIF cell's soma constants per channel as ``[1, C, 1, 1]``, bidl as ``[C]``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from ..registry import BidlError
from .backbones.st_yolo import StYolo
from .detector import Detector

#: bidl's module prefix -> BIDL's (with Lightning's ``mdl.``)
_PARTS = (
    ("backbone.body.yolo.", "mdl.backbone."),
    ("neck.", "mdl.fpn."),
    ("head.", "mdl.yolox_head."),
)
_SOMA = ("alpha", "beta", "theta", "v_0")
_HINT = (
    "Use the config the checkpoint was trained with (st_yolov5n-b8x6-gen1, "
    "st_yolov5s-b8x6-gen1 or st_yolov5x-b8x6-gen1 for BIDL's yolov5n / yolov5s / yolov5x) "
    "and its class and input-channel counts (--cfg-options model.head.num_classes=N "
    "model.backbone.input_channels=C)"
)


def st_yolo_name(key: str) -> str | None:
    """BIDL's (Lightning) name of a bidl ST-YOLO detector key; None for a key BIDL lacks."""
    for own, theirs in _PARTS:
        if not key.startswith(own):
            continue
        parts = key[len(own) :].split(".")
        if own == "neck.":  # YOLOX's CSPLayer and Bottleneck call theirs conv1, conv2, ...
            parts = [re.sub(r"^cv(\d)$", r"conv\1", p) for p in parts]
        elif own.startswith("backbone."):  # BIDL's Conv_lif calls its LIF cell ``act``
            parts = ["act" if p == "neuron" else p for p in parts]
        return theirs + ".".join(parts)
    return None


def is_st_yolo_detector(model: nn.Module) -> bool:
    model = getattr(model, "module", model)
    return isinstance(model, Detector) and isinstance(model.backbone, StYolo)


def st_yolo_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """``model``'s weights under BIDL's names and shapes, as BIDL's Lightning module's
    ``state_dict()`` gives them (BIDL's tools load it, e.g. its compile scripts)."""
    model = getattr(model, "module", model)
    if not is_st_yolo_detector(model):
        raise BidlError(
            f"{type(model).__name__} is not an ST-YOLO detector (Detector with a "
            f"YoloDetN / YoloDetS / YoloDetX / StYolo backbone): BIDL has no names for it"
        )
    out = OrderedDict()
    for key, value in model.state_dict().items():
        name = st_yolo_name(key)
        if name is None:
            raise BidlError(f"{key!r} has no counterpart in BIDL's ST-YOLO")
        if key.rsplit(".", 1)[-1] in _SOMA and ".neuron." in key and value.dim() == 1:
            value = value.reshape(1, -1, 1, 1)  # BIDL's channel_share shape
        out[name] = value.detach().clone()
    return out


def is_st_yolo_state(state: Mapping) -> bool:
    """Whether ``state`` has BIDL ST-YOLO's names (with or without Lightning's ``mdl.``)."""
    keys = [_lightning_key(str(k)) for k in state]
    return any(k.startswith(("mdl.fpn.", "mdl.yolox_head.")) for k in keys) and all(
        k.startswith(tuple(theirs for _, theirs in _PARTS)) for k in keys
    )


def _lightning_key(key: str) -> str:
    """``key`` with data parallel's ``module.`` dropped and Lightning's ``mdl.`` added where
    BIDL's scripts stripped it."""
    key = key.removeprefix("module.")
    if key.startswith(("backbone.", "fpn.", "yolox_head.")):
        return "mdl." + key
    return key


def _fit(target: torch.Tensor, value: torch.Tensor, key: str) -> torch.Tensor | None:
    """``value`` shaped as ``target``; None when it cannot be (soma constants: BIDL's
    ``[1, C, 1, 1]`` or one shared value become bidl's ``[C]``)."""
    if value.shape == target.shape:
        return value
    if key.rsplit(".", 1)[-1] in _SOMA:
        if value.numel() == target.numel():
            return value.reshape(target.shape)
        if value.numel() == 1:
            return value.reshape(()).expand(target.shape).clone()
    return None


def convert_st_yolo_state_dict(
    model: nn.Module,
    state: Mapping,
    source: str = "checkpoint",
    error: type[BidlError] = BidlError,
) -> OrderedDict[str, torch.Tensor]:
    """``model``'s state dict from BIDL ST-YOLO's ``state``; one ``error`` naming the first
    key that is missing, unexpected or shaped otherwise (and how many more there are)."""
    model = getattr(model, "module", model)
    if not is_st_yolo_detector(model):
        raise error(
            f"{source} holds BIDL's ST-YOLO weights (mdl.backbone / mdl.fpn / mdl.yolox_head), "
            f"but the config's model is {type(model).__name__} with "
            f"{type(getattr(model, 'backbone', None)).__name__}. {_HINT}."
        )
    weights = {_lightning_key(str(k)): v for k, v in state.items()}
    problems, out, used = [], OrderedDict(), set()
    for key, target in model.state_dict().items():
        name = st_yolo_name(key)
        if name not in weights:
            problems.append(f"it has no {name!r} (the model's {key!r})")
            continue
        used.add(name)
        value = _fit(target, weights[name], key)
        if value is None:
            problems.append(
                f"its {name!r} has shape {list(weights[name].shape)}, the model's {key!r} "
                f"{list(target.shape)}"
            )
            continue
        out[key] = value
    problems += [f"its {k!r} has no place in the model" for k in weights if k not in used]
    if problems:
        more = f" (and {len(problems) - 1} more differences)" if len(problems) > 1 else ""
        raise error(
            f"{source} holds BIDL's ST-YOLO weights that do not fit this config's detector "
            f"({_describe(model)}): {problems[0]}{more}. {_HINT}."
        )
    return out


def _describe(model: Detector) -> str:
    backbone = model.backbone
    channels = backbone.channels
    return (
        f"{type(backbone).__name__} with channels {list(channels)}, "
        f"{backbone.body.yolo.conv1.conv.in_channels} input channels, "
        f"{model.num_classes} classes"
    )


def is_lightning_checkpoint(checkpoint) -> bool:
    """A PyTorch Lightning checkpoint (what BIDL's ST-YOLO training saves)."""
    return (
        isinstance(checkpoint, Mapping)
        and isinstance(checkpoint.get("state_dict"), Mapping)
        and (
            "pytorch-lightning_version" in checkpoint
            or {"optimizer_states", "loops", "callbacks"} & set(checkpoint)
        )
    )


def from_lightning_checkpoint(checkpoint: Mapping) -> dict:
    """A Lightning checkpoint as bidl's ``{'state_dict', 'meta'}``: the weights only (the
    optimizer, scheduler and loop states are Lightning's and BIDL's, not bidl's), and where
    they came from in ``meta``."""
    meta = {"source": "PyTorch Lightning checkpoint (BIDL ST-YOLO)"}
    for key in ("epoch", "global_step"):
        value = checkpoint.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            meta[f"source_{key}"] = value
    state = {str(k): v for k, v in checkpoint["state_dict"].items() if isinstance(v, torch.Tensor)}
    return {"state_dict": state, "meta": meta}
