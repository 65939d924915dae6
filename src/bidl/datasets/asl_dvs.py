"""``AslDvs``: ASL-DVS (Bi et al., ICCV 2019): 24 letters of American sign language
(a-y without j) recorded by a DAVIS240c, one MATLAB ``.mat`` file per sample."""

from __future__ import annotations

import numpy as np

from ..registry import DATASETS, BidlError
from .cifar10_dvs import natural_key
from .event_dataset import EventDataset
from .events.formats import EventFileError, check_sensor
from .events.records import events_from_columns


@DATASETS.register_module(name=["AslDvs", "ASLDVS"])
class AslDvs(EventDataset):
    """ASL-DVS: 100800 samples of 24 letters on a 180x240 sensor. Each ``.mat`` holds
    column vectors ``x``, ``y``, ``ts`` (us) and ``pol``; rows are turned as tonic reads
    them (``y = 179 - y``: the hand upright). There is no official split: the first
    ``train_ratio`` (0.8, as its authors) of each letter's files train, the rest test."""

    SENSOR_SIZE = (180, 240)
    PREPARE_NAME = "AslDvs"
    SOURCE = "ASL-DVS: <letter>/<letter>_NNNN.mat (MATLAB: x, y, ts, pol)"
    LAYOUT = "  <raw>/a/a_0001.mat ... <raw>/y/y_4200.mat   (a folder per letter)"

    def __init__(self, data_prefix: str = "data/asl_dvs", train_ratio: float = 0.8, **kwargs):
        if not 0 < train_ratio < 1:
            raise BidlError(f"AslDvs: train_ratio must be in (0, 1), got {train_ratio!r}")
        self.train_ratio = float(train_ratio)
        super().__init__(data_prefix, **kwargs)

    def cache_params(self) -> dict:
        return {**super().cache_params(), "train_ratio": self.train_ratio}

    def list_samples(self, split: str):
        if not self.raw_prefix.is_dir():
            raise self.missing(f"folder {self.raw_prefix} does not exist")
        if self.CLASSES is None:
            self.CLASSES = sorted(
                p.name for p in self.raw_prefix.iterdir() if p.is_dir() and len(p.name) == 1
            )
        refs, labels = [], []
        for label, name in enumerate(self.CLASSES):
            files = sorted((self.raw_prefix / name).glob("*.mat"), key=natural_key)
            cut = int(round(len(files) * self.train_ratio))
            chosen = files[:cut] if split == "train" else files[cut:]
            refs += [str(f) for f in chosen]
            labels += [label] * len(chosen)
        return refs, labels

    def read_events(self, ref):
        return read_asl_mat(ref, self.SENSOR_SIZE), None, None


def read_asl_mat(path, sensor_size=(180, 240)) -> np.ndarray:
    """The events of one ASL-DVS ``.mat`` file, rows turned upright."""
    import scipy.io  # only here: the registry imports this module whenever it fills

    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for a damaged file
        raise EventFileError(f"{path}: not a readable MATLAB file ({err})") from None
    missing = [k for k in ("x", "y", "ts", "pol") if k not in mat]
    if missing:
        raise EventFileError(f"{path}: needs variables x, y, ts and pol; missing {missing}")
    columns = {
        k: np.asarray(mat[v]).ravel() for k, v in zip("xytp", ("x", "y", "ts", "pol"), strict=True)
    }
    events = events_from_columns(path, columns)
    events["y"] = sensor_size[0] - 1 - events["y"]
    return check_sensor(path, events, sensor_size)
