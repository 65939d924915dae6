"""Checkpoint I/O: atomic writes (temp file + rename) and code-free loading."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import numpy as np
import torch

from .. import fileio
from ..models.convert import adapt_state_dict, from_bidl_training_checkpoint
from ..models.convert_st_yolo import from_lightning_checkpoint, is_lightning_checkpoint
from ..registry import BidlError
from .safe_load import load_without_code

logger = logging.getLogger("bidl")


class CheckpointError(BidlError):
    """A checkpoint could not be written or read."""


class CheckpointWriteError(CheckpointError, fileio.WriteError):
    """A checkpoint could not be written (full disk, read-only or quota-limited folder)."""


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(file_object)`` on a temp file beside ``path``, then rename it into place.

    A crash or a full disk part-way leaves the previous file at ``path`` untouched."""
    return fileio.atomic_write(
        path, write, error=CheckpointWriteError, hint="Free disk space or pick another --work-dir."
    )


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files that ``atomic_write`` leaves when its process is killed mid-write
    (a SIGKILL gives it no chance to clean up); a live writer's temp file stays."""
    return fileio.remove_stale_temp_files(folder)


def rng_states() -> dict:
    """Every random generator training uses, in a form ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore ``rng_states()``; the states may come from a checkpoint loaded onto a GPU
    (``map_location``), generators take them from host memory."""
    random.setstate(_as_tuple(states["python"]))
    numpy_state = states["numpy"]
    keys = numpy_state["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state(
        ("MT19937", keys, numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"])
    )
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in states["cuda"]])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def save_checkpoint(
    path,
    model: torch.nn.Module,
    optimizer=None,
    meta: dict | None = None,
    scaler=None,
    extra: dict | None = None,
) -> Path:
    """Write ``{meta, state_dict, optimizer[, scaler]}`` and ``extra``'s entries (e.g. an
    EMA's ``train_state_dict``) atomically."""
    checkpoint = {"meta": dict(meta or {}), "state_dict": _unwrap(model).state_dict()}
    checkpoint.update(extra or {})
    if optimizer is not None:
        checkpoint["optimizer"] = optimizer.state_dict()
    if scaler is not None:
        checkpoint["scaler"] = scaler.state_dict()
    return atomic_write(path, lambda handle: torch.save(checkpoint, handle))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint without running code from it (``weights_only=True``; a PyTorch
    Lightning file, which pickles more than tensors, through ``safe_load``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        checkpoint = _lightning_checkpoint(path)
        if checkpoint is not None:
            return _checked_checkpoint(checkpoint, path)
        raise CheckpointError(
            f"could not load checkpoint {str(path)!r}: {type(err).__name__}: {err}. "
            f"bidl loads weights only and never runs code from a checkpoint; a truncated or "
            f"foreign file cannot be read."
        ) from None
    return _checked_checkpoint(checkpoint, path)


def _lightning_checkpoint(path: Path) -> dict | None:
    """A PyTorch Lightning checkpoint (BIDL's ST-YOLO saves them) read by
    ``safe_load.load_without_code``: it pickles configs and loop states that
    ``weights_only`` refuses; only its tensors are taken. None for any other file."""
    try:
        checkpoint, skipped = load_without_code(path)
    except Exception:
        return None
    if not is_lightning_checkpoint(checkpoint):
        return None
    if skipped:
        logger.info(
            "%s: PyTorch Lightning checkpoint; its weights read, %d pickled objects left "
            "unbuilt (%s)",
            path,
            len(skipped),
            ", ".join(skipped[:4]) + (" ..." if len(skipped) > 4 else ""),
        )
    return checkpoint


def _checked_checkpoint(checkpoint, path) -> dict:
    """The checks and layouts of ``load_checkpoint`` on an object already read from ``path``."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{str(path)!r} is not a bidl checkpoint (got {type(checkpoint)})")
    if is_lightning_checkpoint(checkpoint):
        checkpoint = from_lightning_checkpoint(checkpoint)  # BIDL ST-YOLO's training file
    checkpoint = from_bidl_training_checkpoint(checkpoint)  # BIDL's own file format
    if "state_dict" not in checkpoint and all(
        isinstance(v, torch.Tensor) for v in checkpoint.values()
    ):
        checkpoint = {"state_dict": checkpoint, "meta": {}}  # a bare state dict
    if "state_dict" not in checkpoint:
        keys = sorted(str(k) for k in checkpoint)
        raise CheckpointError(f"{str(path)!r} has no 'state_dict'; keys: {keys}")
    state = checkpoint["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(
            f"{str(path)!r}: 'state_dict' must map parameter names to tensors; the file is "
            f"damaged or not a bidl checkpoint"
        )
    checkpoint.setdefault("meta", {})
    if not isinstance(checkpoint["meta"], dict):
        raise CheckpointError(
            f"{str(path)!r}: 'meta' must be a dict, got {type(checkpoint['meta']).__name__}"
        )
    return checkpoint


def check_resumable(checkpoint: dict, path) -> None:
    """What resuming reads beyond the weights, checked before anything is changed: epoch
    and iteration counters, the optimizer and scaler states and the random generators."""

    def bad(what: str) -> CheckpointError:
        return CheckpointError(
            f"cannot resume from {str(path)!r}: {what}. The file is damaged or was written "
            f"by another tool; resume from another checkpoint, or take only its weights with "
            f"load_from={str(path)!r}"
        )

    meta = checkpoint["meta"]
    for key in ("epoch", "iter"):
        value = meta.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f"meta[{key!r}] is {value!r}, not an int >= 0")
    world = meta.get("world_size", 1)
    if not isinstance(world, int) or isinstance(world, bool) or world < 1:
        raise bad(f"meta['world_size'] is {world!r}, not a positive int")
    best = meta.get("best_top1", 0.0)
    if isinstance(best, bool) or not isinstance(best, int | float):
        raise bad(f"meta['best_top1'] is {best!r}, not a number")
    for key in ("optimizer", "scaler"):
        if key in checkpoint and not isinstance(checkpoint[key], dict):
            raise bad(f"{key!r} is a {type(checkpoint[key]).__name__}, not a dict")
    optimizer = checkpoint.get("optimizer")
    if optimizer is not None and not (
        isinstance(optimizer.get("state"), dict) and isinstance(optimizer.get("param_groups"), list)
    ):
        raise bad("'optimizer' has no 'state' dict and 'param_groups' list")
    if "rng" in meta:
        _check_rng(meta["rng"], bad)


def _check_rng(rng, bad) -> None:
    if not isinstance(rng, dict) or not {"python", "numpy", "torch"} <= set(rng):
        raise bad("meta['rng'] lacks the python, numpy and torch generator states")
    python = rng["python"]
    if not (
        isinstance(python, list | tuple)
        and len(python) == 3
        and isinstance(python[1], list | tuple)
        and all(isinstance(v, int) for v in python[1])
    ):
        raise bad("meta['rng']['python'] is not a Python generator state")
    numpy_state = rng["numpy"]
    keys = numpy_state.get("keys") if isinstance(numpy_state, dict) else None
    if not (
        isinstance(keys, torch.Tensor)
        and keys.shape == (624,)
        and all(isinstance(numpy_state.get(k), int) for k in ("pos", "has_gauss"))
        and isinstance(numpy_state.get("gauss"), float | int)
    ):
        raise bad("meta['rng']['numpy'] is not a numpy generator state")
    if not isinstance(rng["torch"], torch.Tensor) or rng["torch"].dtype != torch.uint8:
        raise bad("meta['rng']['torch'] is not a torch generator state")
    cuda = rng.get("cuda", [])
    if not isinstance(cuda, list | tuple) or not all(
        isinstance(s, torch.Tensor) and s.dtype == torch.uint8 for s in cuda
    ):
        raise bad("meta['rng']['cuda'] is not a list of CUDA generator states")


def nonfinite_tensors(state: dict) -> list[str]:
    """Names of the floating tensors of ``state`` that hold NaN or inf."""
    return [
        name
        for name, value in state.items()
        if torch.is_floating_point(value) and not bool(torch.isfinite(value).all())
    ]


def load_weights(model: torch.nn.Module, path, map_location="cpu", strict: bool = True) -> dict:
    """Load a checkpoint's weights into ``model``; mismatches name the offending keys."""
    checkpoint = load_checkpoint(path, map_location)
    state = {k.removeprefix("module."): v for k, v in checkpoint["state_dict"].items()}
    bad = nonfinite_tensors(state)
    if bad:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has NaN or infinite weights in {', '.join(bad[:5])}"
            f"{' ...' if len(bad) > 5 else ''}; the run that wrote it diverged. Use an earlier "
            f"checkpoint (epoch_N.pth, best.pth)."
        )
    source = f"checkpoint {str(path)!r}"
    state = adapt_state_dict(_unwrap(model), state, source, strict, CheckpointError)
    try:
        _unwrap(model).load_state_dict(state, strict=strict)
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this model: {err}. "
            f"Was it trained with another config?"
        ) from None
    return checkpoint


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model
