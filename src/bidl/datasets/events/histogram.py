"""The stacked histogram: the event representation of BIDL's st-yolo (from RVT).

The events of one window are spread over ``bins`` equal time bins between the window's
first and last event (not the window's bounds), counted per polarity, bin and pixel,
and the counts clipped at ``count_cutoff``. The result has ``2 * bins`` channels: the
OFF bins first (polarity 0, oldest to newest), then the ON bins."""

from __future__ import annotations

import numpy as np

from ...registry import BidlError


def stacked_histogram(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    sensor_size: tuple[int, int],
    bins: int = 10,
    count_cutoff: int = 10,
) -> np.ndarray:
    """``[2 * bins, H, W]`` uint8 counts of the events (in time order) of one window."""
    if bins < 1 or not 1 <= count_cutoff <= 255:
        raise BidlError(
            f"stacked_histogram: bins must be >= 1 and count_cutoff in [1, 255], got "
            f"bins={bins}, count_cutoff={count_cutoff}"
        )
    height, width = (int(s) for s in sensor_size)
    if t.size == 0:
        return np.zeros((2 * bins, height, width), dtype=np.uint8)
    t = t.astype(np.int64)
    span = max(int(t[-1]) - int(t[0]), 1)
    index = np.minimum((t - t[0]) * bins // span, bins - 1)
    channel = (p.astype(np.int64) > 0) * bins + index
    flat = (channel * height + y.astype(np.int64)) * width + x.astype(np.int64)
    counts = np.bincount(flat, minlength=2 * bins * height * width)
    return np.minimum(counts, count_cutoff).astype(np.uint8).reshape(2 * bins, height, width)
