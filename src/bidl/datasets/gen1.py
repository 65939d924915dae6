"""``Gen1Detection``: the Prophesee GEN1 automotive detection dataset (de Tournemire et
al. 2020): 39 hours of ATIS recordings (304x240) cut into 60 s files, each a ``.dat`` of
events and a ``_bbox.npy`` of boxes (cars, pedestrians), read from that layout.

Samples are those of BIDL's st-yolo application: one per labelled instant ``t``, its
input ``timesteps`` (11) stacked histograms of the ``window_us`` (50 ms) of events ending
at ``t - (timesteps - 1 - k) * step_us`` for k = 0 .. timesteps - 1 (one every 125 ms,
half GEN1's 4 Hz label period, as the application places them between labels), each
``2 * bins`` (20) channels, padded with zeros at the bottom and right to ``input_size``
(256, 320: multiples of 64); the boxes at ``t`` as (x1, y1, x2, y2) frame pixels. Box
checks and filters: ``gen1_labels``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..registry import DATASETS, BidlError
from .base import BaseDataset, DatasetNotFoundError
from .events.formats import check_sensor, read_event_file
from .events.histogram import stacked_histogram
from .events.prophesee_dat import read_dat_window
from .events.records import EventFileError
from .gen1_labels import (
    SENSOR_SIZE,
    box_times,
    check_boxes,
    check_times,
    clipped_xyxy,
    keep_mask,
    label_instants,
    read_gen1_boxes,
    recording_span,
)

SPLITS = ("train", "val", "test")
__all__ = ["Gen1Detection", "read_gen1_boxes"]


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise BidlError(f"Gen1Detection: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


@DATASETS.register_module(name=["Gen1Detection", "GEN1"])
class Gen1Detection(BaseDataset):
    """GEN1 in the detection format: ``img`` uint8 ``[timesteps, 2 * bins, H, W]``
    (``input_size``), ``gt_bboxes`` float32 ``[max_objects, 4]`` (x1, y1, x2, y2, zero rows
    after the boxes), ``gt_labels`` int64 ``[max_objects]`` (0 car, 1 pedestrian, -1 on
    padding rows), ``recording`` and ``t`` (the label time, us).

    Boxes: partly outside the frame, clipped; under ``min_box_side`` (10) or
    ``min_box_diag`` (30) pixels, dropped; on the training split, wider than
    ``max_box_width`` (273), dropped. Label instants: from ``first_label_us`` (100 ms) on
    GEN1's ``label_period_us`` (250 ms) grid, and late enough for the whole input span.

    ``load_events=True`` hands out raw events instead: one sample per recording (all its
    events and boxes), or with ``window_us`` one per label time (the events of the
    ``window_us`` before it and the boxes at it), unfiltered; a dict with ``events``
    (x, y, t, p), ``boxes`` (the ``_bbox.npy`` records), ``sensor_size`` and ``recording``.
    """

    CLASSES = ["car", "pedestrian"]
    SENSOR_SIZE = SENSOR_SIZE
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
        timesteps: int = 11,
        step_us: int = 125_000,
        bins: int = 10,
        count_cutoff: int = 10,
        input_size: tuple[int, int] | None = (256, 320),
        max_objects: int = 64,
        min_box_side: float = 10,
        min_box_diag: float = 30,
        max_box_width: float | None = 273,
        first_label_us: int = 100_000,
        label_period_us: int | None = 250_000,
        drop_invalid_boxes: bool = False,
        load_events: bool = False,
    ):
        self.split = split or ("test" if test_mode else "train")
        if self.split not in SPLITS:
            raise BidlError(f"Gen1Detection: split must be one of {SPLITS}, got {self.split!r}")
        if window_us is not None and not window_us > 0:
            raise BidlError(f"Gen1Detection: window_us must be > 0 or None, got {window_us!r}")
        self.load_events = bool(load_events)
        self.window_us = window_us if load_events else int(window_us or 50_000)
        self.timesteps = _positive_int("timesteps", timesteps)
        self.step_us = _positive_int("step_us", step_us)
        self.bins = _positive_int("bins", bins)
        self.count_cutoff = _positive_int("count_cutoff", count_cutoff)
        if self.count_cutoff > 255:
            raise BidlError(f"Gen1Detection: count_cutoff must be <= 255, got {count_cutoff}")
        self.max_objects = _positive_int("max_objects", max_objects)
        if input_size is not None:
            input_size = tuple(int(v) for v in input_size)
            if len(input_size) != 2 or any(
                v < s for v, s in zip(input_size, SENSOR_SIZE, strict=True)
            ):
                raise BidlError(
                    f"Gen1Detection: input_size (H, W) pads the {SENSOR_SIZE} frames, so it "
                    f"must be at least that; got {input_size}"
                )
        self.input_size = input_size
        self.min_box_side = float(min_box_side)
        self.min_box_diag = float(min_box_diag)
        self.max_box_width = max_box_width
        self.first_label_us = int(first_label_us)
        self.label_period_us = label_period_us
        self.drop_invalid_boxes = bool(drop_invalid_boxes)
        super().__init__(data_prefix, pipeline=pipeline, test_mode=test_mode)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.input_size or SENSOR_SIZE)

    @property
    def span_us(self) -> int:
        """Microseconds of events one sample's input covers."""
        return (self.timesteps - 1) * self.step_us + int(self.window_us)

    def _recordings(self) -> list[tuple[Path, Path]]:
        folder = Path(self.data_prefix) / self.split
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"Gen1Detection: folder {folder} does not exist.\nExpected layout under "
                f"{self.data_prefix!r}:\n{self.LAYOUT}"
            )
        pairs = []
        for events in sorted(folder.glob("*_td.dat")):
            boxes = events.with_name(events.name[: -len("_td.dat")] + "_bbox.npy")
            if not boxes.is_file():
                raise DatasetNotFoundError(f"Gen1Detection: {events} has no box file {boxes}")
            pairs.append((events, boxes))
        if not pairs:
            raise DatasetNotFoundError(f"Gen1Detection: no *_td.dat recordings in {folder}")
        return pairs

    def load_annotations(self) -> list[dict]:
        if self.load_events:
            return self._raw_infos()
        infos = []
        for events, boxes_path in self._recordings():
            infos.extend(self._instants(events, boxes_path))
        if not infos:
            raise DatasetNotFoundError(
                f"Gen1Detection: no labelled instant in {Path(self.data_prefix) / self.split} "
                f"is left after the box filters and with {self.span_us} us of events before it"
            )
        return infos

    def _instants(self, events: Path, boxes_path: Path) -> list[dict]:
        boxes = read_gen1_boxes(boxes_path)
        if boxes.shape[0] == 0:
            raise EventFileError(f"{boxes_path}: the label file holds no boxes")
        check_times(boxes, boxes_path, events, recording_span(events))
        boxes = check_boxes(boxes, boxes_path, SENSOR_SIZE, self.drop_invalid_boxes)
        xyxy = clipped_xyxy(boxes, SENSOR_SIZE)
        max_width = self.max_box_width if self.split == "train" else None
        keep = keep_mask(xyxy, self.min_box_side, self.min_box_diag, max_width)
        times = box_times(boxes)
        instants = label_instants(times[keep], self.first_label_us, self.label_period_us)
        infos = []
        for t in instants[instants >= self.span_us]:
            rows = keep & (times == t)
            if rows.sum() > self.max_objects:
                raise BidlError(
                    f"Gen1Detection: {boxes_path} has {int(rows.sum())} boxes at t={int(t)} us, "
                    f"more than max_objects={self.max_objects}; raise max_objects"
                )
            infos.append(
                {
                    "recording": str(events),
                    "t": int(t),
                    "boxes": xyxy[rows],
                    "labels": boxes["class_id"][rows].astype(np.int64),
                }
            )
        return infos

    def _raw_infos(self) -> list[dict]:
        infos = []
        for events, boxes_path in self._recordings():
            base = {"recording": str(events), "boxes_file": str(boxes_path)}
            if self.window_us is None:
                infos.append(base)
                continue
            for t in np.unique(box_times(read_gen1_boxes(boxes_path))):
                infos.append({**base, "t": int(t)})
        return infos

    def get_gt_labels(self) -> np.ndarray:
        raise BidlError(
            "Gen1Detection is a detection dataset: it has boxes, not one label per sample "
            "(ground_truths() gives each sample's boxes and labels)"
        )

    def ground_truths(self) -> list[dict[str, np.ndarray]]:
        """Each sample's ``bboxes`` [N, 4] and ``labels`` [N], without padding."""
        if self.load_events:
            raise BidlError("Gen1Detection: ground_truths() needs load_events=False")
        return [
            {"bboxes": i["boxes"].copy(), "labels": i["labels"].copy()} for i in self.data_infos
        ]

    def frames(self, recording: str, t: int) -> np.ndarray:
        """``[timesteps, 2 * bins, H, W]`` uint8: the input of the label time ``t``."""
        height, width = self.image_size
        out = np.zeros((self.timesteps, 2 * self.bins, height, width), dtype=np.uint8)
        # events at the label time itself belong to the last window, as in the application
        events = read_dat_window(recording, t - self.span_us, t + 1)
        check_sensor(recording, events, SENSOR_SIZE)
        times = events["t"]
        for k in range(self.timesteps):
            end = t - (self.timesteps - 1 - k) * self.step_us
            lo = np.searchsorted(times, end - self.window_us, side="left")
            hi = np.searchsorted(times, end, side="right")
            part = events[lo:hi]
            out[k, :, : SENSOR_SIZE[0], : SENSOR_SIZE[1]] = stacked_histogram(
                part["x"],
                part["y"],
                part["t"],
                part["p"],
                SENSOR_SIZE,
                self.bins,
                self.count_cutoff,
            )
        return out

    def prepare_data(self, idx: int) -> dict:
        info = self.data_infos[idx]
        if self.load_events:
            return self.pipeline(self._raw_sample(info))
        n = info["labels"].size
        boxes = np.zeros((self.max_objects, 4), dtype=np.float32)
        labels = np.full(self.max_objects, -1, dtype=np.int64)
        boxes[:n] = info["boxes"]
        labels[:n] = info["labels"]
        results = {
            "img": self.frames(info["recording"], info["t"]),
            "gt_bboxes": boxes,
            "gt_labels": labels,
            "recording": info["recording"],
            "t": info["t"],
        }
        return self.pipeline(results)

    def _raw_sample(self, info: dict) -> dict:
        boxes = read_gen1_boxes(info["boxes_file"])
        if "t" in info:
            boxes = boxes[box_times(boxes) == info["t"]]
            events = read_dat_window(info["recording"], info["t"] - self.window_us, info["t"])
        else:
            events = read_event_file(info["recording"])
        return {
            "events": check_sensor(info["recording"], events, SENSOR_SIZE),
            "boxes": boxes,
            "sensor_size": SENSOR_SIZE,
            "recording": info["recording"],
        }
