"""AEDAT 4 (uncompressed, LZ4, Zstd) and HDF5 recordings (Prophesee, DSEC, flat columns,
MVSEC) written from their published layouts read back exactly; the ``aedat`` package and
h5py cross-check; damaged files and missing optional packages get one clear error."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from format_writers import (
    random_events,
    write_aedat4,
    write_dsec_h5,
    write_mvsec_h5,
    write_prophesee_hdf5,
)

from bidl.datasets.events.formats import EventFileError, read_event_file, sensor_size_of

h5py = pytest.importorskip("h5py")


def assert_events_equal(events, expected):
    assert len(events) == len(expected["t"])
    for name in "xytp":
        np.testing.assert_array_equal(events[name], expected[name], err_msg=name)


@pytest.fixture(scope="module")
def events():
    data = random_events(700, size=(260, 346), t_max=3_000_000, seed=11)
    data["t"] += 1_700_000_000_000_000  # wall-clock microseconds, as DV writes them
    return data


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_aedat4_reads_back_every_event(compression, events, tmp_path):
    if compression != "none":
        pytest.importorskip("lz4" if compression == "lz4" else "zstandard")
    path = tmp_path / f"rec-{compression}.aedat4"
    write_aedat4(path, events, compression=compression, packet_size=64)
    assert_events_equal(read_event_file(path), events)
    assert sensor_size_of(path) == (260, 346)


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_aedat_package_reads_our_aedat4_files_alike(compression, events, tmp_path):
    aedat = pytest.importorskip("aedat")
    pytest.importorskip("lz4")
    pytest.importorskip("zstandard")
    path = tmp_path / "rec.aedat4"
    write_aedat4(path, events, compression=compression, packet_size=64)
    packets = [p["events"] for p in aedat.Decoder(path) if "events" in p]
    theirs = np.concatenate(packets)
    ours = read_event_file(path)
    for mine, other in (("x", "x"), ("y", "y"), ("t", "t"), ("p", "on")):
        np.testing.assert_array_equal(ours[mine], theirs[other].astype(np.int64), err_msg=mine)


def test_truncated_aedat4_packet_names_the_byte_offset(events, tmp_path):
    path = tmp_path / "cut.aedat4"
    write_aedat4(path, events, packet_size=700, triggers=False)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    header_end = data.rindex(b"EVTS") - 16  # the packet: stream id, length, size, root
    with pytest.raises(
        EventFileError, match=rf"cut\.aedat4: truncated packet at byte offset {header_end} "
    ):
        read_event_file(path)


def test_corrupt_compressed_aedat4_packet_names_the_byte_offset(events, tmp_path):
    pytest.importorskip("lz4")
    path = tmp_path / "bad.aedat4"
    write_aedat4(path, events, compression="lz4", packet_size=700, triggers=False)
    data = bytearray(path.read_bytes())
    data[-20:-10] = bytes(10)
    path.write_bytes(bytes(data))
    with pytest.raises(
        EventFileError, match=r"bad\.aedat4: packet at byte offset \d+ does not decompress"
    ):
        read_event_file(path)


def test_missing_decompressor_names_the_extra(events, tmp_path, monkeypatch):
    pytest.importorskip("zstandard")
    path = tmp_path / "z.aedat4"
    write_aedat4(path, events, compression="zstd")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(
        EventFileError,
        match=r"z\.aedat4: reading Zstd-compressed AEDAT 4 files needs the 'zstandard' "
        r"package, which is not installed; install it with: pip install 'bidl\[formats\]'",
    ):
        read_event_file(path)


def test_not_an_aedat4_file(tmp_path):
    (tmp_path / "x.aedat4").write_bytes(b"#!AER-DAT3.1\r\n")
    with pytest.raises(EventFileError, match=r"x\.aedat4: does not start with '#!AER-DAT4.0'"):
        read_event_file(tmp_path / "x.aedat4")


def test_prophesee_hdf5_reads_back_every_event(events, tmp_path):
    write_prophesee_hdf5(tmp_path / "rec.hdf5", events)
    assert_events_equal(read_event_file(tmp_path / "rec.hdf5"), events)


def test_prophesee_hdf5_with_the_ecf_codec_says_what_is_missing(events, tmp_path):
    write_prophesee_hdf5(tmp_path / "ecf.hdf5", events, codec="ecf")
    with pytest.raises(
        EventFileError,
        match=r"ecf\.hdf5: /CD/events is compressed with Prophesee's ECF codec \(HDF5 filter "
        r"36559\), whose plugin is not installed",
    ):
        read_event_file(tmp_path / "ecf.hdf5")


def test_dsec_times_are_absolute(events, tmp_path):
    offset = int(events["t"][0]) - 123
    write_dsec_h5(tmp_path / "events.h5", events, t_offset=offset)
    with h5py.File(tmp_path / "events.h5") as handle:  # as DSEC stores them: relative
        assert handle["events/t"][0] == 123
    assert_events_equal(read_event_file(tmp_path / "events.h5"), events)


@pytest.mark.parametrize("group", [None, "events"])
def test_flat_xytp_columns(group, tmp_path):
    data = random_events(300, size=(480, 640), seed=12)
    with h5py.File(tmp_path / "cols.h5", "w") as handle:
        where = handle if group is None else handle.create_group(group)
        for name in "xytp":
            where.create_dataset(name, data=data[name])
    assert_events_equal(read_event_file(tmp_path / "cols.h5"), data)


def test_mvsec_event_array_in_seconds(tmp_path):
    data = random_events(300, size=(260, 346), t_max=30_000_000, seed=13)
    write_mvsec_h5(tmp_path / "indoor_flying1_data.hdf5", data)
    assert_events_equal(read_event_file(tmp_path / "indoor_flying1_data.hdf5"), data)


def test_hdf5_without_events_lists_the_layouts(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle.create_dataset("images", data=np.zeros((2, 4, 4)))
    with pytest.raises(EventFileError, match=r"other\.h5: no event layout found: expected"):
        read_event_file(tmp_path / "other.h5")


def test_columns_of_different_lengths_are_refused(tmp_path):
    with h5py.File(tmp_path / "ragged.h5", "w") as handle:
        for name, size in zip("xytp", (5, 5, 4, 5), strict=True):
            handle.create_dataset(name, data=np.zeros(size, dtype=np.int64))
    with pytest.raises(EventFileError, match=r"ragged\.h5: the event columns differ in length"):
        read_event_file(tmp_path / "ragged.h5")


def test_missing_h5py_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "rec.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(EventFileError, match=r"pip install 'bidl\[formats\]'"):
        read_event_file(tmp_path / "rec.h5")
