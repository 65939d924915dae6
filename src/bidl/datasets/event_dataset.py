"""``EventDataset``: the base of the DVS datasets. It caches the integrated frames of each
recording (``events.EventIntegration``), or (``load_events=True``) hands raw events to the
pipeline so that event augmentations (``DropEvents``, ``SpatialJitter``, ``TimeJitter``) run
before an ``EventsToFrames`` step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .cached_dataset import CachedDataset
from .events.integration import EventIntegration


class EventDataset(CachedDataset):
    """Base of the DVS datasets: a subclass lists recordings (``list_samples``) and reads
    one (``read_events(ref) -> (events, t_start, t_end)``, the span may be None); this
    class integrates and caches them. Keywords are ``EventIntegration``'s plus
    ``load_events`` (no cache: samples carry ``events`` for an ``EventsToFrames`` step)."""

    SENSOR_SIZE: tuple[int, int] = (128, 128)

    def __init__(
        self,
        data_prefix: str,
        pipeline: Sequence[dict] = (),
        test_mode: bool = False,
        timesteps: int = 16,
        frame_by: str = "time",
        window_us: float | None = None,
        polarity: bool = True,
        size=None,
        denoise_us: float | None = None,
        binary: bool = False,
        load_events: bool = False,
        **kwargs,
    ):
        self.integration = EventIntegration(
            timesteps, frame_by, window_us, polarity, size, denoise_us, binary, type(self).__name__
        )
        self.load_events = load_events
        super().__init__(data_prefix, pipeline, test_mode, **kwargs)

    def cache_params(self) -> dict:
        return self.integration.params()

    def read_events(self, ref) -> tuple[np.ndarray, float | None, float | None]:
        raise NotImplementedError

    def decode(self, ref) -> np.ndarray:
        events, t_start, t_end = self.read_events(ref)
        return self.integration(events, self.SENSOR_SIZE, t_start, t_end)

    def load_annotations(self) -> list[dict]:
        if not self.load_events:
            return super().load_annotations()
        refs, labels = self.list_samples(self.split)
        if not refs:
            raise self.missing(f"found no samples of split {self.split!r}")
        return [{"event_ref": r, "gt_label": int(g)} for r, g in zip(refs, labels, strict=True)]

    def prepare_data(self, idx: int) -> dict:
        if not self.load_events:
            return super().prepare_data(idx)
        info = self.data_infos[idx]
        events, t_start, t_end = self.read_events(info["event_ref"])
        results = {
            "events": events,
            "sensor_size": self.SENSOR_SIZE,
            "t_start": t_start,
            "t_end": t_end,
            "gt_label": info["gt_label"],
        }
        return self.pipeline(results)
