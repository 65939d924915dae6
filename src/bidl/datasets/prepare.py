"""``bidl data prepare NAME``: build every split's cache of a dataset and summarise it."""

from __future__ import annotations

from ..registry import DATASETS, BidlError
from .cache import describe_split
from .cached_dataset import CachedDataset


def prepare_dataset(name: str, root: str | None, raw: str | None = None, options=None) -> list[str]:
    """Build (or reuse) the caches of every split of dataset ``name`` under ``root``;
    returns summary lines (samples per split and class, tensor shape, size on disk)."""
    cls = DATASETS.get(name)
    if root is None:
        raise BidlError(f"bidl data prepare {name}: give --root, the dataset folder")
    options = dict(options or {})
    if not issubclass(cls, CachedDataset):
        dataset = cls(data_prefix=root, **options)
        return [
            f"{name} reads its files on access; nothing to cache. {len(dataset)} train samples in {root}"
        ]
    lines = []
    for split in cls.SPLITS:
        try:
            dataset = cls(root, raw_prefix=raw, split=split, verbose=True, **options)
        except BidlError as err:
            if split == "train":
                raise
            lines.append(f"{split}: skipped ({str(err).splitlines()[0]})")
            continue
        lines.append(describe_split(dataset.meta, split))
    lines.append(f"cache: {dataset.cache_folder}")
    return lines
