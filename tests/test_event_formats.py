"""Readers of event files recover exactly the events written in each distributed format."""

from __future__ import annotations

import numpy as np
import pytest
from format_writers import random_events, write_aedat2_dvs128, write_aedat31, write_nmnist

from bidl.datasets.events.formats import (
    EventFileError,
    read_aedat2_dvs128,
    read_aedat31,
    read_event_file,
    read_nmnist,
)


def assert_events_equal(events, expected, keep=None):
    keep = np.arange(len(expected["t"])) if keep is None else keep
    for name in "xytp":
        np.testing.assert_array_equal(events[name], np.asarray(expected[name])[keep], err_msg=name)


def test_aedat31_reader_recovers_every_polarity_event(tmp_path):
    events = random_events(250)
    write_aedat31(tmp_path / "rec.aedat", events)
    assert_events_equal(read_aedat31(tmp_path / "rec.aedat"), events)


def test_aedat31_reader_skips_invalid_events(tmp_path):
    events = random_events(50)
    write_aedat31(tmp_path / "rec.aedat", events, invalid={3, 17})
    keep = np.setdiff1d(np.arange(50), [3, 17])
    assert_events_equal(read_aedat31(tmp_path / "rec.aedat"), events, keep)


def test_aedat31_reader_extends_timestamps_by_the_overflow_counter(tmp_path):
    events = random_events(20)
    write_aedat31(tmp_path / "rec.aedat", events, overflow=3)
    np.testing.assert_array_equal(
        read_aedat31(tmp_path / "rec.aedat")["t"], events["t"] + (3 << 31)
    )


def test_truncated_aedat31_file_names_the_file(tmp_path):
    write_aedat31(tmp_path / "cut.aedat", random_events(40))
    data = (tmp_path / "cut.aedat").read_bytes()
    (tmp_path / "cut.aedat").write_bytes(data[:-5])
    with pytest.raises(EventFileError, match=r"cut\.aedat: packet at byte \d+ is truncated"):
        read_aedat31(tmp_path / "cut.aedat")


def test_aedat2_reader_decodes_dvs128_addresses(tmp_path):
    events = random_events(300)
    write_aedat2_dvs128(tmp_path / "cifar.aedat", events)
    assert_events_equal(read_aedat2_dvs128(tmp_path / "cifar.aedat"), events)


def test_read_event_file_picks_the_aedat_version_from_the_header(tmp_path):
    events = random_events(30)
    write_aedat2_dvs128(tmp_path / "v2.aedat", events)
    write_aedat31(tmp_path / "v3.aedat", events)
    assert_events_equal(read_event_file(tmp_path / "v2.aedat"), events)
    assert_events_equal(read_event_file(tmp_path / "v3.aedat"), events)


def test_nmnist_reader_recovers_40_bit_events(tmp_path):
    events = random_events(200, size=(34, 34), t_max=(1 << 23) - 1)
    write_nmnist(tmp_path / "00002.bin", events)
    assert_events_equal(read_nmnist(tmp_path / "00002.bin"), events)


def test_npz_with_xytp_arrays_is_read(tmp_path):
    events = random_events(10)
    np.savez(tmp_path / "rec.npz", **events)
    assert_events_equal(read_event_file(tmp_path / "rec.npz"), events)


def test_npz_without_event_arrays_says_what_it_needs(tmp_path):
    np.savez(tmp_path / "bad.npz", frames=np.zeros(3))
    with pytest.raises(EventFileError, match=r"bad\.npz: needs arrays named x, y, t and p"):
        read_event_file(tmp_path / "bad.npz")


def test_file_without_aedat_header_is_refused(tmp_path):
    (tmp_path / "junk.aedat").write_bytes(b"\x00\x01\x02")
    with pytest.raises(EventFileError, match=r"junk\.aedat: no '#!AER-DAT<version>' line"):
        read_event_file(tmp_path / "junk.aedat")


def test_unknown_suffix_lists_the_readable_types(tmp_path):
    (tmp_path / "rec.txt").write_text("1 2 3 4")
    with pytest.raises(EventFileError, match=r"unknown event file type '\.txt'"):
        read_event_file(tmp_path / "rec.txt")
