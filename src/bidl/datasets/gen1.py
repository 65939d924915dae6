"""``Gen1Detection``: the Prophesee GEN1 automotive detection dataset (de Tournemire et
al. 2020): 39 hours of ATIS recordings (304x240) cut into 60 s files, each a ``.dat`` of
events and a ``_bbox.npy`` of boxes (cars, pedestrians). Detection models are another
matter; this dataset hands out events and boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..registry import DATASETS, BidlError
from .base import BaseDataset, DatasetNotFoundError
from .events.formats import check_sensor, read_event_file
from .events.prophesee_dat import read_dat_window
from .events.records import EventFileError

SPLITS = ("train", "val", "test")


def read_gen1_boxes(path: str | Path) -> np.ndarray:
    """The boxes of a ``_bbox.npy`` file: a structured array with a timestamp (``ts``, or
    ``t`` in older files), x, y, w, h, class_id (and confidence, track_id)."""
    try:
        boxes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise EventFileError(f"{path}: not a readable box file ({err})") from None
    names = boxes.dtype.names or ()
    time_field = "ts" if "ts" in names else "t" if "t" in names else None
    missing = [k for k in ("x", "y", "w", "h", "class_id") if k not in names]
    if time_field is None or missing:
        raise EventFileError(
            f"{path}: a box file needs fields ts (or t), x, y, w, h and class_id; has {names}"
        )
    return boxes


@DATASETS.register_module(name=["Gen1Detection", "GEN1"])
class Gen1Detection(BaseDataset):
    """One sample per recording (``window_us=None``: all its events, all its boxes), or one
    per labelled instant (``window_us``: the events of the ``window_us`` before the boxes'
    timestamp, and those boxes). A sample is a dict with ``events`` (structured array x, y,
    t, p), ``boxes`` (the ``_bbox.npy`` records), ``sensor_size`` (240, 304) and
    ``recording``; the pipeline may turn them into tensors for a detector."""

    CLASSES = ["car", "pedestrian"]
    SENSOR_SIZE = (240, 304)
    SOURCE = "Prophesee GEN1: {train,val,test}/<name>_td.dat + <name>_bbox.npy"
    LAYOUT = (
        "  <raw>/train/17-04-04_11-00-13_cut_15_183500000_243500000_td.dat\n"
        "  <raw>/train/17-04-04_11-00-13_cut_15_183500000_243500000_bbox.npy\n"
        "  <raw>/val/...  <raw>/test/..."
    )

    def __init__(
        self,
        data_prefix: str = "data/gen1",
        split: str | None = None,
        window_us: float | None = None,
        pipeline=(),
        test_mode: bool = False,
    ):
        self.split = split or ("test" if test_mode else "train")
        if self.split not in SPLITS:
            raise BidlError(f"Gen1Detection: split must be one of {SPLITS}, got {self.split!r}")
        if window_us is not None and not window_us > 0:
            raise BidlError(f"Gen1Detection: window_us must be > 0 or None, got {window_us!r}")
        self.window_us = window_us
        super().__init__(data_prefix, pipeline=pipeline, test_mode=test_mode)

    def load_annotations(self) -> list[dict]:
        folder = Path(self.data_prefix) / self.split
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"Gen1Detection: folder {folder} does not exist.\nExpected layout under "
                f"{self.data_prefix!r}:\n{self.LAYOUT}"
            )
        infos = []
        for events in sorted(folder.glob("*_td.dat")):
            boxes_path = events.with_name(events.name[: -len("_td.dat")] + "_bbox.npy")
            if not boxes_path.is_file():
                raise DatasetNotFoundError(f"Gen1Detection: {events} has no box file {boxes_path}")
            if self.window_us is None:
                infos.append({"recording": str(events), "boxes_file": str(boxes_path)})
                continue
            boxes = read_gen1_boxes(boxes_path)
            times = boxes["ts" if "ts" in boxes.dtype.names else "t"]
            for t in np.unique(times):
                infos.append({"recording": str(events), "boxes_file": str(boxes_path), "t": int(t)})
        if not infos:
            raise DatasetNotFoundError(f"Gen1Detection: no *_td.dat recordings in {folder}")
        return infos

    def get_gt_labels(self) -> np.ndarray:
        raise BidlError(
            "Gen1Detection is a detection dataset: it has boxes, not one label per sample"
        )

    def prepare_data(self, idx: int) -> dict:
        info = self.data_infos[idx]
        boxes = read_gen1_boxes(info["boxes_file"])
        if "t" in info:
            field = "ts" if "ts" in boxes.dtype.names else "t"
            boxes = boxes[boxes[field] == info["t"]]
            events = read_dat_window(info["recording"], info["t"] - self.window_us, info["t"])
        else:
            events = read_event_file(info["recording"])
        results = {
            "events": check_sensor(info["recording"], events, self.SENSOR_SIZE),
            "boxes": boxes,
            "sensor_size": self.SENSOR_SIZE,
            "recording": info["recording"],
        }
        return self.pipeline(results)
