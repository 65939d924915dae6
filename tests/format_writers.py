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


# --- Prophesee, AEDAT 4 and HDF5 recordings ------------------------------------------------


def burst_events(n_bursts: int, size=(720, 1280), t_max=40_000_000, seed=0) -> dict:
    """Columns of events in bursts that share a timestamp, a row and a polarity and have
    rising x within a few dozen pixels (what vectorised encodings pack into one word),
    mixed with lone events; sorted by time, spanning ``t_max`` us (past EVT 3.0's 24-bit
    clock)."""
    rng = np.random.default_rng(seed)
    height, width = size
    cols = {k: [] for k in "xytp"}
    times = np.sort(rng.integers(0, t_max, n_bursts))
    for t in times:
        count = int(rng.choice([1, 1, 2, 5, 12, 20]))
        x0 = int(rng.integers(0, width - 48))
        xs = np.sort(rng.choice(48, size=count, replace=False)) + x0
        cols["x"] += xs.tolist()
        cols["y"] += [int(rng.integers(0, height))] * count
        cols["t"] += [int(t)] * count
        cols["p"] += [int(rng.integers(0, 2))] * count
    return {k: np.array(v, dtype=np.int64) for k, v in cols.items()}


def _groups(events: dict, span: int):
    """Runs of consecutive events with equal t, y, p and rising x within ``span`` pixels of
    the run's first x (one vector word's reach): lists of indices."""
    run: list[int] = []
    for i in range(len(events["t"])):
        if run:
            j = run[-1]
            same = all(int(events[k][i]) == int(events[k][j]) for k in "typ")
            if same and events["x"][j] < events["x"][i] < events["x"][run[0]] + span:
                run.append(i)
                continue
            yield run
        run = [i]
    if run:
        yield run


def _raw_header(fmt: str, evt: str, size, legacy=False) -> bytes:
    height, width = size
    endianness = ";endianness=legacy" if legacy else ""
    return (
        f"% camera_integrator_name Prophesee\n% date 2026-11-27 10:00:00\n% evt {evt}\n"
        f"% format {fmt};height={height};width={width}{endianness}\n"
        f"% geometry {width}x{height}\n% integrator_name Prophesee\n% end\n"
    ).encode()


def write_evt2(path: Path, events: dict, size=(720, 1280), extras=True):
    """EVT 2.0 (32-bit little-endian words, type in bits 31-28): EVT_TIME_HIGH (1000) with
    t >> 6 in bits 27-0 whenever it changes, then CD_OFF (0000) / CD_ON (0001) words with
    t & 63 in bits 27-22, x in 21-11, y in 10-0. ``extras``: trigger (1010) and OTHERS
    (1110) words are mixed in, which a reader must skip."""
    words = []
    high = None
    for i in range(len(events["t"])):
        t = int(events["t"][i])
        if t >> 6 != high:
            high = t >> 6
            words.append((0x8 << 28) | (high & 0x0FFFFFFF))
        if extras and i % 7 == 3:
            words.append((0xA << 28) | ((t & 63) << 22) | (1 << 8) | 1)  # trigger id 1, value 1
            words.append((0xE << 28) | ((t & 63) << 22) | 0x14)
        words.append(
            (int(events["p"][i]) << 28)
            | ((t & 63) << 22)
            | (int(events["x"][i]) << 11)
            | int(events["y"][i])
        )
    path.write_bytes(_raw_header("EVT2", "2.0", size) + struct.pack(f"<{len(words)}I", *words))


