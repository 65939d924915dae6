"""Prophesee ``.dat`` files (decoded CD events; N-CARS, GEN1): a text header of ``% ...`` lines,
then one byte of event type and one of event size (absent in files without a header), then
8-byte little-endian events: a 32-bit microsecond timestamp and a 32-bit word holding x
(bits 13-0), y (bits 27-14) and the polarity (bit 28). Read block by block."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bounded import header_line
from .records import EventFileError, make_events

BLOCK_EVENTS = 1 << 18
_RECORD = np.dtype([("t", "<u4"), ("w", "<u4")])


@dataclass
class DatHeader:
    event_type: int
    event_size: int
    width: int | None
    height: int | None
    offset: int  # byte offset of the first event
    fields: dict = field(default_factory=dict)


def read_dat_header(path: str | Path) -> DatHeader:
    path = Path(path)
    fields: dict[str, str] = {}
    offset = 0
    lines = 0
    with open(path, "rb") as handle:
        while True:
            line = header_line(handle, path, offset, EventFileError)
            if not line.startswith(b"%"):
                break
            offset += len(line)
            lines += 1
            key, _, value = line[1:].decode("latin-1").strip().partition(" ")
            fields[key] = value.strip()
        handle.seek(offset)
        kind_size = handle.read(2) if lines else b"\x00\x08"
    if len(kind_size) < 2:
        raise EventFileError(
            f"{path}: truncated at byte offset {offset}: the header is not followed by the "
            f"event type and size bytes"
        )
    event_type, event_size = kind_size[0], kind_size[1]
    if event_size != _RECORD.itemsize:
        raise EventFileError(
            f"{path}: events of {event_size} bytes (type {event_type}) at byte offset "
            f"{offset}; bidl reads the 8-byte CD events of .dat files"
        )
    return DatHeader(
        event_type,
        event_size,
        _int(fields.get("Width")),
        _int(fields.get("Height")),
        offset + (2 if lines else 0),
        fields,
    )


def _int(text) -> int | None:
    try:
        return int(str(text).split()[0])
    except (TypeError, ValueError, IndexError):
        return None


def iter_dat_blocks(path: str | Path) -> Iterator[np.ndarray]:
    """The events of a ``.dat`` file, block by block. The 32-bit timestamps are unwrapped
    (a fall of more than 2**31 us starts a new 2**32 us loop), so recordings longer than
    71 minutes keep rising times."""
    path = Path(path)
    header = read_dat_header(path)
    size = path.stat().st_size
    data = size - header.offset
    if data % _RECORD.itemsize:
        end = header.offset + (data // _RECORD.itemsize) * _RECORD.itemsize
        raise EventFileError(
            f"{path}: truncated: {size - end} byte(s) at byte offset {end} do not make a whole "
            f"8-byte event"
        )
    loop, previous = 0, None
    with open(path, "rb") as handle:
        handle.seek(header.offset)
        while True:
            records = np.fromfile(handle, dtype=_RECORD, count=BLOCK_EVENTS)
            if not records.size:
                return
            t = records["t"].astype(np.int64)
            before = np.concatenate([[t[0] if previous is None else previous], t[:-1]])
            loops = loop + np.cumsum(before - t > (1 << 31))
            loop, previous = int(loops[-1]), int(t[-1])
            w = records["w"]
            yield make_events(w & 0x3FFF, (w >> 14) & 0x3FFF, (loops << 32) | t, (w >> 28) & 1)


def read_dat_window(path: str | Path, t_start: float, t_end: float) -> np.ndarray:
    """The events of a ``.dat`` file with ``t_start <= t < t_end``, found by binary search
    over the memory-mapped records (timestamps must rise, as recordings of under 71
    minutes do), so a window of a long recording reads only that window."""
    path = Path(path)
    header = read_dat_header(path)
    count = (path.stat().st_size - header.offset) // _RECORD.itemsize
    if not count:
        return make_events([], [], [], [])
    records = np.memmap(path, dtype=_RECORD, mode="r", offset=header.offset, shape=(count,))
    lo, hi = np.searchsorted(records["t"], [max(t_start, 0), max(t_end, 0)], side="left")
    part = np.array(records[lo:hi])
    w = part["w"]
    return make_events(w & 0x3FFF, (w >> 14) & 0x3FFF, part["t"].astype(np.int64), (w >> 28) & 1)
