"""``CachedDataset``: a ``BaseDataset`` whose raw files are decoded once into a
memory-mapped cache (``bidl.datasets.cache``), so an epoch never re-decodes them.

A subclass says where its raw files are and how to read them:

- ``list_samples(split)`` returns ``(refs, labels)``: cheap references to each sample
  (paths, segments) and their labels, failing with ``DatasetNotFoundError`` if the raw
  files are missing;
- ``decode(ref)`` returns one sample's array (``[T, C, H, W]`` or ``[T, L]``);
- ``cache_params()`` returns the options that change the decoded arrays.

The cache lives in ``<cache_dir>/<ClassName>-<hash of the options>/``; different options
get different folders, so they coexist.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..locking import dataset_lock, waiting_lock
from ..registry import BidlError
from . import cache
from .base import BaseDataset, DatasetNotFoundError


class CachedDataset(BaseDataset):
    #: one line naming the source format (shown by ``bidl list datasets``)
    SOURCE = ""
    #: the raw folder layout the reader expects (shown when files are missing)
    LAYOUT = ""
    #: the registry name used in ``bidl data prepare NAME``
    PREPARE_NAME = ""
    SPLITS = ("train", "test")

    def __init__(
        self,
        data_prefix: str,
        pipeline: Sequence[dict] = (),
        test_mode: bool = False,
        raw_prefix: str | None = None,
        cache_dir: str | None = None,
        split: str | None = None,
        auto_prepare: bool = True,
        verbose: bool = False,
        classes: Sequence[str] | None = None,
        ann_file: str | None = None,
    ):
        self.raw_prefix = Path(raw_prefix if raw_prefix is not None else data_prefix)
        self.cache_root = Path(cache_dir if cache_dir is not None else data_prefix) / "bidl_cache"
        self.split = split or ("test" if test_mode else "train")
        if self.split not in self.SPLITS:
            raise BidlError(
                f"{type(self).__name__}: split must be one of {self.SPLITS}, got {self.split!r}"
            )
        self.auto_prepare = auto_prepare
        self.verbose = verbose
        self.meta: dict = {}
        super().__init__(
            data_prefix=data_prefix,
            pipeline=pipeline,
            classes=classes,
            ann_file=ann_file,
            test_mode=test_mode,
        )

    # --------------------------------------------------------------------- subclass API

    def cache_params(self) -> dict:
        """The options that change the decoded arrays (JSON-serialisable)."""
        return {}

    def list_samples(self, split: str) -> tuple[list, list[int]]:
        raise NotImplementedError

    def decode(self, ref) -> np.ndarray:
        raise NotImplementedError

    # --------------------------------------------------------------------- the cache

    @property
    def params(self) -> dict:
        return {"dataset": type(self).__name__, **self.cache_params()}

    @property
    def cache_folder(self) -> Path:
        text = json.dumps(self.params, sort_keys=True)
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        return self.cache_root / f"{type(self).__name__}-{digest}"

    def missing(self, what: str) -> DatasetNotFoundError:
        """The error for raw files that are not where the config says."""
        name = self.PREPARE_NAME or type(self).__name__
        return DatasetNotFoundError(
            f"{type(self).__name__}: {what}.\n"
            f"Expected layout under {str(self.raw_prefix)!r}:\n{self.LAYOUT}\n"
            f"Prepare the cache with: bidl data prepare {name} --root {self.data_prefix} "
            f"--raw <folder of the raw files>\n"
            f"or point data_prefix (raw_prefix) in the config at your copy."
        )

    def prepare_data(self, idx: int) -> dict:
        results = dict(self.data_infos[idx])
        results["img"] = np.array(results["img"])  # out of the memory map: a plain array
        return self.pipeline(results)

    def class_folder_samples(self, split: str, entries) -> tuple[list, list[int]]:
        """Samples of ``<raw>/<split>/<class>/``: ``entries(folder)`` lists a class folder's
        samples; the classes are the sorted folder names of the train split."""
        train = self.raw_prefix / "train"
        if not train.is_dir():
            raise self.missing(f"folder {train} does not exist")
        if self.CLASSES is None:
            self.CLASSES = sorted(p.name for p in train.iterdir() if p.is_dir())
        root = self.raw_prefix / split
        if not root.is_dir():
            raise self.missing(f"folder {root} does not exist")
        refs, labels = [], []
        for label, name in enumerate(self.CLASSES):
            found = entries(root / name) if (root / name).is_dir() else []
            refs += [str(f) for f in found]
            labels += [label] * len(found)
        return refs, labels

    def build_cache(self, split: str) -> dict:
        """Decode every sample of ``split`` into the cache; returns its meta."""
        refs, labels = self.list_samples(split)
        if not refs:
            raise self.missing(f"found no samples of split {split!r}")
        return cache.write_split(
            self.cache_folder,
            split,
            self.params,
            cache.iterate_decoded(refs, labels, self.decode),
            len(refs),
            classes=list(self.CLASSES) if self.CLASSES else None,
            verbose=self.verbose,
            desc=type(self).__name__,
        )

    def ensure_cache(self, split: str) -> Path:
        problem = cache.cache_problem(self.cache_folder, split, self.params)
        if problem is None:
            return self.cache_folder
        if not self.auto_prepare:
            raise self.missing(f"no usable cache of split {split!r}: {problem}")
        # one builder at a time (DDP ranks, two runs): the others wait, then find it built
        with waiting_lock(dataset_lock(self.cache_folder, type(self).__name__)):
            if cache.cache_problem(self.cache_folder, split, self.params) is None:
                return self.cache_folder
            if self.verbose:
                print(f"{type(self).__name__}: building the {split} cache in {self.cache_folder}")
            self.build_cache(split)
        return self.cache_folder

    def load_annotations(self) -> list[dict]:
        folder = self.ensure_cache(self.split)
        images, labels, self.meta = cache.load_split(folder, self.split)
        if self.CLASSES is None and self.meta.get("classes"):
            self.CLASSES = list(self.meta["classes"])
        return [{"img": images[i], "gt_label": int(labels[i])} for i in range(labels.size)]


def natural_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Files of ``folder`` (recursively) with one of ``suffixes``, sorted by path."""
    wanted = tuple(s.lower() for s in suffixes)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(wanted))