def write_evt21(path: Path, events: dict, size=(720, 1280), legacy=False):
    """EVT 2.1 (64-bit words, type in bits 63-60): EVT_TIME_HIGH (1000, t >> 6 in bits
    59-32) on change; EVT_NEG / EVT_POS (0000 / 0001) words with t & 63 in 59-54, x aligned
    down to 32 in 53-43, y in 42-32 and a 32-bit mask of the events at x + bit (31-0).
    ``legacy`` writes each word's 32-bit halves swapped (and says so in the header)."""
    words = []
    high = None
    for run in _groups(events, 32):
        t, y, p = (int(events[k][run[0]]) for k in "typ")
        if t >> 6 != high:
            high = t >> 6
            words.append((0x8 << 60) | ((high & 0x0FFFFFFF) << 32))
        blocks: dict[int, int] = {}
        for i in run:
            x = int(events["x"][i])
            blocks[x & ~31] = blocks.get(x & ~31, 0) | (1 << (x & 31))
        for base, mask in sorted(blocks.items()):
            words.append((p << 60) | ((t & 63) << 54) | (base << 43) | (y << 32) | mask)
    if legacy:
        words = [((w & 0xFFFFFFFF) << 32) | (w >> 32) for w in words]
    path.write_bytes(
        _raw_header("EVT21", "2.1", size, legacy) + struct.pack(f"<{len(words)}Q", *words)
    )


def write_evt3(path: Path, events: dict, size=(720, 1280), extras=True):
    """EVT 3.0 (16-bit words, type in bits 15-12), written as a camera's state machine:
    EVT_TIME_HIGH (1000, t bits 23-12) when t >> 12 changes, EVT_TIME_LOW (0110, t bits
    11-0) when the low part changes (a new high clears it), EVT_ADDR_Y (0000, y) when y
    changes, then a lone event as EVT_ADDR_X (0010: polarity bit 11, x) or a run as
    VECT_BASE_X (0011: polarity, first x) followed by VECT_12 (0100, 12-bit mask) and
    VECT_8 (0101, 8-bit mask) words, each moving the base by 12 / 8. ``extras``: trigger
    (1010) and OTHERS (1110) + CONTINUED_12 (1111) words are mixed in."""
    words = []
    high = low = y_now = None
    for n, run in enumerate(_groups(events, 40)):
        t, y, p = (int(events[k][run[0]]) for k in "typ")
        if t >> 12 != high:
            high, low = t >> 12, None
            words.append((0x8 << 12) | (high & 0xFFF))
        if t & 0xFFF != low:
            low = t & 0xFFF
            words.append((0x6 << 12) | low)
        if y != y_now:
            y_now = y
            words.append(y)
        if extras and n % 5 == 2:
            words += [(0xA << 12) | (2 << 8) | 1, (0xE << 12) | 0x016, 0xF000 | 7, 0xF000, 0xF000]
        xs = [int(events["x"][i]) for i in run]
        if len(xs) == 1:
            words.append((0x2 << 12) | (p << 11) | xs[0])
            continue
        base = xs[0]
        words.append((0x3 << 12) | (p << 11) | base)
        while xs:
            reach = 12 if xs[-1] - base >= 8 else 8
            mask = sum(1 << (x - base) for x in xs if x < base + reach)
            words.append(((0x4 if reach == 12 else 0x5) << 12) | mask)
            xs = [x for x in xs if x >= base + reach]
            base += reach
    path.write_bytes(_raw_header("EVT3", "3.0", size) + struct.pack(f"<{len(words)}H", *words))


def write_dat(path: Path, events: dict, size=(240, 304), event_type=0x0C):
    """Prophesee .dat: '% ' header lines, one byte of event type and one of event size (8),
    then (uint32 t, uint32 x | y << 14 | p << 28) little-endian records."""
    height, width = size
    header = (
        f"% Data file containing CD events.\n% Version 2\n% Date 2026-11-27 10:00:00\n"
        f"% Width {width}\n% Height {height}\n"
    ).encode()
    records = np.empty(len(events["t"]), dtype=[("t", "<u4"), ("w", "<u4")])
    records["t"] = np.asarray(events["t"]) & 0xFFFFFFFF
    records["w"] = (
        np.asarray(events["x"], dtype=np.uint32)
        | (np.asarray(events["y"], dtype=np.uint32) << 14)
        | (np.asarray(events["p"], dtype=np.uint32) << 28)
    )
    path.write_bytes(header + bytes([event_type, 8]) + records.tobytes())


def _pad(buffer: bytearray, align: int) -> None:
    buffer += bytes(-len(buffer) % align)


