"""Readers of event-camera files as distributed, into tonic's structured event arrays.

Every reader returns a numpy structured array with fields ``x``, ``y`` (int16), ``t``
(int64 microseconds) and ``p`` (uint8, 1 = ON, 0 = OFF), the layout tonic's transforms
take. Formats:

- AEDAT 3.1 (DVS128 Gesture): ``#``-comment header up to ``#!END-HEADER``, then packets
  of a 28-byte little-endian header (type, source, size, ts offset, ts overflow,
  capacity, number, valid) and ``capacity * size`` bytes of events; polarity events
  (type 1) are a uint32 (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x) and an
  int32 timestamp, extended by ``overflow << 31``.
- AEDAT 2.0 (jAER, CIFAR10-DVS): ``#`` header lines, then big-endian (uint32 address,
  uint32 timestamp) records, read with tonic; DVS128 addresses hold x in bits 1-7, y in
  bits 8-14 and the polarity in bit 0.
- N-MNIST ``.bin``: 40-bit records (x, y, polarity and a 23-bit timestamp), read with tonic.
- ``.npz`` / ``.npy``: arrays (or a structured array) with fields x, y, t, p.
- AEDAT 4 (``.aedat4``) through tonic, when the ``aedat`` package is installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...registry import BidlError

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "u1")])
SUFFIXES = (".aedat", ".aedat4", ".bin", ".npz", ".npy")
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


class EventFileError(BidlError):
    """An event file is malformed or of a format bidl cannot read."""


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array from columns."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def read_aedat_header(path: str | Path) -> tuple[str, int]:
    """The AEDAT version string (``"2.0"``, ``"3.1"``) and the byte offset of the data."""
    path = Path(path)
    version = None
    offset = 0
    with open(path, "rb") as handle:
        while True:
            line = handle.readline()
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


def read_aedat31(path: str | Path) -> np.ndarray:
    """Polarity events of an AEDAT 3.x file (invalid events and other packets skipped)."""
    path = Path(path)
    version, offset = read_aedat_header(path)
    if not version.startswith("3"):
        raise EventFileError(f"{path}: AEDAT version {version}, expected 3.x")
    if not _has_end_of_header(path, offset):
        raise EventFileError(f"{path}: the AEDAT 3 header has no '#!END-HEADER' line")
    data = np.fromfile(path, dtype=np.uint8, offset=offset)
    parts = []
    pos = 0
    while pos < data.size:
        if pos + _PACKET_HEADER.itemsize > data.size:
            raise EventFileError(f"{path}: truncated packet header at byte {offset + pos}")
        header = data[pos : pos + _PACKET_HEADER.itemsize].view(_PACKET_HEADER)[0]
        pos += _PACKET_HEADER.itemsize
        size, capacity, number = int(header["size"]), int(header["capacity"]), int(header["number"])
        end = pos + size * capacity
        if size < 0 or capacity < number or number < 0 or end > data.size:
            raise EventFileError(
                f"{path}: packet at byte {offset + pos - _PACKET_HEADER.itemsize} is truncated "
                f"or malformed (event size {size}, capacity {capacity}, number {number})"
            )
        if header["type"] == _POLARITY_EVENT:
            if size != 8:
                raise EventFileError(f"{path}: polarity events of {size} bytes, expected 8")
            records = data[pos : pos + 8 * number].view(np.dtype([("a", "<u4"), ("t", "<i4")]))
            address = records["a"]
            valid = (address & 1).astype(bool)
            if header["ts_overflow"] < 0 or np.any(records["t"][valid] < 0):
                raise EventFileError(
                    f"{path}: packet at byte {offset + pos - _PACKET_HEADER.itemsize} has "
                    f"negative timestamps (overflow {int(header['ts_overflow'])})"
                )
            t = (np.int64(header["ts_overflow"]) << 31) | records["t"].astype(np.int64)
            parts.append(
                make_events(
                    (address >> 17) & 0x7FFF,
                    (address >> 2) & 0x7FFF,
                    t,
                    (address >> 1) & 1,
                )[valid]
            )
        pos = end
    return np.concatenate(parts) if parts else np.zeros(0, dtype=EVENT_DTYPE)


def _has_end_of_header(path: Path, offset: int) -> bool:
    with open(path, "rb") as handle:
        header = handle.read(offset)
    return header.rstrip().rsplit(b"\n", 1)[-1].strip().startswith(b"#!END-HEADER")


def read_aedat2_dvs128(path: str | Path) -> np.ndarray:
    """Events of a jAER AEDAT 2.0 file from a DVS128 sensor (CIFAR10-DVS)."""
    from tonic.io import get_aer_events_from_file

    path = Path(path)
    version, offset = read_aedat_header(path)
    if not version.startswith("2"):
        raise EventFileError(f"{path}: AEDAT version {version}, expected 2.x")
    if (path.stat().st_size - offset) % 8:
        raise EventFileError(f"{path}: the data is not a whole number of 8-byte records")
    records = get_aer_events_from_file(str(path), 2.0, offset)
    address = records["address"].astype(np.uint32)
    return make_events(
        (address >> 1) & 0x7F,
        (address >> 8) & 0x7F,
        records["timeStamp"].astype(np.int64),
        address & 1,
    )


def read_nmnist(path: str | Path) -> np.ndarray:
    """Events of an N-MNIST ``.bin`` file (34x34 sensor)."""
    from tonic.io import read_mnist_file

    path = Path(path)
    if path.stat().st_size % 5:
        raise EventFileError(f"{path}: size is not a multiple of 5 bytes (40-bit events)")
    events = read_mnist_file(str(path), dtype=EVENT_DTYPE)
    return np.ascontiguousarray(events)


def read_npz_events(path: str | Path) -> np.ndarray:
    """Events of a ``.npz`` with arrays x, y, t, p (or a ``.npy`` structured array)."""
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
    return _events_from_columns(path, columns)


def _events_from_columns(path, columns: dict) -> np.ndarray:
    """Columns checked before they are cast into ``EVENT_DTYPE``: a cast would silently wrap
    a large coordinate or a -1 polarity and truncate a fractional one."""
    lengths = set()
    for name, values in columns.items():
        if values.ndim != 1:
            raise EventFileError(
                f"{path}: {name} must be one-dimensional, has shape {values.shape}"
            )
        lengths.add(values.size)
        kind = values.dtype.kind
        if kind not in "biuf" or (kind == "f" and name != "t"):
            raise EventFileError(f"{path}: {name} must hold integers, has dtype {values.dtype}")
    if len(lengths) > 1:
        sizes = {name: values.size for name, values in columns.items()}
        raise EventFileError(f"{path}: x, y, t and p differ in length: {sizes}")
    t = columns["t"]
    if t.dtype.kind == "f" and not (np.isfinite(t).all() and np.array_equal(t, np.round(t))):
        raise EventFileError(f"{path}: t must hold whole microseconds, has non-integral values")
    limits = {"x": 2**15, "y": 2**15, "t": 2**62}
    for name, limit in limits.items():
        values = columns[name]
        if values.size and (values.min() < 0 or values.max() >= limit):
            raise EventFileError(
                f"{path}: {name} must be in [0, {limit}), has values in "
                f"[{values.min()}, {values.max()}]"
            )
    p = columns["p"].astype(np.int64)
    if p.size and not (np.isin(p, (0, 1)).all() or np.isin(p, (-1, 1)).all()):
        raise EventFileError(f"{path}: p must be 0/1 or -1/1, has values {np.unique(p)[:8]}")
    return make_events(columns["x"], columns["y"], t.astype(np.int64), p > 0)


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


def read_event_file(path: str | Path, sensor_size=None) -> np.ndarray:
    """Events of any supported file, chosen by its suffix (and AEDAT header); with
    ``sensor_size`` ``(H, W)``, an event off that sensor is an error. A malformed file
    raises an ``EventFileError`` naming it, whatever went wrong inside the reader."""
    events = _read_event_file(Path(path))
    return events if sensor_size is None else check_sensor(path, events, sensor_size)


def _read_event_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise EventFileError(f"event file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".aedat":
            version, _ = read_aedat_header(path)
            return read_aedat31(path) if version.startswith("3") else read_aedat2_dvs128(path)
        if suffix == ".aedat4":
            from tonic.io import read_aedat4

            events = read_aedat4(str(path))
            return make_events(events["x"], events["y"], events["t"], events["p"])
        if suffix == ".bin":
            return read_nmnist(path)
        if suffix in (".npz", ".npy"):
            return read_npz_events(path)
    except EventFileError:
        raise
    except ImportError as err:
        raise EventFileError(f"{path}: reading {suffix} files needs {err.name}") from None
    except (OSError, ValueError) as err:
        raise EventFileError(f"{path}: cannot read events ({err})") from None
    except Exception as err:  # a damaged file can trip any reader (zip, numpy, tonic)
        raise EventFileError(f"{path}: cannot read events ({type(err).__name__}: {err})") from None
    raise EventFileError(f"{path}: unknown event file type {suffix!r}; bidl reads {SUFFIXES}")
