"""``BaseDataset``: BIDL's dataset API. A dataset lists its samples once in
``load_annotations()``; each access copies one record and runs it through the pipeline."""

from __future__ import annotations

import copy
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..registry import BidlError
from .pipelines import Compose


class DatasetNotFoundError(BidlError, FileNotFoundError):
    """A dataset's files are not where the config says."""


class BaseDataset(Dataset, metaclass=ABCMeta):
    """Subclass and override ``load_annotations()`` to return a list of dicts with ``img``
    (an array ``[T, C, H, W]`` or ``[T, L]``) and ``gt_label`` (an int). When ``img`` holds
    ``np.packbits``-packed binary frames, ``pack`` gives the unpacked frame shape.
    """

    CLASSES: Sequence[str] | None = None

    def __init__(
        self,
        data_prefix: str,
        pipeline: Sequence[dict] = (),
        classes: Sequence[str] | None = None,
        ann_file: str | None = None,
        test_mode: bool = False,
    ):
        self.data_prefix = str(data_prefix)
        self.ann_file = ann_file
        self.test_mode = test_mode
        self.pipeline = Compose(pipeline)
        if classes is not None:
            self.CLASSES = list(classes)
        self.data_infos = self.load_annotations()

    @abstractmethod
    def load_annotations(self) -> list[dict]:
        """Return one dict per sample: ``img``, ``gt_label`` and optionally ``pack``."""

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.CLASSES or [])}

    def get_gt_labels(self) -> np.ndarray:
        return np.array([int(info["gt_label"]) for info in self.data_infos], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.data_infos)

    def prepare_data(self, idx: int) -> dict:
        results = copy.copy(self.data_infos[idx])
        if results.get("pack") is not None:
            shape = tuple(results.pop("pack"))
            bits = np.unpackbits(results["img"], count=int(np.prod(shape)))
            results["img"] = bits.reshape(shape).astype(np.float32)
        return self.pipeline(results)

    def __getitem__(self, idx: int) -> dict:
        return self.prepare_data(idx)

    def evaluate(self, results, metric: str = "accuracy", metric_options: dict | None = None):
        """Top-k accuracy (percent) of ``results`` (scores ``[N, num_classes]``) on this split."""
        if metric != "accuracy":
            raise BidlError(f"unsupported metric {metric!r}; this dataset reports 'accuracy'")
        topk = tuple((metric_options or {}).get("topk", (1, 5)))
        scores = torch.as_tensor(np.asarray(results), dtype=torch.float32)
        labels = torch.as_tensor(self.get_gt_labels())
        if scores.shape[0] != labels.shape[0]:
            raise BidlError(f"evaluate got {scores.shape[0]} results for {labels.shape[0]} samples")
        return {
            f"accuracy_top-{k}": v
            for k, v in zip(topk, topk_accuracy(scores, labels, topk), strict=True)
        }

    @staticmethod
    def require_folder(path: str | Path, dataset: str, layout: str, prepare: str) -> Path:
        """Fail with the expected layout and the preparation command when ``path`` is missing."""
        folder = Path(path)
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"{dataset}: data folder {str(folder)!r} does not exist.\n"
                f"Expected layout:\n{layout}\n"
                f"Prepare it with: {prepare}\n"
                f"or point data_prefix in the config at your copy."
            )
        return folder


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, topk=(1,)) -> list[float]:
    """Percent of samples whose label is among the ``k`` highest scores, for each ``k``."""
    maxk = min(max(topk), scores.shape[1])
    ranked = scores.topk(maxk, dim=1).indices
    hits = ranked.eq(labels.view(-1, 1))
    return [hits[:, : min(k, maxk)].any(dim=1).double().mean().item() * 100.0 for k in topk]
