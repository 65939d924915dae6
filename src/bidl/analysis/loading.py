"""What ``bidl analyze`` and ``bidl viz`` both load: one split of a config's data, and a
model with a checkpoint's weights."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import load_config
from ..engine.apis import (
    build_datasets,
    build_model,
    default_work_dir,
    find_checkpoint,
    resolve_device,
)
from ..engine.checkpoint import load_weights
from ..registry import BidlError


def load_split(config: str | os.PathLike, split: str, sample_index: int, cfg_options=None):
    """The config and its ``split`` dataset; ``sample_index`` must lie inside it."""

    cfg = load_config(config, cfg_options)
    if not cfg.data.get(split):
        present = [s for s in ("train", "val", "test") if cfg.data.get(s)]
        raise BidlError(f"the config has no data.{split}; use --split with one of {present}")
    dataset = build_datasets(cfg, (split,))[split]
    if not 0 <= sample_index < len(dataset):
        raise BidlError(
            f"--sample {sample_index} is out of range: the {split} split has {len(dataset)} samples"
        )
    return cfg, dataset


def load_trained(cfg, checkpoint, device: str | None, work_dir: str | None):
    """The config's model on ``device`` with the checkpoint's weights (a bare file name is
    looked up in the work dir); returns ``(model, checkpoint path, device)``."""

    dev = resolve_device(device)
    path = find_checkpoint(checkpoint, cfg, work_dir)
    model = build_model(cfg).to(dev)
    load_weights(model, path, map_location=dev)
    return model, path, dev


def output_folder(cfg, out, work_dir: str | None, *parts: str) -> Path:
    """``out`` if given, else ``<work dir>/<parts>`` (the work dir defaults as in training)."""

    return Path(out) if out else Path(work_dir or default_work_dir(cfg)).joinpath(*parts)


__all__ = ["load_split", "load_trained", "output_folder"]
