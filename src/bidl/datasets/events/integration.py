"""``EventIntegration``: one recording (a structured event array) into a uint8 frame stack
``[timesteps, C, H, W]``: frames by time window or by event count, two polarity channels
(OFF, ON) or one, optional downsampling of the sensor and an optional denoise filter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...registry import BidlError
from .denoise import denoise
from .frames import _channel, events_to_frames


def size_pair(size, where: str) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size)
    ):
        raise BidlError(
            f"{where}: size must be None, an int or (h, w) of positive ints, got {size!r}"
        )
    return int(size[0]), int(size[1])


class EventIntegration:
    """Integrate one recording into ``[timesteps, C, H, W]`` uint8 event counts.

    Args:
        timesteps: number of frames.
        frame_by: ``"time"`` (equal time windows over the recording's span, or
            ``window_us``-long windows from its start) or ``"count"`` (equal numbers of
            events per frame).
        window_us: fixed frame length in microseconds (``frame_by="time"`` only).
        polarity: True for two channels (0 OFF, 1 ON); False for one channel of all events.
        size: output ``(h, w)`` (or an int); events are downsampled by integer scaling of
            their coordinates (``x * w // W``), so 128 -> 40 keeps every event.
        denoise_us: drop events with no neighbouring event in the preceding window.
        binary: clip counts to 1 (spike frames).
    """

    def __init__(
        self,
        timesteps: int = 16,
        frame_by: str = "time",
        window_us: float | None = None,
        polarity: bool = True,
        size=None,
        denoise_us: float | None = None,
        binary: bool = False,
        where: str = "EventIntegration",
    ):
        if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)):
            raise BidlError(f"{where}: timesteps must be an int, got {timesteps!r}")
        if timesteps < 1:
            raise BidlError(f"{where}: timesteps must be >= 1, got {timesteps}")
        if frame_by not in ("time", "count"):
            raise BidlError(f"{where}: frame_by must be 'time' or 'count', got {frame_by!r}")
        if window_us is not None and (frame_by != "time" or not window_us > 0):
            raise BidlError(f"{where}: window_us must be > 0 and needs frame_by='time'")
        if denoise_us is not None and not denoise_us > 0:
            raise BidlError(f"{where}: denoise_us must be > 0 or None, got {denoise_us!r}")
        self.timesteps = int(timesteps)
        self.frame_by = frame_by
        self.window_us = window_us
        self.polarity = bool(polarity)
        self.size = size_pair(size, where)
        self.denoise_us = denoise_us
        self.binary = bool(binary)
        self.where = where

    def params(self) -> dict:
        return {
            "timesteps": self.timesteps,
            "frame_by": self.frame_by,
            "window_us": self.window_us,
            "polarity": self.polarity,
            "size": list(self.size) if self.size else None,
            "denoise_us": self.denoise_us,
            "binary": self.binary,
        }

    def output_size(self, sensor_size: Sequence[int]) -> tuple[int, int]:
        return self.size or (int(sensor_size[0]), int(sensor_size[1]))

    def __call__(self, events: np.ndarray, sensor_size: Sequence[int], t_start=None, t_end=None):
        height, width = int(sensor_size[0]), int(sensor_size[1])
        if self.denoise_us is not None:
            events = denoise(events, self.denoise_us, (height, width))
        out_h, out_w = self.output_size(sensor_size)
        x = events["x"].astype(np.int64) * out_w // width
        y = events["y"].astype(np.int64) * out_h // height
        frames = events_to_frames(
            x,
            y,
            events["t"],
            events["p"],
            (out_h, out_w),
            self.timesteps,
            by=self.frame_by,
            t_start=t_start if self.frame_by == "time" else None,
            t_end=t_end if self.frame_by == "time" and self.window_us is None else None,
            window_us=self.window_us,
            dtype=np.int64,
        )
        if not self.polarity:
            frames = frames.sum(axis=1, keepdims=True)
        if self.binary:
            frames = np.minimum(frames, 1)
        return np.minimum(frames, 255).astype(np.uint8)

    def single_frame(self, events: np.ndarray, sensor_size: Sequence[int]) -> np.ndarray:
        """``[1, C, h, w]``: what this integration (one time step) makes of ``events`` that
        the caller already chose by time, counted without binning them by time (a live
        stream makes a frame every step, so this is on its latency path). Events that are
        not valid (outside the sensor, odd polarities) go through ``__call__``, which names
        the fault."""
        if self.timesteps != 1:
            raise BidlError(f"{self.where}: single_frame needs timesteps=1")
        height, width = int(sensor_size[0]), int(sensor_size[1])
        if self.denoise_us is not None:
            events = denoise(events, self.denoise_us, (height, width))
        x, y, p = events["x"], events["y"], events["p"]
        if x.size and not (
            0 <= x.min() <= x.max() < width
            and 0 <= y.min() <= y.max() < height
            and 0 <= p.min() <= p.max() <= 1
        ):
            return self(events, sensor_size, t_start=float(events["t"].min()))
        out_h, out_w = self.output_size(sensor_size)
        rows = y.astype(np.int64) * out_h // height
        cols = x.astype(np.int64) * out_w // width
        flat = (_channel(p).astype(np.int64) * out_h + rows) * out_w + cols
        counts = np.bincount(flat, minlength=2 * out_h * out_w).reshape(1, 2, out_h, out_w)
        if not self.polarity:
            counts = counts.sum(axis=1, keepdims=True)
        if self.binary:
            counts = np.minimum(counts, 1)
        return np.minimum(counts, 255).astype(np.uint8)