def _aedat4_ioheader(compression: int, description: str) -> bytes:
    """IOHeader flatbuffer: root offset, "IOHE", a vtable of 3 fields, the table (soffset,
    int32 compression, int64 data-table position -1, offset of the description string)."""
    buffer = bytearray(struct.pack("<I", 24) + b"IOHE")
    buffer += struct.pack("<HHHHH", 10, 24, 4, 8, 16)  # vtable at 8
    _pad(buffer, 8)  # the table at 24
    buffer += struct.pack("<iiqI", 24 - 8, compression, -1, 44 - 40)
    text = description.encode()
    buffer += struct.pack("<I", len(text)) + text + b"\x00"
    _pad(buffer, 4)
    return bytes(buffer)


def _aedat4_packet(identifier: bytes, elements: bytes, count: int) -> bytes:
    """A size-prefixed flatbuffer: size, root offset, identifier, vtable (one field), the
    table (soffset, offset of the vector), the vector (count, 8-aligned elements)."""
    buffer = bytearray(struct.pack("<II", 0, 20 - 4) + identifier)
    buffer += struct.pack("<HHH", 6, 8, 4)  # vtable at 12
    _pad(buffer, 4)  # table at 20
    buffer += struct.pack("<iI", 20 - 12, 28 - 24)
    buffer += struct.pack("<I", count) + elements  # vector at 28, elements at 32
    struct.pack_into("<I", buffer, 0, len(buffer) - 4)
    return bytes(buffer)


def write_aedat4(
    path: Path, events: dict, size=(260, 346), compression="none", packet_size=100, triggers=True
):
    """AEDAT 4.0: '#!AER-DAT4.0\\r\\n', uint32 length + IOHeader flatbuffer (compression 0
    none / 1 LZ4 / 3 Zstd, XML description of the streams), then packets (int32 stream id,
    int32 length, a size-prefixed "EVTS" flatbuffer of 16-byte events: int64 t, int16 x,
    int16 y, bool on, 3 pad bytes), compressed whole as LZ4 / Zstd frames when asked.
    ``triggers``: an empty "TRIG" packet of a second stream comes before each event packet."""
    height, width = size
    code = {"none": 0, "lz4": 1, "zstd": 3}[compression]
    description = (
        '<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
        '<node name="0" path="/mainloop/Recorder/outInfo/0/">'
        '<attr key="compression" type="string">NONE</attr>'
        '<attr key="originalModuleName" type="string">capture</attr>'
        '<attr key="originalOutputName" type="string">events</attr>'
        '<attr key="typeIdentifier" type="string">EVTS</attr>'
        '<node name="info" path="/mainloop/Recorder/outInfo/0/info/">'
        f'<attr key="sizeX" type="int">{width}</attr><attr key="sizeY" type="int">{height}</attr>'
        '<attr key="source" type="string">DAVIS346</attr></node></node>'
        '<node name="1" path="/mainloop/Recorder/outInfo/1/">'
        '<attr key="compression" type="string">NONE</attr>'
        '<attr key="originalModuleName" type="string">capture</attr>'
        '<attr key="originalOutputName" type="string">triggers</attr>'
        '<attr key="typeIdentifier" type="string">TRIG</attr></node></node></dv>'
    )
    if code == 1:
        import lz4.frame

        compress = lz4.frame.compress
    elif code == 3:
        import zstandard

        compress = zstandard.ZstdCompressor().compress
    else:

        def compress(data):
            return data

    header = _aedat4_ioheader(code, description)
    out = bytearray(b"#!AER-DAT4.0\r\n" + struct.pack("<I", len(header)) + header)
    records = np.zeros(
        len(events["t"]),
        dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")],
    )
    for name, column in (("t", "t"), ("x", "x"), ("y", "y"), ("on", "p")):
        records[name] = events[column]
    for lo in range(0, len(records), packet_size):
        if triggers:
            body = compress(_aedat4_packet(b"TRIG", b"", 0))
            out += struct.pack("<ii", 1, len(body)) + body
        chunk = records[lo : lo + packet_size]
        body = compress(_aedat4_packet(b"EVTS", chunk.tobytes(), len(chunk)))
        out += struct.pack("<ii", 0, len(body)) + body
    path.write_bytes(bytes(out))


