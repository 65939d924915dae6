"""``build_dataset``: a dataset from its config, ``dict(type=NAME, **kwargs)``."""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import ConcatDataset

from ..registry import DATASETS, BidlError, build


def build_dataset(cfg: dict | Sequence[dict], default_args: dict | None = None):
    """Build the dataset of ``cfg`` from the ``DATASETS`` registry; ``default_args`` fill
    keys the config leaves out. A list of configs gives their concatenation."""
    if isinstance(cfg, (list, tuple)):
        if not cfg:
            raise BidlError("build_dataset: got an empty list of dataset configs")
        return ConcatDataset([build_dataset(c, default_args) for c in cfg])
    return build(cfg, DATASETS, **(default_args or {}))
