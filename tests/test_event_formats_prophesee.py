"""Prophesee recordings (EVT 2.0 / 2.1 / 3.0 ``.raw``, ``.dat``) written byte by byte from
the published layouts read back exactly, field by field; expelliarmus cross-checks EVT 2.0
and ``.dat`` both ways."""

from __future__ import annotations

import numpy as np
import pytest
from format_writers import (
    burst_events,
    random_events,
    write_dat,
    write_evt2,
    write_evt2_fast,
    write_evt3,
    write_evt21,
)

from bidl.datasets.events import prophesee_dat, prophesee_raw
from bidl.datasets.events.formats import (
    EventFileError,
    iter_event_file,
    read_event_file,
    sensor_size_of,
)

WRITERS = {
    "evt2": write_evt2,
    "evt21": write_evt21,
    "evt21-legacy": lambda path, events: write_evt21(path, events, legacy=True),
    "evt3": write_evt3,
}


def assert_events_equal(events, expected):
    assert len(events) == len(expected["t"])
    for name in "xytp":
        np.testing.assert_array_equal(events[name], expected[name], err_msg=name)


@pytest.fixture(scope="module")
def bursts():
    return burst_events(300, seed=4)


@pytest.mark.parametrize("encoding", sorted(WRITERS))
def test_raw_files_read_back_every_event(encoding, bursts, tmp_path):
    path = tmp_path / "rec.raw"
    WRITERS[encoding](path, bursts)
    events = read_event_file(path)
    assert_events_equal(events, bursts)
    assert events["t"].max() > 1 << 24  # past EVT 3.0's 24-bit clock: unwrapped
    assert sensor_size_of(path) == (720, 1280)


@pytest.mark.parametrize("encoding", sorted(WRITERS))
def test_state_carries_across_decode_blocks(encoding, bursts, tmp_path, monkeypatch):
    """Blocks of 64 bytes cut through bursts, time-high runs and vectors."""
    path = tmp_path / "rec.raw"
    WRITERS[encoding](path, bursts)
    monkeypatch.setattr(prophesee_raw, "BLOCK_BYTES", 64)
    assert_events_equal(read_event_file(path), bursts)


def test_evt2_time_high_wrap_is_unwrapped(tmp_path):
    """EVT 2.x clocks wrap at 2**34 us (4 h 46 min); times past it keep rising."""
    events = random_events(400, size=(480, 640), t_max=20_000, seed=2)
    events["t"] = events["t"] + (1 << 34) - 10_000
    write_evt2(tmp_path / "long.raw", events, size=(480, 640))
    assert_events_equal(read_event_file(tmp_path / "long.raw"), events)


def test_events_before_the_first_time_high_are_skipped(tmp_path):
    events = random_events(20, size=(480, 640), seed=1)
    write_evt2(tmp_path / "rec.raw", events, extras=False)
    data = (tmp_path / "rec.raw").read_bytes()
    offset = prophesee_raw.read_raw_header(tmp_path / "rec.raw").offset
    orphan = np.array([(1 << 28) | (5 << 11) | 7], dtype="<u4").tobytes()
    (tmp_path / "rec.raw").write_bytes(data[:offset] + orphan + data[offset:])
    assert_events_equal(read_event_file(tmp_path / "rec.raw"), events)


def test_old_header_with_only_the_evt_key(bursts, tmp_path):
    write_evt3(tmp_path / "rec.raw", bursts)
    lines = (tmp_path / "rec.raw").read_bytes().split(b"\n")
    kept = b"\n".join(line for line in lines if not line.startswith(b"% format"))
    (tmp_path / "old.raw").write_bytes(kept)
    header = prophesee_raw.read_raw_header(tmp_path / "old.raw")
    assert (header.encoding, header.width, header.height) == ("EVT3", 1280, 720)
    assert_events_equal(read_event_file(tmp_path / "old.raw"), bursts)


def test_header_without_encoding_needs_one_given(bursts, tmp_path):
    write_evt21(tmp_path / "rec.raw", bursts)
    data = (tmp_path / "rec.raw").read_bytes()
    body = data[prophesee_raw.read_raw_header(tmp_path / "rec.raw").offset :]
    (tmp_path / "bare.raw").write_bytes(b"% date 2026-11-27\n% end\n" + body)
    with pytest.raises(EventFileError, match=r"bare\.raw: the header names no event encoding"):
        read_event_file(tmp_path / "bare.raw")
    assert_events_equal(read_event_file(tmp_path / "bare.raw", encoding="EVT21"), bursts)