def write_prophesee_hdf5(path: Path, events: dict, size=(720, 1280), codec="gzip"):
    """Metavision HDF5: a compound dataset /CD/events (x u2, y u2, p i2, t i8) and
    /CD/indexes. ``codec="ecf"`` marks the dataset with Prophesee's ECF filter (id 36559)
    and stores opaque chunks, as a file made by Metavision looks to a reader without the
    plugin; ``"gzip"`` or ``None`` store it readably."""
    import h5py

    dtype = np.dtype([("x", "<u2"), ("y", "<u2"), ("p", "<i2"), ("t", "<i8")])
    data = np.empty(len(events["t"]), dtype=dtype)
    for name in "xytp":
        data[name] = events[name]
    with h5py.File(path, "w") as handle:
        group = handle.create_group("CD")
        if codec == "ecf":
            chunk = max(1, len(data))
            dset = group.create_dataset(
                "events",
                shape=data.shape,
                dtype=dtype,
                chunks=(chunk,),
                compression=36559,
                allow_unknown_filter=True,
            )
            dset.id.write_direct_chunk((0,), b"\x01ECF-opaque" * 8)
        else:
            group.create_dataset("events", data=data, compression=codec, chunks=True)
        group.create_dataset("indexes", data=np.zeros(1, dtype=[("id", "<u8"), ("ts", "<i8")]))
        handle.attrs["geometry"] = f"{size[1]}x{size[0]}"


def write_dsec_h5(path: Path, events: dict, t_offset: int):
    """DSEC events.h5: events/{x u2, y u2, t u4 (us from t_offset), p u1}, t_offset (i8)
    and ms_to_idx (u8: index of the first event at or after each millisecond)."""
    import h5py

    t = np.asarray(events["t"], dtype=np.int64) - t_offset
    with h5py.File(path, "w") as handle:
        group = handle.create_group("events")
        group.create_dataset("x", data=np.asarray(events["x"], dtype=np.uint16))
        group.create_dataset("y", data=np.asarray(events["y"], dtype=np.uint16))
        group.create_dataset("t", data=t.astype(np.uint32))
        group.create_dataset("p", data=np.asarray(events["p"], dtype=np.uint8))
        handle.create_dataset("t_offset", data=np.int64(t_offset))
        ms = np.arange(0, int(t.max()) // 1000 + 2) * 1000
        handle.create_dataset("ms_to_idx", data=np.searchsorted(t, ms).astype(np.uint64))


def write_mvsec_h5(path: Path, events: dict):
    """MVSEC: davis/left/events, an [N, 4] float64 array of x, y, t (seconds), p (-1 / 1)."""
    import h5py

    array = np.stack(
        [
            np.asarray(events["x"], np.float64),
            np.asarray(events["y"], np.float64),
            np.asarray(events["t"], np.float64) / 1e6,
            np.where(np.asarray(events["p"]) > 0, 1.0, -1.0),
        ],
        axis=1,
    )
    with h5py.File(path, "w") as handle:
        handle.create_dataset("davis/left/events", data=array)


def evt2_words(events: dict) -> np.ndarray:
    """The EVT 2.0 words of ``events`` (time-sorted) as ``write_evt2`` lays them out without
    extras, built with numpy for large recordings."""
    t = np.asarray(events["t"], dtype=np.int64)
    high = t >> 6
    new = np.concatenate([[True], high[1:] != high[:-1]])
    before = np.cumsum(new)  # time-high words up to and including each event's own
    words = np.empty(t.size + int(new.sum()), dtype="<u4")
    at = np.arange(t.size) + before
    words[at[new] - 1] = (0x8 << 28) | (high[new] & 0x0FFFFFFF)
    words[at] = (
        (np.asarray(events["p"], dtype=np.int64) << 28)
        | ((t & 63) << 22)
        | (np.asarray(events["x"], dtype=np.int64) << 11)
        | np.asarray(events["y"], dtype=np.int64)
    )
    return words


def write_evt2_fast(path: Path, events: dict, size=(720, 1280)):
    with open(path, "wb") as handle:
        handle.write(_raw_header("EVT2", "2.0", size))
        evt2_words(events).tofile(handle)
