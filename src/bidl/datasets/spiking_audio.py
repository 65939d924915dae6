"""``SHD`` and ``SSC``: the Spiking Heidelberg Digits and Spiking Speech Commands (Cramer et
al. 2020): spoken words turned into spikes of 700 cochlear channels, one HDF5 file per
split with ``spikes/times`` (seconds, one array per sample), ``spikes/units`` (channel of
each spike) and ``labels``; ``extra/keys`` names the classes."""

from __future__ import annotations

import numpy as np

from ..registry import DATASETS, BidlError
from .cached_dataset import CachedDataset
from .events.records import EventFileError, optional_module

CHANNELS = 700


def bin_spikes(times_s, units, timesteps: int, duration_s: float, channels: int = CHANNELS):
    """Spike counts ``[timesteps, channels]`` (uint8, saturating) of one sample: time bins
    of ``duration_s / timesteps`` from 0; later spikes are left out."""
    times = np.asarray(times_s, dtype=np.float64)
    units = np.asarray(units, dtype=np.int64)
    if times.shape != units.shape:
        raise BidlError(f"spikes: {times.size} times for {units.size} units")
    if units.size and (units.min() < 0 or units.max() >= channels):
        raise BidlError(
            f"spikes: units must be in [0, {channels}), got [{units.min()}, {units.max()}]"
        )
    if not np.isfinite(times).all():
        raise BidlError("spikes: times must be finite")
    step = np.floor(times * timesteps / duration_s).astype(np.int64)
    keep = (step >= 0) & (step < timesteps)
    counts = np.bincount(step[keep] * channels + units[keep], minlength=timesteps * channels)
    return np.minimum(counts, 255).astype(np.uint8).reshape(timesteps, channels)


class SpikingAudio(CachedDataset):
    """Samples ``[timesteps, 700]`` uint8 spike counts over ``[0, duration_s)`` (``binary``:
    clipped to 1), cached once per split."""

    FILES: dict[str, str] = {}
    CHANNELS = CHANNELS

    def __init__(
        self,
        data_prefix: str,
        timesteps: int = 100,
        duration_s: float = 1.0,
        binary: bool = False,
        **kwargs,
    ):
        name = type(self).__name__
        if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
            raise BidlError(f"{name}: timesteps must be an int >= 1, got {timesteps!r}")
        if not duration_s > 0:
            raise BidlError(f"{name}: duration_s must be > 0, got {duration_s!r}")
        self.timesteps, self.duration_s, self.binary = timesteps, float(duration_s), bool(binary)
        self._handle = None
        super().__init__(data_prefix, **kwargs)

    def cache_params(self) -> dict:
        return {"timesteps": self.timesteps, "duration_s": self.duration_s, "binary": self.binary}

    def _open(self, path):
        h5py = optional_module("h5py", "formats", path, "spiking audio HDF5 files")
        try:
            handle = h5py.File(path, "r")
        except OSError as err:
            raise EventFileError(f"{path}: not a readable HDF5 file ({err})") from None
        missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in handle]
        if missing:
            handle.close()
            raise EventFileError(
                f"{path}: needs spikes/times, spikes/units and labels; missing {missing}"
            )
        return handle

    def list_samples(self, split: str):
        path = self.raw_prefix / self.FILES[split]
        if not path.is_file():
            raise self.missing(f"file {path} does not exist")
        with self._open(path) as handle:
            labels = np.asarray(handle["labels"][()], dtype=np.int64)
            if self.CLASSES is None:
                keys = handle.get("extra/keys")
                names = (
                    []
                    if keys is None
                    else [k.decode() if isinstance(k, bytes) else str(k) for k in keys[()]]
                )
                self.CLASSES = (
                    names
                    if len(names) > labels.max(initial=0)
                    else [str(i) for i in range(int(labels.max(initial=0)) + 1)]
                )
        return [(str(path), i) for i in range(labels.size)], labels.tolist()

    def decode(self, ref) -> np.ndarray:
        path, index = ref
        if self._handle is None or self._handle.filename != path:
            if self._handle is not None:
                self._handle.close()
            self._handle = self._open(path)
        times = self._handle["spikes/times"][index]
        units = self._handle["spikes/units"][index]
        try:
            counts = bin_spikes(times, units, self.timesteps, self.duration_s, self.CHANNELS)
        except BidlError as err:
            raise EventFileError(f"{path}: sample {index}: {err}") from None
        return np.minimum(counts, 1) if self.binary else counts

    def build_cache(self, split: str) -> dict:
        try:
            return super().build_cache(split)
        finally:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


@DATASETS.register_module(name=["SHD", "Shd"])
class SHD(SpikingAudio):
    """Spiking Heidelberg Digits: 20 classes (digits 0-9 in English and German), 8156
    train / 2264 test samples."""

    FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
    PREPARE_NAME = "SHD"
    SOURCE = "SHD: shd_train.h5, shd_test.h5 (spikes/times, spikes/units, labels; 700 channels)"
    LAYOUT = "  <raw>/shd_train.h5\n  <raw>/shd_test.h5"

    def __init__(self, data_prefix: str = "data/shd", **kwargs):
        super().__init__(data_prefix, **kwargs)


@DATASETS.register_module(name=["SSC", "Ssc"])
class SSC(SpikingAudio):
    """Spiking Speech Commands: 35 classes of words, train / validation / test files."""

    FILES = {"train": "ssc_train.h5", "val": "ssc_valid.h5", "test": "ssc_test.h5"}
    SPLITS = ("train", "val", "test")
    PREPARE_NAME = "SSC"
    SOURCE = "SSC: ssc_train.h5, ssc_valid.h5, ssc_test.h5 (spikes/times, spikes/units, labels)"
    LAYOUT = "  <raw>/ssc_train.h5\n  <raw>/ssc_valid.h5\n  <raw>/ssc_test.h5"

    def __init__(self, data_prefix: str = "data/ssc", **kwargs):
        super().__init__(data_prefix, **kwargs)
