"""The model zoo at a glance: every registered backbone, its size and its input."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ...registry import BACKBONES


class BackboneSummary(NamedTuple):
    name: str
    cls: str
    mode: str  # 'EIM' (time loop outside) | 'IIM' (inside the layers)
    parameters: int
    input_layout: str  # e.g. '[B, 10, 2, 128, 128]'


#: factory defaults that say where the time loop runs, not what is built
_LOOP_KEYS = ("use_inner_loop", "readout")


_SUMMARIES: dict[tuple[type, str], tuple[int, str]] = {}


def _summary(cls: type, settings: dict) -> tuple[int, str]:
    """Parameters and input layout of ``cls(**settings)``, once per class and settings;
    built on the meta device, so that no weights are allocated or initialised."""
    key = (cls, repr(settings))
    if key not in _SUMMARIES:
        with torch.device("meta"):
            model = cls(**settings)
        dims = ", ".join(str(s) for s in (model.timestep, *model.input_shape))
        kind = " token ids" if model.input_kind == "tokens" else ""
        parameters = sum(p.numel() for p in model.parameters())
        _SUMMARIES[key] = parameters, f"[B, {dims}]{kind}"
    return _SUMMARIES[key]


def summarize_backbone(name: str) -> BackboneSummary:
    """Describe backbone ``name`` as built with its defaults."""
    factory = BACKBONES.get(name)
    cls = getattr(factory, "backbone_class", factory)
    defaults = getattr(factory, "defaults", {})
    # a sequence-only network (temporal attention) has the IIM form alone
    inner = defaults.get("use_inner_loop", getattr(cls, "sequence_only", False))
    settings = {k: v for k, v in sorted(defaults.items()) if k not in _LOOP_KEYS}
    parameters, layout = _summary(cls, settings)
    return BackboneSummary(name, cls.__name__, "IIM" if inner else "EIM", parameters, layout)


def describe_backbones() -> list[str]:
    """One aligned line per registered backbone name (``bidl list models``)."""
    rows = [summarize_backbone(name) for name in BACKBONES.names()]
    width = max(len(row.name) for row in rows)
    cls_width = max(len(row.cls) for row in rows)
    return [
        f"{row.name:<{width}}  {row.cls:<{cls_width}}  {row.mode}  "
        f"{row.parameters:>12,d} params  input {row.input_layout}"
        for row in rows
    ]