def test_other_raw_encodings_are_named(tmp_path):
    (tmp_path / "h.raw").write_bytes(b"% format HISTO3D;height=320;width=320\n% end\n\x00\x00")
    with pytest.raises(EventFileError, match=r"h\.raw: event encoding 'HISTO3D' is not one"):
        read_event_file(tmp_path / "h.raw")


@pytest.mark.parametrize("encoding", ["evt2", "evt3"])
def test_truncated_raw_file_names_the_byte_offset(encoding, bursts, tmp_path):
    path = tmp_path / "cut.raw"
    WRITERS[encoding](path, bursts)
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    end = len(data) - (4 if encoding == "evt2" else 2)
    with pytest.raises(
        EventFileError, match=rf"cut\.raw: truncated: \d byte\(s\) at byte offset {end} "
    ):
        read_event_file(path)


def test_dat_reads_back_every_event(tmp_path):
    events = random_events(3000, size=(240, 304), seed=5)
    write_dat(tmp_path / "rec_td.dat", events)
    assert_events_equal(read_event_file(tmp_path / "rec_td.dat"), events)
    assert sensor_size_of(tmp_path / "rec_td.dat") == (240, 304)


def test_dat_32_bit_clock_wrap_is_unwrapped(tmp_path, monkeypatch):
    events = random_events(500, size=(100, 120), t_max=400_000, seed=6)
    events["t"] = events["t"] + (1 << 32) - 200_000
    write_dat(tmp_path / "long.dat", events, size=(100, 120))
    monkeypatch.setattr(prophesee_dat, "BLOCK_EVENTS", 64)  # the wrap inside and across blocks
    assert_events_equal(read_event_file(tmp_path / "long.dat"), events)


def test_dat_without_header_has_no_type_bytes(tmp_path):
    events = random_events(50, size=(100, 120), seed=7)
    write_dat(tmp_path / "x.dat", events, size=(100, 120))
    data = (tmp_path / "x.dat").read_bytes()
    (tmp_path / "bare.dat").write_bytes(
        data[prophesee_dat.read_dat_header(tmp_path / "x.dat").offset :]
    )
    assert_events_equal(read_event_file(tmp_path / "bare.dat"), events)


def test_truncated_dat_names_the_byte_offset(tmp_path):
    events = random_events(10, size=(100, 120), seed=7)
    write_dat(tmp_path / "cut.dat", events, size=(100, 120))
    data = (tmp_path / "cut.dat").read_bytes()
    (tmp_path / "cut.dat").write_bytes(data[:-3])
    end = len(data) - 8
    with pytest.raises(
        EventFileError, match=rf"cut\.dat: truncated: 5 byte\(s\) at byte offset {end}"
    ):
        read_event_file(tmp_path / "cut.dat")


def test_dat_with_other_event_sizes_is_refused(tmp_path):
    (tmp_path / "imu.dat").write_bytes(b"% Version 2\n\x05\x14" + bytes(40))
    with pytest.raises(EventFileError, match=r"imu\.dat: events of 20 bytes \(type 5\)"):
        read_event_file(tmp_path / "imu.dat")


def test_chunks_of_a_raw_file_rebuild_it(bursts, tmp_path, monkeypatch):
    write_evt3(tmp_path / "rec.raw", bursts)
    monkeypatch.setattr(prophesee_raw, "BLOCK_BYTES", 256)
    chunks = list(iter_event_file(tmp_path / "rec.raw", chunk_events=100))
    assert [len(c) for c in chunks[:-1]] == [100] * (len(chunks) - 1)
    assert_events_equal(np.concatenate(chunks), bursts)


def test_expelliarmus_reads_our_evt2_and_dat_and_we_read_its(tmp_path):
    expelliarmus = pytest.importorskip("expelliarmus")
    bursts = burst_events(200, t_max=5_000_000, seed=9)
    events = random_events(400, size=(240, 304), seed=9)
    for encoding, name, data in (("evt2", "a.raw", bursts), ("dat", "b.dat", events)):
        wizard = expelliarmus.Wizard(encoding=encoding)
        ours = tmp_path / name
        write_evt2_fast(ours, data) if encoding == "evt2" else write_dat(ours, data)
        assert_events_equal(wizard.read(ours), data)
        theirs = tmp_path / f"theirs_{name}"
        array = np.zeros(
            len(data["t"]), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")]
        )
        for key in "xytp":
            array[key] = data[key]
        wizard.save(theirs, array)
        assert_events_equal(read_event_file(theirs), data)
