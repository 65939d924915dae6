"""Layer-wise learning-rate decay (BEiT, MAE; BIDL's Meta-SpikeFormer fine-tuning):
``optimizer=dict(..., paramwise_cfg=dict(layer_decay_rate=0.75))``.

The layers are a backbone's own order: its stem (and anything before the body) is layer
0, body block ``i`` is layer ``i + 1``, the readout and the classifier's head the last,
``L = len(body) + 1``. A parameter of layer ``l`` trains at ``lr * rate ** (L - l)``, so
the early layers change least. As in those codes, 1-D parameters (biases, norm scales and
shifts) take no weight decay. The schedule scales every group's lr alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from ..registry import BidlError

#: paramwise_cfg keys bidl reads; the others (mmcv's) stay accepted and unused
KEYS = ("layer_decay_rate",)
_BODY = re.compile(r"(?:^|\.)body\.(\d+)\.")
_STEM = re.compile(r"(?:^|\.)stem\.")


def check_paramwise(cfg) -> float | None:
    """The layer decay rate of ``optimizer.paramwise_cfg`` (None when not set)."""
    if cfg is None:
        return None
    if not isinstance(cfg, Mapping):
        raise BidlError(f"optimizer.paramwise_cfg: expected a dict, got {cfg!r:.60}")
    rate = cfg.get("layer_decay_rate")
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise BidlError(
            f"optimizer.paramwise_cfg.layer_decay_rate: expected a number in (0, 1], e.g. "
            f"0.75, got {rate!r}"
        )
    return float(rate)


def layer_of(name: str, layers: int) -> int:
    """The layer id of parameter ``name`` (see the module docstring)."""
    body = _BODY.search(name)
    if body is not None:
        return int(body.group(1)) + 1
    return 0 if _STEM.search(name) else layers


def body_length(model: nn.Module) -> int:
    backbone = getattr(model, "backbone", model)
    body = getattr(backbone, "body", None)
    if not isinstance(body, nn.Sequential):
        raise BidlError(
            f"optimizer.paramwise_cfg.layer_decay_rate: {type(backbone).__name__} has no "
            f"sequential body of layers to decay over; remove layer_decay_rate"
        )
    return len(body)


def layer_decay_groups(model: nn.Module, lr: float, rate: float) -> list[dict]:
    """Parameter groups: one per (layer, decay or not), each with its own lr."""
    layers = body_length(model) + 1
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer, decays = layer_of(name, layers), param.ndim > 1
        group = groups.setdefault(
            (layer, decays), {"params": [], "lr": lr * rate ** (layers - layer), "layer": layer}
        )
        if not decays:  # the others keep the optimizer's weight_decay
            group["weight_decay"] = 0.0
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]


def param_groups(model: nn.Module, cfg: Mapping) -> list[torch.nn.Parameter] | list[dict]:
    """What the optimizer trains: every trainable parameter, or the layer-decay groups."""
    rate = check_paramwise(cfg.get("paramwise_cfg"))
    if rate is None:
        return [p for p in model.parameters() if p.requires_grad]
    if "lr" not in cfg:
        raise BidlError("optimizer: layer_decay_rate scales optimizer.lr; give an lr")
    return layer_decay_groups(model, cfg["lr"], rate)
