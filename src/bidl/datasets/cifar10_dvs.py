"""``CIFAR10DVS`` (``Cifar10Dvs``): CIFAR-10 images recorded by a DVS128 sensor, one
jAER AEDAT 2.0 file per sample in a folder per class."""

from __future__ import annotations

import re

import numpy as np

from ..registry import DATASETS, BidlError
from .event_dataset import EventDataset
from .events.formats import read_event_file

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def natural_key(path) -> tuple:
    """Sort ``x_2`` before ``x_10``: by the last number in the name, then by the name."""
    numbers = re.findall(r"\d+", path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)


@DATASETS.register_module(name=["CIFAR10DVS", "Cifar10Dvs"])
class CIFAR10DVS(EventDataset):
    """CIFAR10-DVS: 10 classes of 1000 recordings, 128x128 sensor.

    There is no official split: the first ``train_ratio`` of each class's files (in
    numeric order) train, the rest test. Samples are ``[timesteps, 2, H, W]`` uint8
    counts (channels OFF, ON) over each recording's whole span.
    """

    CLASSES = CIFAR10_CLASSES
    SENSOR_SIZE = (128, 128)
    PREPARE_NAME = "Cifar10Dvs"
    SOURCE = "CIFAR10-DVS: jAER AEDAT 2.0 files (DVS128 addresses), a folder per class"
    LAYOUT = (
        "  <raw>/airplane/cifar10_airplane_0.aedat ... cifar10_airplane_999.aedat\n"
        "  <raw>/automobile/...   (one folder per class, 10 classes)"
    )

    def __init__(self, data_prefix: str = "data/cifar10_dvs", train_ratio: float = 0.9, **kwargs):
        if not 0 < train_ratio < 1:
            raise BidlError(f"CIFAR10DVS: train_ratio must be in (0, 1), got {train_ratio!r}")
        self.train_ratio = float(train_ratio)
        super().__init__(data_prefix, **kwargs)

    def cache_params(self) -> dict:
        # "orientation": caches made before the events were turned as below are rebuilt
        return {**super().cache_params(), "train_ratio": self.train_ratio, "orientation": 1}

    def list_samples(self, split: str):
        refs, labels = [], []
        for label, name in enumerate(self.CLASSES):
            folder = self.raw_prefix / name
            if not folder.is_dir():
                raise self.missing(f"class folder {folder} does not exist")
            files = sorted(folder.glob("*.aedat"), key=natural_key)
            cut = int(round(len(files) * self.train_ratio))
            chosen = files[:cut] if split == "train" else files[cut:]
            refs += [str(f) for f in chosen]
            labels += [label] * len(chosen)
        return refs, labels

    def read_events(self, ref):
        return orient(read_event_file(ref, self.SENSOR_SIZE)), None, None


def orient(events: np.ndarray, size: int = 128) -> np.ndarray:
    """The recordings' DVS128 addresses turned the way tonic and SpikingJelly read them
    (x = 127 - y_addr, y = 127 - x_addr, polarity inverted), so that frames and models
    made by those tools and by bidl agree."""
    turned = events.copy()
    turned["x"] = size - 1 - events["y"]
    turned["y"] = size - 1 - events["x"]
    turned["p"] = 1 - events["p"]
    return turned
