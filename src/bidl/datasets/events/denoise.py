"""Denoising of event recordings: drop events with no recent neighbour (sensor noise)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def denoise(events: np.ndarray, filter_us: float, sensor_size: Sequence[int]) -> np.ndarray:
    """Keep the events that have an event at one of the 4 neighbouring pixels within the
    preceding ``filter_us`` microseconds (isolated events are sensor noise)."""
    n = events.size
    if n == 0:
        return events
    height, width = (int(s) for s in sensor_size)
    order = np.argsort(events["t"], kind="stable")
    events = events[order]
    x, y, t = (events[k].astype(np.int64) for k in "xyt")
    pixel = y * width + x
    index = np.arange(n, dtype=np.int64)
    key = pixel * n + index  # events grouped by pixel, in time order within a pixel
    sorted_key = np.sort(key)
    keep = np.zeros(n, dtype=bool)
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ny, nx = y + dy, x + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        wanted = (ny * width + nx) * n + index  # the neighbour's events before this one
        slot = np.searchsorted(sorted_key, wanted) - 1
        found = sorted_key[np.maximum(slot, 0)]
        before = (slot >= 0) & (found // n == ny * width + nx) & inside
        previous_t = t[found % n]
        keep |= before & (t - previous_t < filter_us)
    return events[keep]
