"""Reading files that may not be what they say, within limits.

A header is read line by line with a cap on each line and on the whole header, so a file of
300 MB without a newline costs 64 KiB, not 1.4 GB. An ``.npz`` (or ``.npy``) is opened only
after the sizes it declares are checked against what it can hold: an ``.npy`` header's shape
against the bytes behind it, a zip member's uncompressed size against what deflate can make
of its compressed bytes (at most 1032 to 1). A 3 MB file that declares 250 M events is
refused before anything is allocated or inflated.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..registry import BidlError

MAX_HEADER_LINE = 64 * 1024
MAX_HEADER_BYTES = 16 * 2**20
#: events one .npz event file may declare (2**28 events: about 4 GiB once read)
MAX_EVENTS = 2**28
#: deflate's largest ratio of output to input bytes, plus room for a small member
DEFLATE_RATIO, SLACK = 1032, 64 * 1024


def header_line(handle: BinaryIO, path, offset: int, error: type[BidlError] = BidlError) -> bytes:
    """The next line of a text header that starts at byte 0 and has reached ``offset``; a
    line or a header over the limits is a ``error`` naming the file."""
    line = handle.readline(MAX_HEADER_LINE + 1)
    if len(line) > MAX_HEADER_LINE:
        raise error(
            f"{path}: a header line at byte {offset} is longer than {MAX_HEADER_LINE} bytes; "
            f"the file is damaged or not of the format its name says"
        )
    if offset + len(line) > MAX_HEADER_BYTES:
        raise error(
            f"{path}: the header runs past {MAX_HEADER_BYTES // 2**20} MiB; the file is "
            f"damaged or not of the format its name says"
        )
    return line


def _declared(handle: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(handle)
    reader = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if reader is None:
        raise ValueError(f"unsupported .npy format version {version}")
    shape, _fortran, dtype = reader(handle)
    return tuple(shape), dtype


def _nbytes(shape, dtype) -> int:
    count = 1
    for size in shape:
        count *= int(size)
    return count * np.dtype(dtype).itemsize


def _too_big(path, name: str, shape, dtype, holds: int, error) -> None:
    declared = _nbytes(shape, dtype)
    if declared > holds:
        raise error(
            f"{path}: {name} declares {list(shape)} {dtype} ({declared:,} bytes), but the file "
            f"holds at most {holds:,} bytes for it; the file is damaged or crafted"
        )


def check_npz_limits(path, max_elements: int | None = None, error=BidlError) -> None:
    """Refuse an ``.npz`` or ``.npy`` whose declared sizes its bytes cannot back (or, with
    ``max_elements``, whose arrays declare more elements), reading only the zip directory
    and the ``.npy`` headers."""
    path = Path(path)
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            handle.seek(0)
            try:
                shape, dtype = _declared(handle)
            except Exception:  # not an .npy either: the reader's own error says so
                return
            _too_big(path, "the array", shape, dtype, path.stat().st_size - handle.tell(), error)
            _check_count(path, "the array", shape, max_elements, error)
            return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return  # the reader reports it (NotImplementedError: a zip version Python lacks)
    with archive:
        for member in archive.infolist():
            ratio = 1 if member.compress_type == zipfile.ZIP_STORED else DEFLATE_RATIO
            if member.file_size > ratio * member.compress_size + SLACK:
                raise error(
                    f"{path}: member {member.filename} declares {member.file_size:,} bytes "
                    f"from {member.compress_size:,} compressed, more than compression can "
                    f"give; the file is damaged or crafted"
                )
            if not member.filename.endswith(".npy"):
                continue
            try:
                with archive.open(member) as stream:
                    shape, dtype = _declared(stream)
                    offset = stream.tell()
            except Exception:  # the reader reports it
                continue
            name = member.filename[:-4]
            _too_big(path, name, shape, dtype, member.file_size - offset, error)
            _check_count(path, name, shape, max_elements, error)


def _check_count(path, name: str, shape, max_elements: int | None, error) -> None:
    count = 1
    for size in shape:
        count *= int(size)
    if max_elements is not None and count > max_elements:
        raise error(
            f"{path}: {name} declares {count:,} elements, more than the {max_elements:,} "
            f"bidl reads from one file of this kind; the file is damaged or crafted"
        )
