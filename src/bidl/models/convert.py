"""Read BIDL's checkpoints: BIDL's weight names -> bidl's, for a model bidl built.

BIDL saves the state dict of its backbone under its own module names (``clif1.p0.weight``,
``clif1.lif.alpha``, ``head.0.weight``, ``layer1.0.lif1.lif.theta``, ...), bare or inside
its training checkpoint (``{'state_dict': ..., 'optimizer_state_dict': ...}``), older ones
with mmcv's ``backbone.`` prefix, ``module.`` (data parallel) or ``unit.`` in the names.
Each backbone says which of BIDL's modules each of its own is (``bidl_module_names``); a
spiking layer's parts are matched by kind (projection ``p0``, cell ``lif`` / ``lifplus``,
input-current batch norm ``norm``).

``adapt_state_dict(model, state)`` returns a state dict for ``model``: bidl's own as it
is, BIDL's converted (with one logged note; ST-YOLO's detector names by
``convert_st_yolo``); one that fits neither raises a ``BidlError`` that names the keys
that did not match.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn

from ..neurons import LifPlus, StatefulCell
from ..registry import BidlError
from .convert_st_yolo import convert_st_yolo_state_dict, is_st_yolo_state

logger = logging.getLogger("bidl")

#: name segments BIDL's code or tools add that carry no meaning of their own:
#: data parallel's ``module.``, ``TimeDistributed``'s ``.module.``, old ``unit.``
_NOISE_SEGMENTS = ("module", "unit")


class CheckpointMismatchError(BidlError):
    """A state dict fits neither the model's own names nor BIDL's."""


def find_backbone(model: nn.Module) -> tuple[nn.Module, str] | None:
    """The backbone BIDL knows inside ``model`` and its key prefix (``'backbone.'`` in an
    ``ImageClassifier``, ``''`` for a bare backbone); None when there is none."""
    model = getattr(model, "module", model)  # data parallel
    for candidate, prefix in ((getattr(model, "backbone", None), "backbone."), (model, "")):
        if candidate is not None and hasattr(candidate, "bidl_module_names"):
            return candidate, prefix
    return None


def _part_names(module: nn.Module) -> dict[str, str]:
    """BIDL's name of each weighted part of a bidl spiking layer: the projection is
    ``p0``, the cell ``lif`` (``lifplus`` for LIF+), a batch norm beside them ``norm``."""
    projections = (nn.Conv2d, nn.Linear, nn.Conv1d)
    children = dict(module.named_children())
    if not any(isinstance(c, StatefulCell) for c in children.values()) or not any(
        isinstance(c, projections) for c in children.values()
    ):
        return {}
    names = {}
    for name, child in children.items():
        if isinstance(child, projections):
            names[name] = "p0"
        elif isinstance(child, StatefulCell):
            names[name] = "lifplus" if isinstance(child, LifPlus) else "lif"
        elif isinstance(child, nn.modules.batchnorm._BatchNorm):
            names[name] = "norm"
    return names


def bidl_key_names(backbone: nn.Module) -> dict[str, list[str]]:
    """``{key of backbone.state_dict(): [BIDL's name, older alternatives...]}``; a key of a
    module BIDL does not have maps to ``[]`` (it keeps the model's own value)."""
    modules: dict[str, list[str]] = {}
    for name, refs in backbone.bidl_module_names().items():
        try:
            module = backbone.get_submodule(name)
        except AttributeError:
            continue  # a model segment holds only some of the modules
        refs = [refs] if isinstance(refs, str) else list(refs)
        parts = _part_names(module)
        if parts:
            for part, ref_part in parts.items():
                modules[f"{name}.{part}"] = [f"{ref}.{ref_part}" for ref in refs]
        else:
            modules[name] = refs
    by_length = sorted(modules, key=len, reverse=True)
    names = {}
    for key in backbone.state_dict():
        prefix = next((p for p in by_length if key.startswith(p + ".")), None)
        if prefix is None:
            names[key] = []
            continue
        rest = key[len(prefix) :]
        names[key] = [ref + rest for ref in modules[prefix]]
    return names


def bidl_weights(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """The weights of a BIDL checkpoint (bare, BIDL's training checkpoint, or mmcv's) with
    the names cleaned of ``module.`` / ``backbone.`` / ``unit.`` segments."""
    state = checkpoint
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        state = checkpoint["state_dict"]
    cleaned = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        parts = [p for p in str(key).split(".") if p not in _NOISE_SEGMENTS]
        if parts and parts[0] == "backbone":
            parts = parts[1:]
        cleaned[".".join(parts)] = value
    return cleaned


def _fit(target: torch.Tensor, value: torch.Tensor, key: str, ref: str) -> torch.Tensor:
    """``value`` shaped like ``target`` (BIDL keeps per-channel soma parameters as
    ``[1, C, 1, 1]``; the numbers are the same when only the shape differs by ones)."""
    if value.shape == target.shape:
        return value
    if value.numel() == target.numel():
        return value.reshape(target.shape)
    raise CheckpointMismatchError(
        f"BIDL's {ref!r} has shape {list(value.shape)}, the model's {key!r} "
        f"{list(target.shape)}: the checkpoint was trained with another configuration "
        f"(sizes, nclass, soma_params)"
    )


def convert_bidl_state_dict(model: nn.Module, checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """``model``'s state dict with every weight taken from the BIDL checkpoint (see the
    module docstring); raises ``CheckpointMismatchError`` naming the keys that differ."""
    found = find_backbone(model)
    if found is None:
        raise CheckpointMismatchError(
            f"{type(model).__name__} holds no BIDL backbone: a BIDL checkpoint cannot be read"
        )
    backbone, prefix = found
    weights = bidl_weights(checkpoint)
    names = bidl_key_names(backbone)
    own = backbone.state_dict()
    state, missing, used = {}, [], set()
    for key, refs in names.items():
        ref = next((r for r in refs if r in weights), None)
        if ref is None:
            if refs:
                missing.append(refs[0])
            state[prefix + key] = own[key]  # a part BIDL does not have
            continue
        used.add(ref)
        state[prefix + key] = _fit(own[key], weights[ref], key, ref)
    extra = set(getattr(backbone, "bidl_extra_keys", ()))
    unexpected = sorted(k for k in weights if k not in used and k not in extra)
    if getattr(backbone, "split", None) is not None:
        unexpected = []  # a segment takes its part of the whole model's checkpoint
    if missing or unexpected:
        raise CheckpointMismatchError(
            _mismatch(f"BIDL's names for {type(backbone).__name__}", missing, unexpected)
        )
    full = getattr(model, "module", model).state_dict()
    state.update({k: v for k, v in full.items() if k not in state})  # neck, head buffers
    return state


def _mismatch(what: str, missing: list[str], unexpected: list[str]) -> str:
    def show(keys: list[str]) -> str:
        return ", ".join(keys[:4]) + (f" ... ({len(keys)} in all)" if len(keys) > 4 else "")

    parts = []
    if missing:
        parts.append(f"missing {show(missing)}")
    if unexpected:
        parts.append(f"unexpected {show(unexpected)}")
    return f"{what}: {'; '.join(parts)}"


def _strip_parallel(state: Mapping) -> dict:
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def from_bidl_training_checkpoint(checkpoint):
    """BIDL's training checkpoint ``{'state_dict', 'optimizer_state_dict', 'epoch', ...}``
    as bidl's ``{'state_dict', 'meta': {'epoch': epochs done}}``; anything else as it is.
    The optimizer state stays behind: BIDL's optimizer also holds the soma parameters, so
    its entries do not line up with bidl's."""
    if (
        not isinstance(checkpoint, dict)
        or "meta" in checkpoint
        or "optimizer_state_dict" not in checkpoint
        or not isinstance(checkpoint.get("state_dict"), Mapping)
    ):
        return checkpoint
    epoch = checkpoint.get("epoch")
    done = isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0
    return {
        "state_dict": dict(checkpoint["state_dict"]),
        "meta": {"epoch": epoch + 1} if done else {},
    }


def adapt_state_dict(
    model: nn.Module,
    state: Mapping,
    source: str = "checkpoint",
    strict: bool = True,
    error: type[BidlError] = CheckpointMismatchError,
) -> dict:
    """The state dict to load into ``model``: ``state`` itself when its names are the
    model's, BIDL's weights converted when they fit BIDL's names for the model (one note
    is logged). With ``strict``, a state that fits neither raises ``error`` naming the
    keys that did not match either way."""
    own_names = set(getattr(model, "module", model).state_dict())
    plain = _strip_parallel(state)
    if set(plain) == own_names or (not strict and set(plain) & own_names):
        return plain
    if is_st_yolo_state(plain):
        converted = convert_st_yolo_state_dict(model, plain, source, error)
        logger.info(
            "%s holds BIDL ST-YOLO's weight names; converted to bidl's Detector "
            "(`bidl convert-checkpoint` writes a bidl checkpoint once)",
            source,
        )
        return converted
    if find_backbone(model) is None:
        return plain  # nothing to convert to; the caller's load reports the mismatch
    try:
        converted = convert_bidl_state_dict(model, state)
    except CheckpointMismatchError as bidl_err:
        if not strict:
            return plain
        missing = sorted(own_names - set(plain))
        unexpected = sorted(set(plain) - own_names)
        raise error(
            f"{source} fits neither this model's names ({_mismatch('bidl', missing, unexpected)}) "
            f"nor {bidl_err}. Was it trained with another config?"
        ) from None
    backbone, _ = find_backbone(model)
    logger.info(
        "%s holds BIDL's weight names; converted to bidl's %s (`bidl convert-checkpoint` "
        "writes a bidl checkpoint once)",
        source,
        type(backbone).__name__,
    )
    return converted
