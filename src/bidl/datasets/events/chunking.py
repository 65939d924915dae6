"""Cut a stream of event blocks (of whatever sizes a reader decodes) into chunks of a fixed
number of events or into fixed time windows, holding at most one chunk (plus one block) in
memory, so that an hour-long recording is never loaded whole."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ...registry import BidlError
from .records import concatenate, no_events


def check_chunking(chunk_events, chunk_us, where: str) -> None:
    if chunk_events is not None and chunk_us is not None:
        raise BidlError(f"{where}: give chunk_events or chunk_us, not both")
    if chunk_events is not None and (
        isinstance(chunk_events, bool) or not isinstance(chunk_events, (int, np.integer))
    ):
        raise BidlError(f"{where}: chunk_events must be an int, got {chunk_events!r}")
    if chunk_events is not None and chunk_events < 1:
        raise BidlError(f"{where}: chunk_events must be >= 1, got {chunk_events}")
    if chunk_us is not None and not chunk_us > 0:
        raise BidlError(f"{where}: chunk_us must be > 0, got {chunk_us!r}")


def by_count(blocks: Iterable[np.ndarray], chunk_events: int) -> Iterator[np.ndarray]:
    """Chunks of exactly ``chunk_events`` events (the last one may be shorter), in order."""
    pending: list[np.ndarray] = []
    held = 0
    for block in blocks:
        if not block.size:
            continue
        pending.append(block)
        held += block.size
        if held < chunk_events:
            continue
        merged = concatenate(pending)
        cut = (held // chunk_events) * chunk_events
        for start in range(0, cut, chunk_events):
            yield merged[start : start + chunk_events]
        pending = [merged[cut:]] if cut < held else []
        held -= cut
    if held:
        yield concatenate(pending)


def by_time(
    blocks: Iterable[np.ndarray], chunk_us: float, t_start: float | None = None
) -> Iterator[np.ndarray]:
    """Every window ``[t_start + k * chunk_us, t_start + (k + 1) * chunk_us)`` in turn, empty
    ones included, up to the last event's (``t_start``: by default the first event's time).

    Events are placed in file order: one that comes after a later window has begun (an
    out-of-order timestamp) joins the window being filled rather than reopening a closed
    one; an event before ``t_start`` joins the first window."""
    window = 0
    pending: list[np.ndarray] = []
    for block in blocks:
        if not block.size:
            continue
        if t_start is None:
            t_start = float(block["t"][0])
        index = np.floor((block["t"] - t_start) / chunk_us).astype(np.int64)
        index = np.maximum.accumulate(np.maximum(index, window))
        cuts = np.flatnonzero(np.diff(index)) + 1
        starts = np.concatenate([[0], cuts])
        for begin, end in zip(starts, np.concatenate([cuts, [block.size]]), strict=True):
            target = int(index[begin])
            if target > window:
                yield concatenate(pending)
                pending = []
                for _ in range(window + 1, target):
                    yield no_events()
                window = target
            pending.append(block[begin:end])
    if pending:
        yield concatenate(pending)


def rechunk(
    blocks: Iterable[np.ndarray],
    chunk_events: int | None = None,
    chunk_us: float | None = None,
    t_start: float | None = None,
) -> Iterator[np.ndarray]:
    """``blocks`` as chunks of ``chunk_events`` events, or as ``chunk_us`` time windows, or
    (neither given) as they come, empty blocks left out."""
    if chunk_events is not None:
        return by_count(blocks, int(chunk_events))
    if chunk_us is not None:
        return by_time(blocks, float(chunk_us), t_start)
    return (b for b in blocks if b.size)
