"""Checkpoint I/O: atomic writes (temp file + rename) and code-free loading."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from .. import fileio
from ..registry import BidlError


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
    random.setstate(_as_tuple(states["python"]))
    numpy_state = states["numpy"]
    keys = numpy_state["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        ("MT19937", keys, numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"])
    )
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def save_checkpoint(
    path, model: torch.nn.Module, optimizer=None, meta: dict | None = None, scaler=None
) -> Path:
    """Write ``{meta, state_dict, optimizer[, scaler]}`` atomically."""
    checkpoint = {"meta": dict(meta or {}), "state_dict": _unwrap(model).state_dict()}
    if optimizer is not None:
        checkpoint["optimizer"] = optimizer.state_dict()
    if scaler is not None:
        checkpoint["scaler"] = scaler.state_dict()
    return atomic_write(path, lambda handle: torch.save(checkpoint, handle))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint without running code from it (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"could not load checkpoint {str(path)!r}: {type(err).__name__}: {err}. "
            f"bidl loads weights only and never runs code from a checkpoint; a truncated or "
            f"foreign file cannot be read."
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{str(path)!r} is not a bidl checkpoint (got {type(checkpoint)})")
    if "state_dict" not in checkpoint and all(
        isinstance(v, torch.Tensor) for v in checkpoint.values()
    ):
        checkpoint = {"state_dict": checkpoint, "meta": {}}  # a bare state dict
    if "state_dict" not in checkpoint:
        raise CheckpointError(f"{str(path)!r} has no 'state_dict'; keys: {sorted(checkpoint)}")
    return checkpoint


def load_weights(model: torch.nn.Module, path, map_location="cpu", strict: bool = True) -> dict:
    """Load a checkpoint's weights into ``model``; mismatches name the offending keys."""
    checkpoint = load_checkpoint(path, map_location)
    state = {k.removeprefix("module."): v for k, v in checkpoint["state_dict"].items()}
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
