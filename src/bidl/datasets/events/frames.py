"""Integrate event streams ``(x, y, t, p)`` into frames of event counts.

A frame stack has shape ``[n_frames, 2, H, W]``: channel 0 counts OFF events (polarity
0, or -1), channel 1 counts ON events (polarity 1). Frames split a recording either in
equal time windows (``by="time"``), in consecutive windows of fixed length
(``window_us``), or in groups of equal numbers of events (``by="count"``).

``events_to_frames_batch`` does the same for many recordings stored back to back
(``offsets[i]:offsets[i + 1]`` are the events of recording ``i``) in one vectorised
pass, which is how datasets integrate a whole split at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...registry import BidlError

_MODES = ("time", "count")
# recordings are integrated in chunks of at most this many counts and events, which keeps
# temporaries small (and reused) however large the batch
_CHUNK_BINS = 1 << 22
_CHUNK_EVENTS = 1 << 20


def _as_1d(name: str, values, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise BidlError(f"{where}: {name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_events(x, y, t, p, sensor_size, where: str):
    x, y, t, p = (_as_1d(n, v, where) for n, v in zip("xytp", (x, y, t, p), strict=True))
    lengths = {"x": len(x), "y": len(y), "t": len(t), "p": len(p)}
    if len(set(lengths.values())) != 1:
        got = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise BidlError(f"{where}: x, y, t and p must have the same length; got {got}")
    try:
        height, width = (int(s) for s in sensor_size)
    except (TypeError, ValueError):
        raise BidlError(f"{where}: sensor_size must be (H, W), got {sensor_size!r}") from None
    if height < 1 or width < 1:
        raise BidlError(f"{where}: sensor_size must be positive, got {(height, width)}")
    for name, arr in (("x", x), ("y", y), ("p", p)):
        integral = np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool
        if not integral and arr.size and not np.array_equal(arr, np.round(arr)):
            raise BidlError(f"{where}: {name} must hold integers, got dtype {arr.dtype}")
    if not (np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.floating)):
        raise BidlError(f"{where}: t must hold numbers, got dtype {t.dtype}")
    if np.issubdtype(t.dtype, np.floating) and not np.isfinite(t).all():  # no silent drops
        bad = np.flatnonzero(~np.isfinite(t))
        raise BidlError(
            f"{where}: {bad.size} timestamp(s) are NaN or infinite; first at event "
            f"{int(bad[0])}: t = {t[bad[0]]}"
        )
    for name, arr, limit, axis in (("x", x, width, "W"), ("y", y, height, "H")):
        if arr.size and (arr.min() < 0 or arr.max() >= limit):
            bad = np.flatnonzero((arr < 0) | (arr >= limit))
            i = int(bad[0])
            raise BidlError(
                f"{where}: {bad.size} event(s) have {name} outside the sensor "
                f"(sensor_size (H, W) = {(height, width)}, so 0 <= {name} < {axis} = {limit}); "
                f"first at event {i}: {name} = {arr[i]}"
            )
    _check_polarity(p, where)
    return x, y, t, p, height, width


def _check_polarity(p: np.ndarray, where: str) -> None:
    """Polarities must be {0, 1} (OFF/ON, or booleans) or {-1, 1}."""
    if p.size == 0:
        return
    low, high = p.min(), p.max()
    if low >= 0 and high <= 1:
        return
    if low == -1 and high <= 1 and not np.any(p == 0):
        return
    shown = np.unique(p)[:8].tolist()
    raise BidlError(f"{where}: polarity p must be 0/1 (OFF/ON) or -1/1, got values {shown}")


def _channel(p: np.ndarray) -> np.ndarray:
    """Channel 0 for OFF (0 or -1), 1 for ON."""
    if p.dtype == np.uint8 or p.dtype == bool:
        return p.view(np.uint8)
    return (p > 0).view(np.uint8)


def _check_frames(n_frames, by, window_us, where: str) -> tuple[int, str]:
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)):
        raise BidlError(f"{where}: n_frames must be an int, got {n_frames!r}")
    if n_frames < 1:
        raise BidlError(f"{where}: n_frames must be >= 1, got {n_frames}")
    if by not in _MODES:
        raise BidlError(f"{where}: by must be one of {_MODES}, got {by!r}")
    if window_us is not None:
        if by != "time":
            raise BidlError(f"{where}: window_us applies to by='time' only, got by={by!r}")
        if not (window_us > 0 and np.isfinite(window_us)):
            raise BidlError(f"{where}: window_us must be finite and > 0, got {window_us}")
    return int(n_frames), by


def _time_bins(t, start, end, n_frames: int, window_us) -> np.ndarray:
    """Frame index of each event (``-1`` = outside the integrated span)."""
    t = t.astype(np.float64)
    if window_us is not None:
        bins = np.floor((t - start) / float(window_us))
        keep = (t >= start) & (bins < n_frames)
    else:
        span = np.where(end > start, end - start, 1.0)
        bins = np.minimum(np.floor((t - start) * n_frames / span), n_frames - 1)
        keep = (t >= start) & (t <= end)  # t == t_end belongs to the last frame
    return np.where(keep, bins, -1).astype(np.int64)


def _saturate(counts: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        counts = np.minimum(counts, np.iinfo(dtype).max)
    return counts.astype(dtype, copy=False)


def events_to_frames(
    x,
    y,
    t,
    p,
    sensor_size: Sequence[int],
    n_frames: int,
    by: str = "time",
    t_start: float | None = None,
    t_end: float | None = None,
    window_us: float | None = None,
    dtype=np.int64,
) -> np.ndarray:
    """Count events per frame, polarity and pixel: an array ``[n_frames, 2, H, W]``.

    Args:
        x, y, t, p: event columns, rows, timestamps and polarities (0/1 or -1/1).
        sensor_size: ``(H, W)``.
        n_frames: number of frames.
        by: ``"time"`` splits ``[t_start, t_end]`` into ``n_frames`` equal windows
            (events outside are dropped; an event at ``t_end`` counts in the last frame);
            ``"count"`` gives each frame an equal share of the events in time order
            (frame ``i * n_frames // n`` for the ``i``-th of ``n`` events).
        t_start, t_end: the span for ``by="time"``; default the first and last timestamps.
        window_us: for ``by="time"``, frames are instead consecutive windows
            ``[t_start + k * window_us, t_start + (k + 1) * window_us)``; later events are
            dropped and ``t_end`` is ignored.
        dtype: of the result; an integer dtype saturates at its maximum (``uint8`` clips
            at 255) instead of wrapping around.
    """
    n = np.asarray(t).shape[0] if np.ndim(t) == 1 else 0
    frames = _integrate(
        "events_to_frames",
        x,
        y,
        t,
        p,
        np.array([0, n]),
        None,
        sensor_size,
        n_frames,
        by,
        t_start,
        t_end,
        window_us,
        dtype,
    )
    return frames[0]


def events_to_frames_batch(
    x,
    y,
    t,
    p,
    offsets,
    sensor_size: Sequence[int],
    n_frames: int,
    by: str = "time",
    t_start=None,
    t_end=None,
    window_us: float | None = None,
    dtype=np.int64,
    samples=None,
) -> np.ndarray:
    """``events_to_frames`` for many recordings at once: an array ``[N, n_frames, 2, H, W]``.

    The events of recording ``i`` are ``offsets[i]:offsets[i + 1]`` (``offsets`` has
    ``N + 1`` entries, from 0 to the number of events). ``t_start`` and ``t_end`` may be
    scalars (shared) or arrays of ``N`` values; by default each recording's own first
    and last timestamps. ``samples`` (indices) integrates only those recordings, in that
    order. The work runs in chunks of recordings to bound temporary memory.
    """
    return _integrate(
        "events_to_frames_batch",
        x,
        y,
        t,
        p,
        offsets,
        samples,
        sensor_size,
        n_frames,
        by,
        t_start,
        t_end,
        window_us,
        dtype,
    )


def _integrate(
    where, x, y, t, p, offsets, samples, sensor_size, n_frames, by, t_start, t_end, window_us, dtype
) -> np.ndarray:
    x, y, t, p, height, width = _check_events(x, y, t, p, sensor_size, where)
    n_frames, by = _check_frames(n_frames, by, window_us, where)
    dtype = np.dtype(dtype)
    offsets = _as_1d("offsets", offsets, where)
    if not np.issubdtype(offsets.dtype, np.integer):
        raise BidlError(f"{where}: offsets must hold integers, got dtype {offsets.dtype}")
    offsets = offsets.astype(np.int64, copy=False)
    if offsets.size < 1 or offsets[0] != 0 or offsets[-1] != t.size:
        ends = f" from {offsets[0]} to {offsets[-1]}" if offsets.size else ""
        raise BidlError(
            f"{where}: offsets must run from 0 to the number of events ({t.size}); "
            f"got {offsets.size} offsets{ends}"
        )
    lengths = np.diff(offsets)
    if np.any(lengths < 0):
        i = int(np.flatnonzero(lengths < 0)[0])
        raise BidlError(
            f"{where}: offsets must not decrease; offsets[{i}] = {offsets[i]} > "
            f"offsets[{i + 1}] = {offsets[i + 1]}"
        )
    n = lengths.size
    if samples is None:
        samples = np.arange(n, dtype=np.int64)
    else:
        samples = _as_1d("samples", samples, where)
        if samples.size and not np.issubdtype(samples.dtype, np.integer):
            raise BidlError(f"{where}: samples must hold integers, got dtype {samples.dtype}")
        samples = samples.astype(np.int64)
        if samples.size and (samples.min() < 0 or samples.max() >= n):
            raise BidlError(
                f"{where}: samples must index the {n} recordings (0..{n - 1}); got values "
                f"from {samples.min()} to {samples.max()}"
            )

    start = end = None
    if by == "time":
        start = _per_sample("t_start", t_start, n, where)
        end = None if window_us is not None else _per_sample("t_end", t_end, n, where)
        if start is None or (end is None and window_us is None):
            first, last = _first_last(t, offsets, lengths)
            start = first if start is None else start
            end = last if end is None and window_us is None else end
        if end is not None and np.any(end < start):
            i = int(np.flatnonzero(end < start)[0])
            raise BidlError(
                f"{where}: t_end ({end[i]}) is before t_start ({start[i]}) for recording {i}"
            )

    per_sample = n_frames * 2 * height * width
    out = np.zeros((samples.size, n_frames, 2, height, width), dtype=dtype)
    flat_out = out.reshape(samples.size, per_sample)
    sel_lengths = lengths[samples]
    cum = np.concatenate([[0], np.cumsum(sel_lengths)])
    lo = 0
    while lo < samples.size:
        hi = min(samples.size, lo + max(1, _CHUNK_BINS // per_sample))
        hi = max(lo + 1, min(hi, int(np.searchsorted(cum, cum[lo] + _CHUNK_EVENTS, "right")) - 1))
        flat_out[lo:hi] = _integrate_chunk(
            x,
            y,
            t,
            p,
            offsets,
            samples[lo:hi],
            sel_lengths[lo:hi],
            height,
            width,
            n_frames,
            by,
            start,
            end,
            window_us,
            dtype,
        )
        lo = hi
    return out


def _integrate_chunk(
    x, y, t, p, offsets, chunk, lengths, height, width, n_frames, by, start, end, window_us, dtype
) -> np.ndarray:
    """Counts ``[len(chunk), n_frames * 2 * H * W]`` of the recordings ``chunk``."""
    m = chunk.size
    total = int(lengths.sum())
    if m and chunk[-1] - chunk[0] == m - 1 and np.all(np.diff(chunk) == 1):
        events = slice(offsets[chunk[0]], offsets[chunk[0]] + total)  # contiguous: views
    else:
        first = np.repeat(offsets[chunk] - (np.cumsum(lengths) - lengths), lengths)
        events = first + np.arange(total)
    xs, ys, ts, ps = x[events], y[events], t[events], p[events]
    local = np.repeat(np.arange(m, dtype=np.int64), lengths)
    if by == "time":
        ev_start = np.repeat(start[chunk], lengths)
        ev_end = None if end is None else np.repeat(end[chunk], lengths)
        bins = _time_bins(ts, ev_start, ev_end, n_frames, window_us)
    else:
        order = None
        if total > 1:
            same = local[1:] == local[:-1]
            if np.any(same & (ts[1:] < ts[:-1])):  # not in time order within recordings
                order = np.lexsort((ts, local))
        rank = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        if order is not None:
            ranked = np.empty(total, dtype=np.int64)
            ranked[order] = rank
            rank = ranked
        bins = rank * n_frames // np.maximum(np.repeat(lengths, lengths), 1)
    keep = bins >= 0
    flat = (local * n_frames + bins) * 2 + _channel(ps)
    flat = (flat * height + ys.astype(np.int64)) * width + xs.astype(np.int64)
    counts = np.bincount(flat[keep], minlength=m * n_frames * 2 * height * width)
    return _saturate(counts, dtype).reshape(m, -1)


def _per_sample(name: str, value, n: int, where: str):
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise BidlError(f"{where}: {name} must be finite, got {value!r}")
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise BidlError(
            f"{where}: {name} must be a scalar or one value per recording ({n}), "
            f"got shape {arr.shape}"
        )
    return arr


def _first_last(t: np.ndarray, offsets: np.ndarray, lengths: np.ndarray):
    """Each recording's smallest and largest timestamp (0 for an empty one)."""
    n = lengths.size
    first = np.zeros(n, dtype=np.float64)
    last = np.zeros(n, dtype=np.float64)
    full = np.flatnonzero(lengths > 0)
    if full.size:
        first[full] = np.minimum.reduceat(t, offsets[full])
        last[full] = np.maximum.reduceat(t, offsets[full])
    return first, last
