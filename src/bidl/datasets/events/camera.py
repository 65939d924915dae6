"""A simulated event camera (the ESIM / v2e pixel model), vectorised with numpy.

Each pixel watches its log intensity ``L = log(I + eps)`` and keeps a reference level.
Between two rendered frames the log intensity is assumed to change linearly; every time
it crosses ``ref + k * C_on`` (brighter) or ``ref - k * C_off`` (darker) the pixel emits
one event, ON (polarity 1) or OFF (polarity 0), timestamped where the crossing happens
(linear interpolation between the two frame times, in integer microseconds), and the
reference moves by one threshold. The thresholds vary a little from pixel to pixel and
the references start from the first frame plus a small per-pixel offset, both drawn
from a seeded generator, so a simulation is reproducible.

The camera works on a batch of sensors at once: intensities of shape ``[..., H, W]``,
where the leading dimensions (flattened) index independent recordings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from ...registry import BidlError


class Events(NamedTuple):
    """Events of a batch of recordings; ``index`` says which recording each belongs to."""

    index: np.ndarray  # int64, flat index over the leading (batch) dimensions
    x: np.ndarray  # int64 column
    y: np.ndarray  # int64 row
    t: np.ndarray  # int64 microseconds
    p: np.ndarray  # uint8, 1 = ON (brighter), 0 = OFF (darker)

    @property
    def num_events(self) -> int:
        return int(self.t.shape[0])

    @staticmethod
    def concatenate(parts: Iterable[Events]) -> Events:
        parts = list(parts)
        if not parts:
            return _no_events()
        return Events(*(np.concatenate([getattr(e, f) for e in parts]) for f in Events._fields))

    def sorted(self) -> Events:
        """The same events ordered by recording, then time (stable for ties)."""
        if self.t.size and np.any(self.t[1:] < self.t[:-1]):
            order = np.lexsort((self.t, self.index))
        else:  # already in time order (as produced frame by frame): one stable pass
            key = self.index
            if key.size and key.min() >= 0 and key.max() < 1 << 16:
                key = key.astype(np.uint16)  # numpy sorts 16-bit keys by radix
            order = np.argsort(key, kind="stable")
        return Events(*(a[order] for a in self))


def _no_events() -> Events:
    empty = np.zeros(0, dtype=np.int64)
    return Events(empty, empty, empty, empty, np.zeros(0, dtype=np.uint8))


class EventCamera:
    """ESIM-style event generation from a sequence of intensity frames.

    Args:
        threshold: nominal contrast threshold ``C`` (log-intensity units), for ON and OFF.
        threshold_sigma: standard deviation of the per-pixel thresholds, relative to
            ``threshold`` (ON and OFF thresholds are drawn independently).
        ref_jitter: the initial reference level is the first frame's log intensity plus a
            uniform offset in ``[-ref_jitter, ref_jitter] * threshold``.
        eps: offset inside the logarithm; it sets how dark regions respond.
        seed: seed of the generator for the per-pixel variations (anything
            ``numpy.random.default_rng`` takes, e.g. an int or a list of ints).

    Use ``reset(first_frame, t_us)`` then ``step(frame, t_us)`` for each later frame, or
    ``simulate(frames, times_us)`` for a whole sequence.
    """

    def __init__(
        self,
        threshold: float = 0.2,
        threshold_sigma: float = 0.03,
        ref_jitter: float = 0.3,
        eps: float = 0.1,
        seed=0,
    ):
        if not threshold > 0:
            raise BidlError(f"EventCamera: threshold must be > 0, got {threshold}")
        if threshold_sigma < 0:
            raise BidlError(f"EventCamera: threshold_sigma must be >= 0, got {threshold_sigma}")
        if not 0 <= ref_jitter < 1:
            raise BidlError(f"EventCamera: ref_jitter must be in [0, 1), got {ref_jitter}")
        if not eps > 0:
            raise BidlError(f"EventCamera: eps must be > 0, got {eps}")
        self.threshold = float(threshold)
        self.threshold_sigma = float(threshold_sigma)
        self.ref_jitter = float(ref_jitter)
        self.eps = float(eps)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.ref: np.ndarray | None = None
        self.c_on: np.ndarray | None = None
        self.c_off: np.ndarray | None = None
        self._last_log: np.ndarray | None = None
        self._last_t: float | None = None

    def __repr__(self) -> str:
        return (
            f"EventCamera(threshold={self.threshold}, threshold_sigma={self.threshold_sigma}, "
            f"ref_jitter={self.ref_jitter}, eps={self.eps}, seed={self.seed})"
        )

    def log_intensity(self, intensity: np.ndarray) -> np.ndarray:
        return np.log(np.asarray(intensity, dtype=np.float32) + np.float32(self.eps))

    def reset(self, intensity: np.ndarray, t_us: float = 0.0) -> None:
        """Start a recording at ``t_us`` from the frame ``intensity`` (``[..., H, W]``, >= 0)."""
        intensity = np.asarray(intensity, dtype=np.float32)
        if intensity.ndim < 2:
            raise BidlError(
                f"EventCamera.reset: a frame must have shape [..., H, W], got {intensity.shape}"
            )
        if intensity.size and float(intensity.min()) < 0:
            raise BidlError("EventCamera.reset: intensities must be >= 0")
        shape = intensity.shape
        c = np.float32(self.threshold)
        spread = np.float32(self.threshold_sigma)
        floor = np.float32(0.25) * c  # keep every threshold positive
        self.c_on = np.maximum(
            c * (1 + spread * self.rng.standard_normal(shape, np.float32)), floor
        )
        self.c_off = np.maximum(
            c * (1 + spread * self.rng.standard_normal(shape, np.float32)), floor
        )
        jitter = self.rng.uniform(-self.ref_jitter, self.ref_jitter, shape).astype(np.float32)
        log = self.log_intensity(intensity)
        self.ref = log + jitter * c
        self._last_log = log
        self._last_t = float(t_us)

    def step(self, intensity: np.ndarray, t_us: float) -> Events:
        """Advance to the frame ``intensity`` at time ``t_us``; return the events in between,
        in time order."""
        if self.ref is None:
            raise BidlError("EventCamera.step: call reset(first_frame, t_us) first")
        intensity = np.asarray(intensity, dtype=np.float32)
        if intensity.shape != self.ref.shape:
            raise BidlError(
                f"EventCamera.step: frame shape {intensity.shape} differs from the first "
                f"frame's {self.ref.shape}"
            )
        t0, t1 = self._last_t, float(t_us)
        if t1 < t0:
            raise BidlError(f"EventCamera.step: time went backwards ({t1} us after {t0} us)")
        prev = self._last_log
        cur = self.log_intensity(intensity)
        events = self._crossings(prev, cur, t0, t1)
        self._last_log = cur
        self._last_t = t1
        return events

    def _crossings(self, prev: np.ndarray, cur: np.ndarray, t0: float, t1: float) -> Events:
        shape = self.ref.shape
        ref = self.ref.reshape(-1)
        c_on = self.c_on.reshape(-1)
        c_off = self.c_off.reshape(-1)
        diff = cur.reshape(-1) - ref
        # only pixels past a threshold fire; everything else stays untouched
        pix = np.flatnonzero((diff >= c_on) | (diff <= -c_off))
        if pix.size == 0:
            return _no_events()
        d = diff[pix]
        up = d > 0
        thr = np.where(up, c_on[pix], c_off[pix])
        counts = np.floor(np.abs(d) / thr).astype(np.int64)
        step = np.where(up, thr, -thr)
        ref_start = ref[pix]
        ref[pix] = ref_start + counts * step  # one threshold per event
        # one row per event: its pixel and which crossing (1..n) it is
        rep = np.repeat(np.arange(pix.size), counts)
        first = np.cumsum(counts) - counts
        k = (np.arange(rep.size) - first[rep] + 1).astype(np.float32)
        ev_pix = pix[rep]
        level = ref_start[rep] + k * step[rep]
        l0 = prev.reshape(-1)[ev_pix]
        delta = cur.reshape(-1)[ev_pix] - l0
        safe = np.where(delta == 0, np.float32(1), delta)
        frac = np.clip((level - l0) / safe, 0.0, 1.0).astype(np.float64)
        t = np.rint(t0 + frac * (t1 - t0)).astype(np.int64)
        h, w = shape[-2:]
        index, rem = np.divmod(ev_pix, h * w)
        y, x = np.divmod(rem, w)
        p = up[rep].astype(np.uint8)
        # in time order (ties by pixel); 16-bit keys let numpy sort by radix
        rel = t - int(np.floor(t0))
        order = np.argsort(rel.astype(np.uint16) if t1 - t0 < 65535 else rel, kind="stable")
        return Events(index[order], x[order], y[order], t[order], p[order])

    def simulate(self, frames: Iterable[np.ndarray], times_us: Iterable[float]) -> Events:
        """Run a whole sequence (frames ``[..., H, W]`` at ``times_us``); events sorted by
        recording then time. The first frame initialises the pixels and gives no events."""
        frames = iter(frames)
        times = [float(t) for t in times_us]
        if not times:
            raise BidlError("EventCamera.simulate: needs at least one frame time")
        parts = []
        for i, t in enumerate(times):
            try:
                frame = next(frames)
            except StopIteration:
                raise BidlError(
                    f"EventCamera.simulate: got {i} frames for {len(times)} frame times"
                ) from None
            if i == 0:
                self.reset(frame, t)
            else:
                parts.append(self.step(frame, t))
        return Events.concatenate(parts).sorted()
