"""``TonicDataset``: any tonic dataset object (``tonic.datasets.*``, or anything built like
one: ``__getitem__`` giving ``(events, target)``, ``__len__``, ``sensor_size`` as tonic
states it, ``(W, H, P)``, and optionally ``classes``) used as a bidl dataset: its events
are integrated into ``[timesteps, C, H, W]`` uint8 frames (``EventIntegration``) on access.

bidl never downloads; give an object built from files already on disk, or in a config the
``"module:function"`` that builds one (called with ``dataset_args``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import numpy as np

from ..registry import DATASETS, BidlError
from .base import BaseDataset
from .events.integration import EventIntegration
from .events.records import make_events


def _build(dataset, dataset_args: dict | None):
    if not isinstance(dataset, str):
        return dataset
    module_name, _, attribute = dataset.partition(":")
    if not attribute:
        raise BidlError(
            f"TonicDataset: dataset must be a tonic dataset object or 'module:function', "
            f"got {dataset!r}"
        )
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        raise BidlError(f"TonicDataset: cannot find {dataset!r} ({err})") from None
    return factory(**(dataset_args or {}))


@DATASETS.register_module(name=["TonicDataset", "Tonic"])
class TonicDataset(BaseDataset):
    """Keywords: ``dataset`` (the object, or ``"module:function"`` with ``dataset_args``),
    ``sensor_size`` ``(H, W)`` for datasets whose tonic ``sensor_size`` is None, and
    ``EventIntegration``'s ``timesteps``, ``frame_by``, ``window_us``, ``polarity``,
    ``size``, ``denoise_us``, ``binary``. ``load_events=True`` hands the raw events to the
    pipeline instead (for bidl's event augmentations and ``EventsToFrames``)."""

    SOURCE = "any tonic dataset object (events integrated into frames on access)"

    def __init__(
        self,
        dataset,
        dataset_args: dict | None = None,
        sensor_size: Sequence[int] | None = None,
        timesteps: int = 16,
        frame_by: str = "time",
        window_us: float | None = None,
        polarity: bool = True,
        size=None,
        denoise_us: float | None = None,
        binary: bool = False,
        load_events: bool = False,
        pipeline=(),
        test_mode: bool = False,
        classes: Sequence[str] | None = None,
    ):
        self.dataset = _build(dataset, dataset_args)
        for needed in ("__getitem__", "__len__"):
            if not hasattr(self.dataset, needed):
                raise BidlError(
                    f"TonicDataset: {type(self.dataset).__name__} is not a dataset (no {needed})"
                )
        self.sensor_size = self._sensor(sensor_size)
        self.integration = EventIntegration(
            timesteps, frame_by, window_us, polarity, size, denoise_us, binary, "TonicDataset"
        )
        self.load_events = load_events
        found = getattr(self.dataset, "classes", None)
        if classes is None and found is not None:
            classes = [c.decode() if isinstance(c, bytes) else str(c) for c in found]
        super().__init__("", pipeline=pipeline, classes=classes, test_mode=test_mode)

    def _sensor(self, given) -> tuple[int, int]:
        if given is not None:
            height, width = (int(s) for s in given)
            return height, width
        stated = getattr(self.dataset, "sensor_size", None)
        if stated is None or len(stated) < 2:
            raise BidlError(
                f"TonicDataset: {type(self.dataset).__name__} states no sensor_size; give "
                f"sensor_size=(H, W)"
            )
        return int(stated[1]), int(stated[0])  # tonic says (W, H, P)

    def load_annotations(self) -> list[dict]:
        return [{"index": i} for i in range(len(self.dataset))]

    def _sample(self, idx: int) -> tuple[np.ndarray, int]:
        events, target = self.dataset[idx]
        names = events.dtype.names or ()
        time_field = "t" if "t" in names else "ts" if "ts" in names else None
        if time_field is None or not {"x", "y", "p"} <= set(names):
            raise BidlError(
                f"TonicDataset: sample {idx} has fields {names}; expected x, y, t (or ts), p "
                f"(a 2D event camera dataset)"
            )
        events = make_events(events["x"], events["y"], events[time_field], events["p"] > 0)
        return events, self._label(target)

    def _label(self, target) -> int:
        """tonic gives class indices, or (N-Caltech101) class names."""
        if isinstance(target, bytes):
            target = target.decode()
        if isinstance(target, str):
            if not self.CLASSES or target not in self.CLASSES:
                raise BidlError(f"TonicDataset: label {target!r} is not one of the classes")
            return list(self.CLASSES).index(target)
        return int(np.asarray(target).reshape(-1)[0])

    def get_gt_labels(self) -> np.ndarray:
        targets = getattr(self.dataset, "targets", None)
        if targets is not None and len(targets) == len(self):
            return np.array([self._label(t) for t in targets], dtype=np.int64)
        return np.array([self._sample(i)[1] for i in range(len(self))], dtype=np.int64)

    def prepare_data(self, idx: int) -> dict:
        events, target = self._sample(idx)
        if self.load_events:
            results = {"events": events, "sensor_size": self.sensor_size, "t_start": None,
                       "t_end": None, "gt_label": target}  # fmt: skip
        else:
            results = {"img": self.integration(events, self.sensor_size), "gt_label": target}
        return self.pipeline(results)
