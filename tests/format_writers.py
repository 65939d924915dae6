"""Writers of the on-disk formats bidl reads, written from the format specifications,
so tests can check that the readers recover exactly what was written."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def random_events(n: int, size=(128, 128), t_max=1_000_000, seed=0) -> dict:
    """Columns x, y, t (sorted), p of ``n`` random events."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.integers(0, size[1], n),
        "y": rng.integers(0, size[0], n),
        "t": np.sort(rng.integers(0, t_max, n)),
        "p": rng.integers(0, 2, n),
    }


def write_aedat31(
    path: Path, events: dict, packet_size=100, invalid=(), overflow=0, extra_packet=True
):
    """AEDAT 3.1: text header, then polarity packets (28-byte header + 8-byte events:
    uint32 valid|pol<<1|y<<2|x<<17, int32 timestamp). ``invalid`` indices get the valid
    bit cleared; ``overflow`` is stored in every packet's ts-overflow field; a special
    event packet (type 0) is put first when ``extra_packet``."""
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017\r\n#!END-HEADER\r\n"
    body = bytearray()
    if extra_packet:
        body += struct.pack("<hhiiiiii", 0, 1, 8, 4, overflow, 2, 2, 2) + bytes(16)
    n = len(events["t"])
    for lo in range(0, n, packet_size):
        hi = min(n, lo + packet_size)
        body += struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, hi - lo, hi - lo, hi - lo)
        for i in range(lo, hi):
            valid = 0 if i in invalid else 1
            address = (
                valid
                | (int(events["p"][i]) << 1)
                | (int(events["y"][i]) << 2)
                | (int(events["x"][i]) << 17)
            )
            body += struct.pack("<Ii", address, int(events["t"][i]) & 0x7FFFFFFF)
    path.write_bytes(header + bytes(body))


def write_aedat2_dvs128(path: Path, events: dict):
    """jAER AEDAT 2.0: '#' header lines, then big-endian (address, timestamp) uint32
    pairs; DVS128 address = y << 8 | x << 1 | polarity."""
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Data format is int32 address, int32 timestamp (8 bytes total)\r\n"
    address = (
        (events["y"].astype(np.uint32) << 8)
        | (events["x"].astype(np.uint32) << 1)
        | events["p"].astype(np.uint32)
    )
    records = np.empty(len(address), dtype=[("a", ">u4"), ("t", ">u4")])
    records["a"], records["t"] = address, events["t"]
    path.write_bytes(header + records.tobytes())


def write_nmnist(path: Path, events: dict):
    """N-MNIST: 5 bytes per event: x, y, polarity << 7 | t[22:16], t[15:8], t[7:0]."""
    t = events["t"].astype(np.int64)
    assert t.max() < 1 << 23
    raw = np.stack(
        [
            events["x"],
            events["y"],
            (events["p"] << 7) | (t >> 16) & 0x7F,
            (t >> 8) & 0xFF,
            t & 0xFF,
        ],
        axis=1,
    ).astype(np.uint8)
    path.write_bytes(raw.tobytes())


def write_idx(path: Path, array: np.ndarray, compress=False):
    """IDX: 0, 0, type code (8 = ubyte), ndim, big-endian int32 sizes, the values."""
    data = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    data += np.asarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_jpeg_frames(folder: Path, frames: np.ndarray, quality=95, suffix=".jpg"):
    """One image file per frame ``[T, H, W, 3]`` uint8: 00001.jpg, 00002.jpg, ..."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(folder / f"{i:05d}{suffix}", quality=quality)
