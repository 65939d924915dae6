"""Build an optimizer from ``optimizer=dict(type='SGD', lr=..., ...)``: any torch.optim
class, or one of bidl's own (``Lamb``)."""

from __future__ import annotations

import difflib
import inspect

import torch

from ..registry import BidlError
from .lamb import Lamb
from .layer_decay import check_paramwise, param_groups

#: optimizers torch.optim lacks that BIDL's applications train with
OWN_OPTIMIZERS = {"Lamb": Lamb}


def optimizer_names() -> list[str]:
    return sorted(
        [
            name
            for name, obj in vars(torch.optim).items()
            if inspect.isclass(obj)
            and issubclass(obj, torch.optim.Optimizer)
            and obj is not torch.optim.Optimizer
        ]
        + list(OWN_OPTIMIZERS)
    )


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_optimizer(cfg) -> type:
    """Check ``optimizer=dict(type=..., **kwargs)`` against the torch.optim class it names:
    the class exists, it takes every key, and each value has the type of that key's default.
    Returns the class; a mistake raises a ``BidlError`` naming ``optimizer.<key>``."""
    if not isinstance(cfg, dict):
        raise BidlError(f"optimizer: expected a dict such as dict(type='SGD', lr=0.1), got {cfg!r}")
    name = cfg.get("type")
    if name is None:
        raise BidlError("optimizer config needs a 'type', e.g. optimizer=dict(type='SGD', lr=0.1)")
    if not isinstance(name, str) or name not in optimizer_names():
        close = difflib.get_close_matches(str(name), optimizer_names(), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise BidlError(
            f"optimizer.type: unknown optimizer {name!r}{hint}; any torch.optim class name "
            f"works, or {', '.join(OWN_OPTIMIZERS)}"
        )
    cls = OWN_OPTIMIZERS.get(name) or getattr(torch.optim, name)
    check_paramwise(cfg.get("paramwise_cfg"))
    params = dict(inspect.signature(cls).parameters)
    params.pop("params", None)
    for key, value in cfg.items():
        if key in ("type", "paramwise_cfg"):
            continue
        if key not in params:
            close = difflib.get_close_matches(key, params, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BidlError(
                f"optimizer.{key}: {name} takes no key {key!r}{hint}; it takes {', '.join(params)}"
            )
        default = params[key].default
        if value is None and "None" in str(params[key].annotation):
            continue  # an optional setting turned off (Lamb's max_grad_norm=None)
        if isinstance(default, bool):
            ok, expected = isinstance(value, bool), "True or False"
        elif _is_number(default):
            ok, expected = _is_number(value), "a number"
        elif isinstance(default, tuple):
            ok = isinstance(value, list | tuple) and len(value) == len(default)
            ok = ok and all(_is_number(v) for v in value)
            expected = f"a list of {len(default)} numbers"
        else:  # required, None or anything else: torch checks it
            ok, expected = True, ""
        if not ok:
            raise BidlError(f"optimizer.{key}: expected {expected}, got {value!r} ({name})")
    return cls


#: torch optimizers with a fused CUDA implementation (one multi-tensor kernel a step)
FUSED_ON_CUDA = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adagrad)


def _fuses(cls: type, params, cfg: dict) -> bool:
    """Whether to default to ``fused=True``: a fused torch optimizer, every parameter a
    floating-point CUDA tensor, and the config choosing neither ``fused`` nor ``foreach``.
    The foreach default launches about ten kernels a step from Python; the fused one, one."""
    if cls not in FUSED_ON_CUDA or "fused" in cfg or "foreach" in cfg or cfg.get("differentiable"):
        return False
    tensors = [
        p for group in params for p in (group["params"] if isinstance(group, dict) else [group])
    ]
    return bool(tensors) and all(t.is_cuda and t.is_floating_point() for t in tensors)


def build_optimizer(model: torch.nn.Module, cfg: dict) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names over ``model``'s trainable parameters; on CUDA, torch's
    fused implementation unless the config picks one (``_fuses``)."""
    cls = check_optimizer(cfg)
    params = list(param_groups(model, cfg))  # all trainable ones, or layer-decay groups
    cfg = dict(cfg)
    cfg.pop("type")
    cfg.pop("paramwise_cfg", None)
    if _fuses(cls, params, cfg):
        cfg["fused"] = True
    try:
        return cls(params, **cfg)
    except (TypeError, ValueError) as err:
        raise BidlError(
            f"optimizer {cls.__name__!r}: {err}; check the keys of `optimizer` in the config"
        ) from None
