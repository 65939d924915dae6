"""Prophesee / Metavision ``.raw`` recordings: EVT 2.0, EVT 2.1 and EVT 3.0, decoded with
numpy block by block (each block is a bounded number of words, and the decoder carries its
state from one block to the next), so a recording of any length reads in bounded memory.

A ``.raw`` file is a text header of ``% key value`` lines (ended by ``% end``, or by the first
line that does not start with ``% ``), then little-endian words. The encoding comes from the
``format`` key (``EVT3;height=720;width=1280``; ``EVT21`` with ``endianness=legacy`` swaps
the 32-bit halves of each word) or, in older files, the ``evt`` key (``2.0``, ``2.1``, ``3.0``).
The layouts, from Prophesee's published format pages and OpenEB's decoders:

- EVT 2.0, 32-bit words, type in bits 31-28: CD_OFF (0) / CD_ON (1) carry the 6 low
  timestamp bits (27-22), x (21-11) and y (10-0); EVT_TIME_HIGH (8) carries timestamp bits
  33-6 (27-0). Other types (triggers, IMU, monitoring, continued) carry no CD event.
- EVT 2.1, 64-bit words, type in bits 63-60: EVT_NEG (0) / EVT_POS (1) carry the 6 low
  timestamp bits (59-54), an x aligned to 32 (53-43), y (42-32) and a 32-bit mask (31-0):
  one event at ``x + i`` for each set bit ``i``; EVT_TIME_HIGH (8) carries bits 33-6 (59-32).
- EVT 3.0, 16-bit words, type in bits 15-12, a stateful code: EVT_ADDR_Y (0) sets y (10-0);
  EVT_ADDR_X (2) is one event at x (10-0) with polarity bit 11; VECT_BASE_X (3) sets a base
  x and polarity; VECT_12 (4) / VECT_8 (5) are 12 / 8 events at base + bit for each set bit
  of bits 11-0 / 7-0, then move the base by 12 / 8; EVT_TIME_LOW (6) and EVT_TIME_HIGH (8)
  set the low and high 12 bits of a 24-bit microsecond time.

Timestamps that wrap (34 bits in EVT 2.x, 24 bits in EVT 3.0) are unwrapped: a time-high
value that falls by more than half its range starts a new loop. As in OpenEB, events before
the first EVT_TIME_HIGH word have no time base and are skipped (as are EVT 3.0 events
before the first EVT_ADDR_Y or VECT_BASE_X word).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bounded import header_line
from .records import EventFileError, make_events, no_events

#: words decoded per block; the largest expansion (EVT 2.1: 32 events per 8-byte word)
#: keeps a block under 4 M events
BLOCK_BYTES = 1 << 20
ENCODINGS = {"EVT2": "<u4", "EVT21": "<u8", "EVT3": "<u2"}
_FROM_EVT_KEY = {"2.0": "EVT2", "2.1": "EVT21", "3.0": "EVT3"}


@dataclass
class RawHeader:
    """What the ``%`` header of a ``.raw`` file says."""

    encoding: str  # "EVT2", "EVT21" or "EVT3"
    legacy: bool  # EVT 2.1 words with their 32-bit halves swapped
    width: int | None
    height: int | None
    offset: int  # byte offset of the first word
    fields: dict = field(default_factory=dict)


def read_raw_header(path: str | Path, encoding: str | None = None) -> RawHeader:
    """The header of a ``.raw`` file; ``encoding`` (``"EVT2"``, ``"EVT21"``, ``"EVT3"``)
    overrides what the header says (or supplies it when the header says nothing)."""
    path = Path(path)
    fields: dict[str, str] = {}
    offset = 0
    with open(path, "rb") as handle:
        while True:
            line = header_line(handle, path, offset, EventFileError)
            if not line.startswith(b"% "):
                break
            offset += len(line)
            key, _, value = line[2:].decode("latin-1").strip().partition(" ")
            if key == "end":
                break
            fields[key] = value.strip()
    options: dict[str, str] = {}
    name = None
    if "format" in fields:
        name, *rest = fields["format"].split(";")
        name = name.strip().upper()
        options = dict(part.split("=", 1) for part in rest if "=" in part)
    elif "evt" in fields:
        name = _FROM_EVT_KEY.get(fields["evt"])
        if name is None:
            raise EventFileError(
                f"{path}: header says 'evt {fields['evt']}'; bidl reads EVT 2.0, 2.1 and 3.0"
            )
    if encoding is not None:
        name = str(encoding).upper().replace(".", "").replace("EVT20", "EVT2")
        name = name.replace("EVT30", "EVT3")
    if name is None:
        raise EventFileError(
            f"{path}: the header names no event encoding (no '% format' or '% evt' line); "
            f"pass encoding='EVT2', 'EVT21' or 'EVT3'"
        )
    if name not in ENCODINGS:
        raise EventFileError(
            f"{path}: event encoding {name!r} is not one bidl decodes (EVT2, EVT21, EVT3)"
        )
    width = _int(options.get("width"))
    height = _int(options.get("height"))
    if "geometry" in fields and "x" in fields["geometry"]:
        w, _, h = fields["geometry"].partition("x")
        width, height = _int(w) or width, _int(h) or height
    endianness = options.get("endianness", fields.get("endianness", "little"))
    return RawHeader(name, endianness == "legacy", width, height, offset, fields)


def _int(text) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def iter_raw_blocks(path: str | Path, encoding: str | None = None) -> Iterator[np.ndarray]:
    """The CD events of a ``.raw`` file, block by block (each a structured event array)."""
    path = Path(path)
    header = read_raw_header(path, encoding)
    dtype = np.dtype(ENCODINGS[header.encoding])
    size = path.stat().st_size
    whole = (size - header.offset) // dtype.itemsize
    if (size - header.offset) % dtype.itemsize:
        end = header.offset + whole * dtype.itemsize
        raise EventFileError(
            f"{path}: truncated: {size - end} byte(s) at byte offset {end} do not make a whole "
            f"{dtype.itemsize}-byte {header.encoding} word"
        )
    decoder = {"EVT2": Evt2Decoder, "EVT21": Evt21Decoder, "EVT3": Evt3Decoder}[header.encoding]()
    if header.encoding == "EVT21":
        decoder.legacy = header.legacy
    per_block = max(1, BLOCK_BYTES // dtype.itemsize)
    with open(path, "rb") as handle:
        handle.seek(header.offset)
        while True:
            words = np.fromfile(handle, dtype=dtype, count=per_block)
            if not words.size:
                return
            yield decoder.decode(words)


def _last_index(mask: np.ndarray) -> np.ndarray:
    """For each position, the index of the last True at or before it (-1 if none)."""
    index = np.where(mask, np.arange(mask.size, dtype=np.int64), -1)
    return np.maximum.accumulate(index) if index.size else index


def _carry(values: np.ndarray, last: np.ndarray, initial) -> np.ndarray:
    """``values[last]`` where ``last >= 0``, else the state carried from the previous block."""
    return np.where(last >= 0, values[np.maximum(last, 0)], initial)


def _unwrap_high(high: np.ndarray, previous: int | None, loop: int, bits: int):
    """Absolute time-high values (loops counted), the new loop count and the last value.
    A value that falls by more than half the ``bits``-bit range starts a new loop."""
    prev = np.concatenate([[high[0] if previous is None else previous], high[:-1]])
    loops = loop + np.cumsum(prev - high > (1 << (bits - 1)))
    return (loops << bits) | high, int(loops[-1]), int(high[-1])


def _expand(masks: np.ndarray, width: int):
    """(row, bit) of every set bit of ``masks`` (``width`` bits), row by row, bits rising."""
    as_bytes = masks.astype("<u4").view(np.uint8).reshape(-1, 4)
    bits = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :width]
    return np.nonzero(bits)


class Evt2Decoder:
    """EVT 2.0 words to events; the time base carries across ``decode`` calls."""

    def __init__(self):
        self.high: int | None = None  # last raw time-high value
        self.loop = 0

    def _times(self, kind: np.ndarray, high_raw: np.ndarray, bits: int) -> np.ndarray:
        """Absolute time-high (timestamp >> 6) at each word, -1 before the first one."""
        is_high = kind == 8
        initial = -1 if self.high is None else (self.loop << bits) | self.high
        last = _last_index(is_high)
        values = np.zeros(kind.size, dtype=np.int64)
        if is_high.any():
            values[is_high], self.loop, self.high = _unwrap_high(
                high_raw[is_high].astype(np.int64), self.high, self.loop, bits
            )
        return _carry(values, last, initial)

    def decode(self, words: np.ndarray) -> np.ndarray:
        kind = (words >> 28).astype(np.int64)
        high = self._times(kind, words & 0x0FFFFFFF, 28)
        cd = (kind <= 1) & (high >= 0)
        w = words[cd]
        t = (high[cd] << 6) | ((w >> 22) & 0x3F).astype(np.int64)
        return make_events((w >> 11) & 0x7FF, w & 0x7FF, t, kind[cd])


class Evt21Decoder(Evt2Decoder):
    """EVT 2.1 (vectorised) words to events."""

    legacy = False

    def decode(self, words: np.ndarray) -> np.ndarray:
        if self.legacy:  # older cameras wrote the two 32-bit halves the other way round
            words = (words << np.uint64(32)) | (words >> np.uint64(32))
        upper = (words >> np.uint64(32)).astype(np.uint32)
        kind = (upper >> 28).astype(np.int64)
        high = self._times(kind, upper & 0x0FFFFFFF, 28)
        cd = np.flatnonzero((kind <= 1) & (high >= 0))
        if not cd.size:
            return no_events()
        rows, bits = _expand((words[cd] & np.uint64(0xFFFFFFFF)).astype(np.uint32), 32)
        u = upper[cd][rows]
        t = (high[cd][rows] << 6) | ((u >> 22) & 0x3F).astype(np.int64)
        x = ((u >> 11) & 0x7FF).astype(np.int64) + bits
        return make_events(x, u & 0x7FF, t, kind[cd][rows])


class Evt3Decoder:
    """EVT 3.0 words to events; every state (y, base x, polarity, time) carries across
    ``decode`` calls."""

    def __init__(self):
        self.y = -1  # -1: no EVT_ADDR_Y seen yet
        self.is_cd = False
        self.high: int | None = None
        self.loop = 0
        self.time_high = -1  # absolute (loops counted) high part, -1: no time base yet
        self.low = 0
        self.base = -1  # vector base x (-1: none yet)
        self.base_p = 0
        self.offset = 0  # how far VECT_12 / VECT_8 words have moved the base

    def decode(self, words: np.ndarray) -> np.ndarray:
        kind = (words >> 12).astype(np.int64)
        value = (words & 0xFFF).astype(np.int64)

        # y and whether the words that follow are CD events (type 0) or not (type 1)
        last_y = _last_index(kind <= 1)
        y = _carry(value & 0x7FF, last_y, self.y)
        is_cd = _carry(kind == 0, last_y, self.is_cd)

        # time: the high part (loops counted); a new high value clears the low part
        is_high = kind == 8
        high_abs = np.zeros(kind.size, dtype=np.int64)
        changed = np.zeros(kind.size, dtype=bool)
        if is_high.any():
            raw = value[is_high]
            before = np.concatenate([[-1 if self.high is None else self.high], raw[:-1]])
            changed[is_high] = raw != before
            high_abs[is_high], self.loop, self.high = _unwrap_high(raw, self.high, self.loop, 12)
        time_high = _carry(high_abs, _last_index(is_high), self.time_high)
        last_low = _last_index(kind == 6)
        last_change = _last_index(changed)
        low = np.where(
            last_low > last_change,
            value[np.maximum(last_low, 0)],
            np.where(last_change >= 0, 0, self.low),
        )

        # vector base x and polarity, and how far the vectors since it have moved it
        last_base = _last_index(kind == 3)
        base = _carry(value & 0x7FF, last_base, self.base)
        base_p = _carry(value >> 11, last_base, self.base_p)
        step = np.where(kind == 4, 12, np.where(kind == 5, 8, 0))
        moved = np.cumsum(step) - step  # before this word
        offset = np.where(
            last_base >= 0, moved - moved[np.maximum(last_base, 0)], self.offset + moved
        )

        # events: a single EVT_ADDR_X is a one-bit vector at its own x
        single = kind == 2
        vector = ((kind == 4) | (kind == 5)) & (base >= 0)
        valid = (single | vector) & is_cd & (y >= 0) & (time_high >= 0)
        word = np.flatnonzero(valid)
        mask = np.where(single, 1, np.where(kind == 4, value, value & 0xFF))[word]
        start = np.where(single, value & 0x7FF, base + offset)[word]
        pol = np.where(single, value >> 11, base_p)[word]
        rows, bits = _expand(mask, 12)
        t = (time_high[word] << 12) | low[word]
        events = make_events(start[rows] + bits, y[word][rows], t[rows], pol[rows])

        # the state at the end of this block, for the next one
        self.y, self.is_cd = int(y[-1]), bool(is_cd[-1])
        self.time_high, self.low = int(time_high[-1]), int(low[-1])
        self.base, self.base_p = int(base[-1]), int(base_p[-1])
        self.offset = int(offset[-1] + step[-1])
        return events
