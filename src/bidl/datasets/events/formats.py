"""Readers of event-camera files as distributed, into tonic's structured event arrays.

Every reader returns a numpy structured array with fields ``x``, ``y`` (int16), ``t``
(int64 microseconds) and ``p`` (uint8, 1 = ON, 0 = OFF) (``records.EVENT_DTYPE``).
``read_event_file`` reads a whole file; ``iter_event_file`` reads it in chunks of a fixed
number of events or of a fixed time span, holding one chunk at a time. Formats, by suffix:

- ``.aedat``: AEDAT 3.1 (DVS128 Gesture): ``#``-comment header up to ``#!END-HEADER``, then
  packets of a 28-byte little-endian header (type, source, size, ts offset, ts overflow,
  capacity, number, valid) and ``capacity * size`` bytes of events; polarity events (type
  1) are a uint32 (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x) and an int32
  timestamp, extended by ``overflow << 31``. Or AEDAT 2.0 (jAER, CIFAR10-DVS): ``#`` header
  lines, then big-endian (uint32 address, uint32 timestamp) records; DVS128 addresses hold
  x in bits 1-7, y in bits 8-14 and the polarity in bit 0.
- ``.aedat4``: AEDAT 4 (``aedat4``).
- ``.bin``: N-MNIST / N-Caltech101: 40-bit records (x, y, polarity and a 23-bit timestamp;
  a record with y = 240 marks a timestamp overflow of 2**13 us).
- ``.raw``: Prophesee EVT 2.0 / 2.1 / 3.0 (``prophesee_raw``).
- ``.dat``: Prophesee decoded CD events (``prophesee_dat``).
- ``.h5`` / ``.hdf5``: Prophesee, DSEC and MVSEC-style HDF5 layouts (``hdf5``).
- ``.npz`` / ``.npy``: arrays (or a structured array) with fields x, y, t, p.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..bounded import MAX_EVENTS, check_npz_limits, header_line
from . import aedat4, hdf5, prophesee_dat, prophesee_raw
from .chunking import check_chunking, rechunk
from .records import (
    EVENT_DTYPE,
    EventFileError,
    concatenate,
    events_from_columns,
    make_events,
)

__all__ = [
    "EVENT_DTYPE",
    "SUFFIXES",
    "EventFileError",
    "check_sensor",
    "iter_event_file",
    "make_events",
    "read_event_file",
    "sensor_size_of",
]

SUFFIXES = (".aedat", ".aedat4", ".bin", ".npz", ".npy", ".raw", ".dat", *hdf5.SUFFIXES)
#: records read per block from the formats without their own reader module
BLOCK_EVENTS = 1 << 20
_PACKET_HEADER = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)
_POLARITY_EVENT = 1
_NMNIST_OVERFLOW_Y = 240


def read_aedat_header(path: str | Path) -> tuple[str, int]:
    """The AEDAT version string (``"2.0"``, ``"3.1"``) and the byte offset of the data."""
    path = Path(path)
    version = None
    offset = 0
    with open(path, "rb") as handle:
        while True:
            line = header_line(handle, path, offset, EventFileError)
            if not line.startswith(b"#"):
                break
            offset += len(line)
            text = line.decode("latin-1").strip()
            if text.startswith("#!AER-DAT"):
                version = text[len("#!AER-DAT") :]
            if text.startswith("#!END-HEADER"):
                break
    if version is None:
        raise EventFileError(
            f"{path}: no '#!AER-DAT<version>' line at the start; not an AEDAT file"
        )
    return version, offset


def iter_aedat31_blocks(path: str | Path) -> Iterator[np.ndarray]:
    """Polarity events of an AEDAT 3.x file, packet by packet (invalid events and other
    packets skipped)."""
    path = Path(path)
    version, offset = read_aedat_header(path)
    if not version.startswith("3"):
        raise EventFileError(f"{path}: AEDAT version {version}, expected 3.x")
    if not _has_end_of_header(path, offset):
        raise EventFileError(f"{path}: the AEDAT 3 header has no '#!END-HEADER' line")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(offset)
        pos = offset
        run = 16
        while pos < size:
            skipped = _skip_empty_packets(handle, pos, size, run)
            if skipped:  # a run of empty packets, checked and passed over at once
                pos += skipped * _PACKET_HEADER.itemsize
                run = min(2 * run, 1 << 16)
                handle.seek(pos)
                continue
            run = 16
            raw = handle.read(_PACKET_HEADER.itemsize)
            if len(raw) < _PACKET_HEADER.itemsize:
                raise EventFileError(f"{path}: truncated packet header at byte {pos}")
            header = np.frombuffer(raw, dtype=_PACKET_HEADER)[0]
            event_size = int(header["size"])
            capacity, number = int(header["capacity"]), int(header["number"])
            length = event_size * capacity
            if (
                event_size < 0
                or capacity < number
                or number < 0
                or pos + _PACKET_HEADER.itemsize + length > size
            ):
                raise EventFileError(
                    f"{path}: packet at byte {pos} is truncated or malformed (event size "
                    f"{event_size}, capacity {capacity}, number {number})"
                )
            body = handle.read(length)
            if header["type"] == _POLARITY_EVENT:
                yield _aedat31_polarity(path, pos, header, body, number)
            pos += _PACKET_HEADER.itemsize + length


def _skip_empty_packets(handle, pos: int, size: int, run: int) -> int:
    """How many packets from ``pos`` on (looking at up to ``run``) are empty and valid:
    capacity 0, no events, and for polarity packets 8-byte events and a non-negative
    overflow. A file of a million such packets is read in vectorised steps, not one by one
    (the next packet that is not one of them goes through the checks below)."""
    count = min(run, (size - pos) // _PACKET_HEADER.itemsize)
    if count < 1:
        return 0
    headers = np.frombuffer(handle.read(count * _PACKET_HEADER.itemsize), dtype=_PACKET_HEADER)
    handle.seek(pos)
    polarity = headers["type"] == _POLARITY_EVENT
    fine = (
        (headers["capacity"] == 0)
        & (headers["number"] == 0)
        & (headers["size"] >= 0)
        & (~polarity | ((headers["size"] == 8) & (headers["ts_overflow"] >= 0)))
    )
    return count if fine.all() else int(np.argmin(fine))


def _aedat31_polarity(path, pos, header, body: bytes, number: int) -> np.ndarray:
    if header["size"] != 8:
        raise EventFileError(f"{path}: polarity events of {header['size']} bytes, expected 8")
    records = np.frombuffer(body, dtype=np.dtype([("a", "<u4"), ("t", "<i4")]), count=number)
    address = records["a"]
    valid = (address & 1).astype(bool)
    if header["ts_overflow"] < 0 or np.any(records["t"][valid] < 0):
        raise EventFileError(
            f"{path}: packet at byte {pos} has negative timestamps "
            f"(overflow {int(header['ts_overflow'])})"
        )
    t = (np.int64(header["ts_overflow"]) << 31) | records["t"].astype(np.int64)
    return make_events((address >> 17) & 0x7FFF, (address >> 2) & 0x7FFF, t, (address >> 1) & 1)[
        valid
    ]


def read_aedat31(path: str | Path) -> np.ndarray:
    """Polarity events of an AEDAT 3.x file (invalid events and other packets skipped)."""
    return concatenate(list(iter_aedat31_blocks(path)))


def _has_end_of_header(path: Path, offset: int) -> bool:
    with open(path, "rb") as handle:
        header = handle.read(offset)
    return header.rstrip().rsplit(b"\n", 1)[-1].strip().startswith(b"#!END-HEADER")


def iter_aedat2_blocks(path: str | Path) -> Iterator[np.ndarray]:
    """Events of a jAER AEDAT 2.0 file from a DVS128 sensor, block by block."""
    path = Path(path)
    version, offset = read_aedat_header(path)
    if not version.startswith("2"):
        raise EventFileError(f"{path}: AEDAT version {version}, expected 2.x")
    if (path.stat().st_size - offset) % 8:
        raise EventFileError(f"{path}: the data is not a whole number of 8-byte records")
    dtype = np.dtype([("a", ">u4"), ("t", ">u4")])
    with open(path, "rb") as handle:
        handle.seek(offset)
        while (records := np.fromfile(handle, dtype=dtype, count=BLOCK_EVENTS)).size:
            address = records["a"]
            yield make_events(
                (address >> 1) & 0x7F,
                (address >> 8) & 0x7F,
                records["t"].astype(np.int64),
                address & 1,
            )


def read_aedat2_dvs128(path: str | Path) -> np.ndarray:
    """Events of a jAER AEDAT 2.0 file from a DVS128 sensor (CIFAR10-DVS)."""
    return concatenate(list(iter_aedat2_blocks(path)))


def iter_nmnist_blocks(path: str | Path) -> Iterator[np.ndarray]:
    """Events of an N-MNIST / N-Caltech101 ``.bin`` file, block by block."""
    path = Path(path)
    if path.stat().st_size % 5:
        raise EventFileError(f"{path}: size is not a multiple of 5 bytes (40-bit events)")
    overflows = 0
    with open(path, "rb") as handle:
        while (raw := np.fromfile(handle, dtype=np.uint8, count=5 * BLOCK_EVENTS)).size:
            records = raw.reshape(-1, 5).astype(np.int64)
            x, y = records[:, 0], records[:, 1]
            t = ((records[:, 2] & 0x7F) << 16) | (records[:, 3] << 8) | records[:, 4]
            marks = y == _NMNIST_OVERFLOW_Y  # each adds 2**13 us to every later timestamp
            t += (overflows + np.cumsum(marks)) << 13
            overflows += int(marks.sum())
            keep = ~marks
            yield make_events(x[keep], y[keep], t[keep], records[keep, 2] >> 7)


def read_nmnist(path: str | Path) -> np.ndarray:
    """Events of an N-MNIST ``.bin`` file (34x34 sensor)."""
    return concatenate(list(iter_nmnist_blocks(path)))


def read_npz_events(path: str | Path) -> np.ndarray:
    """Events of a ``.npz`` with arrays x, y, t, p (or a ``.npy`` structured array)."""
    check_npz_limits(path, MAX_EVENTS, EventFileError)  # before anything is allocated
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            if not set("xytp") <= set(data.files):
                raise EventFileError(f"{path}: needs arrays named x, y, t and p, has {data.files}")
            columns = {k: data[k] for k in "xytp"}
    elif data.dtype.names is not None and set("xytp") <= set(data.dtype.names):
        columns = {k: data[k] for k in "xytp"}
    else:
        raise EventFileError(f"{path}: needs a structured array with fields x, y, t, p")
    return events_from_columns(path, columns)


def check_sensor(path, events: np.ndarray, sensor_size) -> np.ndarray:
    """``events`` if every one lies on a sensor of ``sensor_size`` ``(H, W)``; otherwise an
    ``EventFileError`` naming the file (a wrong sensor, or a damaged file)."""
    height, width = (int(v) for v in sensor_size)
    for name, limit in (("x", width), ("y", height)):
        values = events[name]
        if values.size and (values.min() < 0 or values.max() >= limit):
            bad = int(np.count_nonzero((values < 0) | (values >= limit)))
            raise EventFileError(
                f"{path}: {bad} event(s) have {name} outside the {height}x{width} sensor "
                f"(values in [{values.min()}, {values.max()}]); a damaged file, or a "
                f"recording of another sensor"
            )
    return events


def read_event_file(path: str | Path, sensor_size=None, encoding: str | None = None) -> np.ndarray:
    """Events of any supported file, chosen by its suffix (and AEDAT header); with
    ``sensor_size`` ``(H, W)``, an event off that sensor is an error. A malformed file
    raises an ``EventFileError`` naming it, whatever went wrong inside the reader.
    ``encoding`` names the EVT encoding of a ``.raw`` file whose header does not."""
    events = concatenate(list(_guarded(Path(path), _blocks(Path(path), encoding))))
    return events if sensor_size is None else check_sensor(path, events, sensor_size)


def iter_event_file(
    path: str | Path,
    chunk_events: int | None = None,
    chunk_us: float | None = None,
    t_start: float | None = None,
    sensor_size=None,
    encoding: str | None = None,
) -> Iterator[np.ndarray]:
    """The events of a file in chunks: of ``chunk_events`` events each, or one per time
    window of ``chunk_us`` microseconds from ``t_start`` (default: the first event's time;
    empty windows are yielded too), or (neither given) as the reader decodes them.
    Only one chunk and one decoded block are held at a time, except for ``.npz`` files,
    which are read whole. Errors as ``read_event_file``'s."""
    path = Path(path)
    check_chunking(chunk_events, chunk_us, f"iter_event_file({path})")
    blocks = _guarded(path, _blocks(path, encoding))
    for chunk in rechunk(blocks, chunk_events, chunk_us, t_start):
        yield chunk if sensor_size is None else check_sensor(path, chunk, sensor_size)


