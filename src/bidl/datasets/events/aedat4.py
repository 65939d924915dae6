"""iniVation AEDAT 4 files (DV software, DAVIS / DVXplorer cameras), read packet by packet.

Layout (iniVation's AEDAT 4.0 specification and its flatbuffer schemas): the line
``#!AER-DAT4.0\\r\\n``; a little-endian uint32 length and that many bytes of an ``IOHeader``
flatbuffer (field 0 compression: 0 none, 1 LZ4, 2 LZ4 high, 3 Zstd, 4 Zstd high; field 1 the
byte offset of a trailing data table, -1 if none; field 2 an XML description of the
streams); then packets, each an int32 stream id, an int32 byte length and the packet, a
size-prefixed flatbuffer (compressed as a whole LZ4 or Zstd frame when the header says so)
whose 4-byte identifier names its content. Polarity events are ``EVTS`` packets: a table
whose field 0 is a vector of 16-byte structs (int64 t in microseconds, int16 x, int16 y,
bool on, 3 bytes of padding). Other packets (frames, IMU, triggers) are skipped; of several
event streams, the first one met is read.

Uncompressed files need nothing more; LZ4 and Zstd ones need ``lz4`` / ``zstandard``
(the ``formats`` extra).
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .records import EventFileError, make_events, optional_module

MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSION = {0: None, 1: "lz4", 2: "lz4", 3: "zstd", 4: "zstd"}
_EVENT = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])


@dataclass
class Aedat4Header:
    compression: str | None
    data_table: int  # byte offset where the packets end (-1: at the end of the file)
    description: str
    width: int | None
    height: int | None
    offset: int  # byte offset of the first packet


class _Table:
    """Read access to one flatbuffer table of ``buffer`` (enough for these schemas)."""

    def __init__(self, buffer: bytes, pos: int, where: str):
        self.buffer, self.pos, self.where = buffer, pos, where
        vtable = pos - self._unpack("<i", pos)
        self.vtable = vtable
        self.vtable_size = self._unpack("<H", vtable)

    def _unpack(self, fmt: str, at: int):
        size = struct.calcsize(fmt)
        if at < 0 or at + size > len(self.buffer):
            raise EventFileError(f"{self.where}: a flatbuffer offset points outside the packet")
        return struct.unpack_from(fmt, self.buffer, at)[0]

    def _field(self, index: int) -> int:
        slot = 4 + 2 * index
        return 0 if slot + 2 > self.vtable_size else self._unpack("<H", self.vtable + slot)

    def scalar(self, index: int, fmt: str, default):
        off = self._field(index)
        return default if off == 0 else self._unpack(fmt, self.pos + off)

    def _target(self, index: int) -> int | None:
        off = self._field(index)
        return None if off == 0 else self.pos + off + self._unpack("<I", self.pos + off)

    def string(self, index: int) -> str:
        at = self._target(index)
        if at is None:
            return ""
        length = self._unpack("<I", at)
        if at + 4 + length > len(self.buffer):
            raise EventFileError(f"{self.where}: a flatbuffer string runs past the packet")
        return self.buffer[at + 4 : at + 4 + length].decode("utf-8", "replace")

    def struct_vector(self, index: int, dtype: np.dtype) -> np.ndarray:
        at = self._target(index)
        if at is None:
            return np.zeros(0, dtype)
        length = self._unpack("<I", at)
        end = at + 4 + length * dtype.itemsize
        if end > len(self.buffer):
            raise EventFileError(f"{self.where}: the event vector runs past the packet")
        return np.frombuffer(self.buffer, dtype=dtype, count=length, offset=at + 4)


def read_aedat4_header(path: str | Path) -> Aedat4Header:
    path = Path(path)
    with open(path, "rb") as handle:
        magic = handle.read(len(MAGIC))
        if magic != MAGIC:
            raise EventFileError(f"{path}: does not start with '#!AER-DAT4.0'; not an AEDAT 4 file")
        raw = handle.read(4)
        if len(raw) < 4:
            raise EventFileError(f"{path}: truncated at byte offset {len(MAGIC)} (no IOHeader)")
        length = struct.unpack("<I", raw)[0]
        body = handle.read(length)
    if len(body) < length or length < 8:
        raise EventFileError(
            f"{path}: truncated or malformed IOHeader at byte offset {len(MAGIC)} "
            f"({length} bytes announced, {len(body)} present)"
        )
    where = f"{path}: IOHeader at byte offset {len(MAGIC)}"
    root = _Table(body, struct.unpack_from("<I", body, 0)[0], where)
    code = root.scalar(0, "<i", 0)
    if code not in COMPRESSION:
        raise EventFileError(f"{where}: unknown compression {code}")
    description = root.string(2)
    width, height = _geometry(description)
    return Aedat4Header(
        COMPRESSION[code],
        root.scalar(1, "<q", -1),
        description,
        width,
        height,
        len(MAGIC) + 4 + length,
    )


def _geometry(description: str) -> tuple[int | None, int | None]:
    """sizeX / sizeY of the first event stream the XML description lists."""
    try:
        root = ElementTree.fromstring(description)
    except ElementTree.ParseError:
        return None, None
    for stream in root.iter("node"):
        kinds = [a.text for a in stream.findall("attr") if a.get("key") == "typeIdentifier"]
        if kinds and kinds[0] == "EVTS":
            sizes = {a.get("key"): a.text for a in stream.iter("attr")}
            try:
                return int(sizes["sizeX"]), int(sizes["sizeY"])
            except (KeyError, TypeError, ValueError):
                return None, None
    return None, None


def _decompressor(kind: str | None, path):
    if kind is None:
        return lambda data: data
    if kind == "lz4":
        frame = optional_module("lz4.frame", "formats", path, "LZ4-compressed AEDAT 4 files")
        return frame.decompress
    zstd = optional_module("zstandard", "formats", path, "Zstd-compressed AEDAT 4 files")
    return lambda data: zstd.ZstdDecompressor().decompressobj().decompress(data)


def iter_aedat4_blocks(path: str | Path) -> Iterator[np.ndarray]:
    """The polarity events of an AEDAT 4 file, one block per packet."""
    path = Path(path)
    header = read_aedat4_header(path)
    decompress = _decompressor(header.compression, path)
    size = path.stat().st_size
    end = header.data_table if 0 <= header.data_table <= size else size
    stream = None
    with open(path, "rb") as handle:
        handle.seek(header.offset)
        at = header.offset
        while at < end:
            raw = handle.read(8)
            if len(raw) < 8:
                raise EventFileError(f"{path}: truncated packet header at byte offset {at}")
            stream_id, length = struct.unpack("<ii", raw)
            body = handle.read(length) if length >= 0 else b""
            if length < 0 or len(body) < length:
                raise EventFileError(
                    f"{path}: truncated packet at byte offset {at} ({length} bytes announced, "
                    f"{len(body)} present)"
                )
            where = f"{path}: packet at byte offset {at}"
            at += 8 + length
            try:
                packet = decompress(body)
            except Exception as err:  # lz4 / zstandard raise their own error types
                raise EventFileError(f"{where} does not decompress ({err})") from None
            if len(packet) < 12:
                raise EventFileError(f"{where} is too short for a flatbuffer")
            if packet[8:12] != b"EVTS" or (stream is not None and stream_id != stream):
                continue
            stream = stream_id
            table = _Table(packet, 4 + struct.unpack_from("<I", packet, 4)[0], where)
            records = table.struct_vector(0, _EVENT)
            yield make_events(records["x"], records["y"], records["t"], records["on"] != 0)
