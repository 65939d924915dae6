"""Event steps for datasets built with ``load_events=True``: tonic's augmentations on the
sample's ``events`` (structured x, y, t, p), then ``EventsToFrames`` into ``img``."""

from __future__ import annotations

import numpy as np

from ...registry import PIPELINES, BidlError
from ..events.denoise import denoise
from ..events.integration import EventIntegration


def _events(results: dict, where: str) -> np.ndarray:
    if "events" not in results:
        raise BidlError(
            f"{where}: the sample has no 'events'; build the dataset with load_events=True "
            f"(it has keys {sorted(results)})"
        )
    return results["events"]


def _tonic_transform(name: str):
    """tonic's transform class ``name``; tonic is the ``events`` extra."""
    try:
        import tonic.transforms
    except ImportError:
        raise BidlError(
            f"{name} runs tonic's transform, and tonic is not installed; install it with: "
            f"pip install 'bidl[events]'"
        ) from None
    return getattr(tonic.transforms, name)


@PIPELINES.register_module()
class DropEvent:
    """Drop each event with probability ``p`` (tonic's ``DropEvent``; a pair draws ``p``)."""

    def __init__(self, p=0.1):
        TonicDropEvent = _tonic_transform("DropEvent")
        self.transform = TonicDropEvent(p=p)

    def __call__(self, results: dict) -> dict:
        results["events"] = self.transform(_events(results, "DropEvent"))
        return results


@PIPELINES.register_module()
class SpatialJitter:
    """Move each event by Gaussian noise of variances ``var_x``, ``var_y`` (tonic's
    ``SpatialJitter``), rounded to pixels; events leaving the sensor are dropped."""

    def __init__(self, var_x: float = 1.0, var_y: float = 1.0, sigma_xy: float = 0.0):
        self.var_x, self.var_y, self.sigma_xy = var_x, var_y, sigma_xy

    def __call__(self, results: dict) -> dict:
        TonicSpatialJitter = _tonic_transform("SpatialJitter")
        events = _events(results, "SpatialJitter")
        height, width = results["sensor_size"]
        moved = events.astype([("x", "<f8"), ("y", "<f8"), ("t", "<i8"), ("p", "u1")])
        jitter = TonicSpatialJitter((width, height, 2), self.var_x, self.var_y, self.sigma_xy, True)
        moved = jitter(moved)
        out = np.empty(moved.size, dtype=events.dtype)
        for name in "xy":
            out[name] = np.floor(moved[name])
        out["t"], out["p"] = moved["t"], moved["p"]
        results["events"] = out
        return results


@PIPELINES.register_module()
class TimeJitter:
    """Add Gaussian noise of ``std`` microseconds to each timestamp (tonic's
    ``TimeJitter``), keeping times non-negative and events in time order."""

    def __init__(self, std: float = 100.0):
        TonicTimeJitter = _tonic_transform("TimeJitter")
        self.transform = TonicTimeJitter(std=std, clip_negative=True, sort_timestamps=True)

    def __call__(self, results: dict) -> dict:
        results["events"] = self.transform(_events(results, "TimeJitter"))
        return results


@PIPELINES.register_module()
class DenoiseEvents:
    """Drop isolated events: no event at a neighbouring pixel in the preceding ``filter_us``."""

    def __init__(self, filter_us: float = 10000.0):
        self.filter_us = filter_us

    def __call__(self, results: dict) -> dict:
        results["events"] = denoise(
            _events(results, "DenoiseEvents"), self.filter_us, results["sensor_size"]
        )
        return results


@PIPELINES.register_module()
class EventsToFrames:
    """Integrate the sample's ``events`` into ``img`` ``[timesteps, C, H, W]`` uint8
    (keywords as ``EventIntegration``: frame_by, window_us, polarity, size, binary)."""

    def __init__(
        self,
        timesteps: int = 16,
        frame_by="time",
        window_us=None,
        polarity=True,
        size=None,
        binary=False,
    ):
        self.integration = EventIntegration(
            timesteps, frame_by, window_us, polarity, size, None, binary, "EventsToFrames"
        )

    def __call__(self, results: dict) -> dict:
        events = _events(results, "EventsToFrames")
        results["img"] = self.integration(
            events, results["sensor_size"], results.get("t_start"), results.get("t_end")
        )
        del results["events"]
        return results
