"""The model zoo at a glance: every registered backbone, its size and its input."""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from ...registry import BACKBONES


class BackboneSummary(NamedTuple):
    name: str
    cls: str
    mode: str  # 'EIM' (time loop outside) | 'IIM' (inside the layers)
    parameters: int
    input_layout: str  # e.g. '[B, 10, 2, 128, 128]'


@cache
def _class_summary(cls: type) -> tuple[int, str]:
    model = cls()  # the size does not depend on the loop mode or the neuron model
    dims = ", ".join(str(s) for s in (model.timestep, *model.input_shape))
    kind = " token ids" if model.input_kind == "tokens" else ""
    return sum(p.numel() for p in model.parameters()), f"[B, {dims}]{kind}"


def summarize_backbone(name: str) -> BackboneSummary:
    """Describe backbone ``name`` as built with its defaults."""
    factory = BACKBONES.get(name)
    cls = getattr(factory, "backbone_class", factory)
    inner = getattr(factory, "defaults", {}).get("use_inner_loop", False)
    parameters, layout = _class_summary(cls)
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
