"""``DVS128Gesture`` (``DvsGesture``): IBM's DVS128 Gesture recordings, AEDAT 3.1 files
cut into one sample per labelled gesture by their ``*_labels.csv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..registry import DATASETS, BidlError
from .event_dataset import EventDataset
from .events.formats import read_event_file

GESTURES = [
    "hand_clapping",
    "right_hand_wave",
    "left_hand_wave",
    "right_arm_clockwise",
    "right_arm_counter_clockwise",
    "left_arm_clockwise",
    "left_arm_counter_clockwise",
    "arm_roll",
    "air_drums",
    "air_guitar",
    "other_gestures",
]


def read_gesture_labels(path: Path) -> list[tuple[int, int, int]]:
    """``(class 1..11, start_us, end_us)`` rows of a ``*_labels.csv``."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = [f.strip() for f in line.split(",")]
        if not line.strip() or fields[0] == "class":
            continue
        try:
            label, start, end = (int(f) for f in fields[:3])
        except ValueError:
            raise BidlError(
                f"{path}, line {number}: expected class,start,end; got {line!r}"
            ) from None
        if not 1 <= label <= len(GESTURES) or end <= start:
            raise BidlError(
                f"{path}, line {number}: class must be 1..{len(GESTURES)} and end > start; "
                f"got {line!r}"
            )
        rows.append((label, start, end))
    return rows


@DATASETS.register_module(name=["DVS128Gesture", "DvsGesture"])
class DVS128Gesture(EventDataset):
    """DVS128 Gesture: 11 hand and arm gestures of 29 people, 128x128 sensor.

    Each labelled segment of a recording is a sample ``[timesteps, 2, H, W]`` (uint8
    counts, channels OFF, ON) spanning the segment's start and end times. The split is
    the dataset's own ``trials_to_train.txt`` / ``trials_to_test.txt``.
    """

    CLASSES = GESTURES
    SENSOR_SIZE = (128, 128)
    PREPARE_NAME = "DvsGesture"
    SOURCE = "IBM DVS128 Gesture: AEDAT 3.1 recordings + *_labels.csv segments, 11 classes"
    LAYOUT = (
        "  <raw>/DvsGesture/user01_fluorescent.aedat          AEDAT 3.1 recordings\n"
        "  <raw>/DvsGesture/user01_fluorescent_labels.csv     class,startTime_usec,endTime_usec\n"
        "  <raw>/DvsGesture/trials_to_train.txt, trials_to_test.txt   one .aedat name per line\n"
        "  (the files may also lie directly in <raw>)"
    )

    def __init__(self, data_prefix: str = "data/dvs_gesture", **kwargs):
        self._last: tuple[str, np.ndarray] | None = None
        super().__init__(data_prefix, **kwargs)

    def _folder(self) -> Path:
        nested = self.raw_prefix / "DvsGesture"
        return nested if nested.is_dir() else self.raw_prefix

    def list_samples(self, split: str):
        folder = self._folder()
        trials = folder / f"trials_to_{split}.txt"
        if not trials.is_file():
            raise self.missing(f"{trials} does not exist")
        refs, labels = [], []
        for name in trials.read_text().split():
            aedat = folder / name
            table = folder / f"{Path(name).stem}_labels.csv"
            for path in (aedat, table):
                if not path.is_file():
                    raise self.missing(f"{path} (listed in {trials.name}) does not exist")
            for label, start, end in read_gesture_labels(table):
                refs.append((str(aedat), start, end))
                labels.append(label - 1)
        return refs, labels

    def read_events(self, ref):
        path, start, end = ref
        if self._last is None or self._last[0] != path:  # segments of a file come together
            self._last = (path, read_event_file(path, self.SENSOR_SIZE))
        events = self._last[1]
        inside = (events["t"] >= start) & (events["t"] < end)
        return events[inside], start, end