def sensor_size_of(path: str | Path) -> tuple[int, int] | None:
    """``(H, W)`` as the file's header states it (``.raw``, ``.dat``, ``.aedat4``), else None."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".raw":
            header = prophesee_raw.read_raw_header(path)
        elif suffix == ".dat":
            header = prophesee_dat.read_dat_header(path)
        elif suffix == ".aedat4":
            header = aedat4.read_aedat4_header(path)
        else:
            return None
    except EventFileError:
        return None
    if header.width and header.height:
        return int(header.height), int(header.width)
    return None


def _blocks(path: Path, encoding: str | None) -> Iterator[np.ndarray]:
    if not path.is_file():
        raise EventFileError(f"event file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".aedat":
        version, _ = read_aedat_header(path)
        yield from (
            iter_aedat31_blocks(path) if version.startswith("3") else iter_aedat2_blocks(path)
        )
    elif suffix == ".aedat4":
        yield from aedat4.iter_aedat4_blocks(path)
    elif suffix == ".bin":
        yield from iter_nmnist_blocks(path)
    elif suffix in (".npz", ".npy"):
        yield read_npz_events(path)
    elif suffix == ".raw":
        yield from prophesee_raw.iter_raw_blocks(path, encoding)
    elif suffix == ".dat":
        yield from prophesee_dat.iter_dat_blocks(path)
    elif suffix in hdf5.SUFFIXES:
        yield from hdf5.iter_hdf5_blocks(path)
    else:
        raise EventFileError(f"{path}: unknown event file type {suffix!r}; bidl reads {SUFFIXES}")


def _guarded(path: Path, blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """``blocks`` with any failure inside a reader turned into an ``EventFileError``
    naming the file."""
    suffix = path.suffix.lower()
    try:
        yield from blocks
    except EventFileError:
        raise
    except ImportError as err:
        raise EventFileError(f"{path}: reading {suffix} files needs {err.name}") from None
    except (OSError, ValueError) as err:
        raise EventFileError(f"{path}: cannot read events ({err})") from None
    except Exception as err:  # a damaged file can trip any reader (zip, numpy, h5py)
        raise EventFileError(f"{path}: cannot read events ({type(err).__name__}: {err})") from None
