"""Build an optimizer from ``optimizer=dict(type='SGD', lr=..., ...)``: any torch.optim class."""

from __future__ import annotations

import difflib
import inspect

import torch

from ..registry import BidlError


def optimizer_names() -> list[str]:
    return sorted(
        name
        for name, obj in vars(torch.optim).items()
        if inspect.isclass(obj)
        and issubclass(obj, torch.optim.Optimizer)
        and obj is not torch.optim.Optimizer
    )


def build_optimizer(model: torch.nn.Module, cfg: dict) -> torch.optim.Optimizer:
    cfg = dict(cfg)
    name = cfg.pop("type", None)
    if name is None:
        raise BidlError("optimizer config needs a 'type', e.g. optimizer=dict(type='SGD', lr=0.1)")
    if name not in optimizer_names():
        close = difflib.get_close_matches(name, optimizer_names(), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise BidlError(f"unknown optimizer {name!r}{hint}; any torch.optim class name works")
    cfg.pop("paramwise_cfg", None)
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return getattr(torch.optim, name)(params, **cfg)
    except TypeError as err:
        raise BidlError(
            f"optimizer {name!r}: {err}; check the keys of `optimizer` in the config"
        ) from None
