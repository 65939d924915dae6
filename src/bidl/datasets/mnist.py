"""``MNIST``: the handwritten digits from their IDX files, optionally spike-encoded."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..registry import DATASETS, PIPELINES, BidlError, build
from .base import BaseDataset, DatasetNotFoundError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
LAYOUT = (
    "  <root>/train-images-idx3-ubyte, train-labels-idx1-ubyte\n"
    "  <root>/t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte\n"
    "  (also accepted: '.idx3-ubyte' spellings and '.gz' files)"
)


def read_idx(path: str | Path) -> np.ndarray:
    """The array of an IDX file (``.gz`` allowed): magic ``00 00 type ndim``, then ``ndim``
    big-endian int32 sizes, then the values, big-endian."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise BidlError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int(s) for s in np.frombuffer(data, ">i4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[data[2]])
    start = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - start != expected:
        raise BidlError(
            f"{path}: header says {shape} values ({expected} bytes), the file holds "
            f"{len(data) - start} bytes; the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx(root: Path, name: str) -> Path | None:
    """``name`` in ``root``, also spelled with ``.idx`` and/or ``.gz``."""
    base, _, kind = name.rpartition("-")  # train-images, idx3-ubyte
    for candidate in (name, f"{base}.{kind}"):
        for suffix in ("", ".gz"):
            if (root / f"{candidate}{suffix}").is_file():
                return root / f"{candidate}{suffix}"
    return None


@DATASETS.register_module()
class MNIST(BaseDataset):
    """MNIST from its IDX files: ``img`` is ``[1, 28, 28]`` uint8, or the spike train of
    ``encoder`` (a pipeline step config such as ``dict(type="Rate", timesteps=10)``,
    ``"Temporal"`` or ``"Population"``) applied before the pipeline."""

    CLASSES = [str(i) for i in range(10)]
    SOURCE = "MNIST: IDX files (train/t10k images idx3, labels idx1, optionally .gz)"

    def __init__(
        self,
        data_prefix: str = "data/mnist",
        pipeline: Sequence[dict] = (),
        test_mode: bool = False,
        encoder: dict | None = None,
        classes=None,
        ann_file: str | None = None,
    ):
        self.encoder = None if encoder is None else build(encoder, PIPELINES)
        super().__init__(data_prefix, pipeline, classes, ann_file, test_mode)

    def load_annotations(self) -> list[dict]:
        root = self.require_folder(
            self.data_prefix, "MNIST", LAYOUT, f"bidl data prepare MNIST --root {self.data_prefix}"
        )
        paths = []
        for name in FILES["test" if self.test_mode else "train"]:
            path = find_idx(root, name)
            if path is None:
                raise self.missing_file(root / name)
            paths.append(path)
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise BidlError(
                f"MNIST: {paths[0].name} holds {images.shape}, {paths[1].name} holds "
                f"{labels.shape}; expected [N, H, W] images and N labels"
            )
        return [{"img": images[i, None], "gt_label": int(labels[i])} for i in range(labels.size)]

    def missing_file(self, path: Path):
        return DatasetNotFoundError(f"MNIST: {path} does not exist.\nExpected layout:\n{LAYOUT}")

    def prepare_data(self, idx: int) -> dict:
        results = dict(self.data_infos[idx])
        if self.encoder is not None:
            results = self.encoder(results)
        return self.pipeline(results)
