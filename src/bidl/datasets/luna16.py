"""``Luna16Cls`` and ``Luna16Cls32``: LUNA16 candidate patches (nodule or not) saved as
``.npy`` CT volumes; the slices are the time axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..registry import DATASETS, BidlError
from .cached_dataset import CachedDataset


def normalise_hu(volume: np.ndarray, window) -> np.ndarray:
    """Hounsfield units clipped to ``window`` (low, high) and scaled to [0, 1]."""
    low, high = window
    return ((np.clip(volume.astype(np.float32), low, high) - low) / (high - low)).astype(np.float32)


def centre_fit(volume: np.ndarray, shape) -> np.ndarray:
    """Centre-crop (or zero-pad) each axis of ``volume`` to ``shape`` (None keeps an axis)."""
    out = volume
    for axis, size in enumerate(shape):
        if size is None:
            continue
        length = out.shape[axis]
        if length >= size:
            start = (length - size) // 2
            out = np.take(out, np.arange(start, start + size), axis=axis)
        else:
            pad = [(0, 0)] * out.ndim
            pad[axis] = ((size - length) // 2, size - length - (size - length) // 2)
            out = np.pad(out, pad)
    return out


@DATASETS.register_module()
class Luna16Cls(CachedDataset):
    """LUNA16 nodule classification: patches ``[D, H, W]`` in ``<raw>/<split>/<label>/``
    (labels ``0`` no nodule, ``1`` nodule; or ``<raw>/<label>/`` when data_prefix points
    at one split, as BIDL's configs do). ``img`` is ``[T, 1, H, W]`` float32 in [0, 1]:
    ``timesteps`` centre slices (all if None), ``size`` centre crop (native if None),
    Hounsfield units windowed by ``hu_window`` (None: values used as they are)."""

    CLASSES = ["0", "1"]
    SOURCE = "LUNA16 candidate patches: .npy CT volumes [D, H, W] in label folders 0/1"
    PREPARE_NAME = "Luna16Cls"
    LAYOUT = "  <raw>/train/0/*.npy, <raw>/train/1/*.npy\n  <raw>/test/0/*.npy, <raw>/test/1/*.npy"
    DEFAULT_SIZE: int | None = None

    def __init__(
        self,
        data_prefix: str = "data/luna16cls",
        timesteps: int | None = 8,
        size: int | None = -1,
        hu_window=(-1000.0, 400.0),
        **kwargs,
    ):
        self.timesteps = timesteps
        self.size = self.DEFAULT_SIZE if size == -1 else size
        self.hu_window = None if hu_window is None else [float(v) for v in hu_window]
        super().__init__(data_prefix, **kwargs)

    def cache_params(self) -> dict:
        return {"timesteps": self.timesteps, "size": self.size, "hu_window": self.hu_window}

    def _split_root(self, split: str) -> Path:
        nested = self.raw_prefix / split
        if nested.is_dir():
            return nested
        if all((self.raw_prefix / c).is_dir() for c in self.CLASSES):
            return self.raw_prefix
        raise self.missing(f"neither {nested} nor label folders 0/ and 1/ in {self.raw_prefix}")

    def list_samples(self, split: str):
        root = self._split_root(split)
        refs, labels = [], []
        for label, name in enumerate(self.CLASSES):
            files = sorted((root / name).glob("*.npy"))
            refs += [str(f) for f in files]
            labels += [label] * len(files)
        return refs, labels

    def decode(self, ref) -> np.ndarray:
        try:
            volume = np.load(ref, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise BidlError(f"{type(self).__name__}: cannot read {ref} ({err})") from None
        if volume.ndim != 3:
            raise BidlError(
                f"{type(self).__name__}: {ref} holds shape {volume.shape}, expected [D, H, W]"
            )
        volume = centre_fit(volume, (self.timesteps, self.size, self.size))
        if self.hu_window is not None:
            volume = normalise_hu(volume, self.hu_window)
        return volume.astype(np.float32)[:, None]


@DATASETS.register_module()
class Luna16Cls32(Luna16Cls):
    """``Luna16Cls`` with 32x32 slices (centre crop): ``img`` ``[8, 1, 32, 32]``."""

    DEFAULT_SIZE = 32
    PREPARE_NAME = "Luna16Cls32"
