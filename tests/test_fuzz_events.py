"""Fuzzing (hypothesis) of the event-file readers and the BIDL pickle / .npz migration path:
random bytes and mutations of valid files end in one ``BidlError`` naming the file, or in
events that are plausible (on the sensor, 0/1 polarity, whole-number timestamps); never in
another exception, a hang or a silently wrong value."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from format_writers import random_events, write_aedat2_dvs128, write_aedat31, write_nmnist
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bidl.datasets.events.formats import EVENT_DTYPE, EventFileError, read_event_file
from bidl.datasets.legacy import convert_bidl_pickle, read_bidl_npz, read_bidl_pickle
from bidl.registry import BidlError

FUZZ = settings(
    max_examples=300, deadline=2000, suppress_health_check=list(HealthCheck), database=None
)
SENSORS = {"aedat31": (128, 128), "aedat2": (128, 128), "nmnist": (34, 34), "npz": (128, 128)}
SUFFIX = {"aedat31": ".aedat", "aedat2": ".aedat", "nmnist": ".bin", "npz": ".npz"}


def valid_file(fmt: str) -> bytes:
    events = random_events(12, size=SENSORS[fmt], t_max=100_000, seed=3)
    buffer = io.BytesIO()
    if fmt == "npz":
        np.savez(buffer, **events)
        return buffer.getvalue()
    path = _scratch / f"valid{SUFFIX[fmt]}"
    {"aedat31": write_aedat31, "aedat2": write_aedat2_dvs128, "nmnist": write_nmnist}[fmt](
        path, events
    )
    return path.read_bytes()


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with 1-4 bytes flipped, runs inserted or deleted, or a truncation."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        if kind == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


def check_events(path, sensor, read):
    """``read(path)`` gives plausible events or one ``EventFileError`` naming ``path``."""
    try:
        events = read(path)
    except EventFileError as err:
        assert str(path) in str(err)
        return None
    assert events.dtype == EVENT_DTYPE
    height, width = sensor
    assert ((events["x"] >= 0) & (events["x"] < width)).all()
    assert ((events["y"] >= 0) & (events["y"] < height)).all()
    assert np.isin(events["p"], (0, 1)).all()
    assert (events["t"] >= 0).all()
    return events


@pytest.fixture(scope="module", autouse=True)
def scratch(tmp_path_factory):
    global _scratch
    _scratch = tmp_path_factory.mktemp("valid")


FORMATS = sorted(SUFFIX)


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_files_read_back(fmt, tmp_path):
    path = tmp_path / f"ok{SUFFIX[fmt]}"
    path.write_bytes(valid_file(fmt))
    events = check_events(path, SENSORS[fmt], lambda p: read_event_file(p, SENSORS[fmt]))
    assert events is not None and len(events) == 12


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutated_event_files(fmt, tmp_path_factory):
    original = valid_file(fmt)

    @given(mutated(original))
    @FUZZ
    def run(data):
        path = tmp_path_factory.mktemp("e") / f"m{SUFFIX[fmt]}"
        path.write_bytes(data)
        check_events(path, SENSORS[fmt], lambda p: read_event_file(p, SENSORS[fmt]))

    run()


@pytest.mark.parametrize("fmt", FORMATS)
def test_random_bytes_as_event_files(fmt, tmp_path_factory):
    headers = [b"", b"#!AER-DAT3.1\r\n#!END-HEADER\r\n", b"#!AER-DAT2.0\r\n", b"PK\x03\x04"]

    @given(st.sampled_from(headers), st.binary(max_size=400))
    @FUZZ
    def run(header, data):
        path = tmp_path_factory.mktemp("e") / f"r{SUFFIX[fmt]}"
        path.write_bytes(header + data)
        check_events(path, SENSORS[fmt], lambda p: read_event_file(p, SENSORS[fmt]))

    run()


def test_aedat31_events_off_the_sensor_are_refused(tmp_path):
    events = random_events(5, size=(128, 128), seed=1)
    events["x"][2] = 300  # fits the 15-bit field, not a DVS128
    path = tmp_path / "wide.aedat"
    write_aedat31(path, events)
    assert read_event_file(path)["x"][2] == 300  # no sensor given: read as written
    with pytest.raises(EventFileError, match=r"wide\.aedat: 1 event\(s\) have x outside"):
        read_event_file(path, (128, 128))


COLUMN_DTYPES = st.sampled_from(["i1", "i2", "i4", "i8", "u1", "u2", "u8", "f4", "f8", "?"])


@given(
    st.fixed_dictionaries(
        {name: hnp.arrays(COLUMN_DTYPES, st.integers(0, 6), elements=None) for name in "xytp"}
    )
)
@FUZZ
def test_npz_columns_are_read_exactly_or_refused(tmp_path_factory, columns):
    """Arbitrary column arrays: the events read equal the columns value for value (p as
    ON/OFF), or the file is refused; a cast never wraps or truncates a value silently."""
    path = tmp_path_factory.mktemp("n") / "cols.npz"
    np.savez(path, **columns)
    events = check_events(path, (2**15, 2**15), read_event_file)
    if events is None:
        return
    for name in "xyt":
        assert np.array_equal(events[name], columns[name].astype(np.float64)), name
    assert np.array_equal(events["p"], columns["p"] > 0)


def legacy_data(n=3, shape=(2, 2, 3, 3)):
    rng = np.random.default_rng(0)
    frames = rng.random((n, *shape)) < 0.3
    return {
        "dats": [np.packbits(f.ravel()) for f in frames],
        "lbls": list(range(n)),
        "shape": shape,
    }


def check_legacy(path, read):
    try:
        data = read(path)
    except BidlError as err:
        assert str(path) in str(err)
        return None
    length = -(-int(np.prod(data["shape"])) // 8)
    assert all(d.dtype == np.uint8 and d.size == length for d in data["dats"])
    assert len(data["dats"]) == len(data["lbls"])
    return data


def convert_and_read(path):
    return read_bidl_npz(convert_bidl_pickle(path, path.with_suffix(".npz"), allow_pickle=True))


@given(st.binary(max_size=300) | mutated(pickle.dumps(legacy_data(), protocol=4)))
@FUZZ
def test_damaged_bidl_pickles(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("p") / "train.pkl"
    path.write_bytes(data)
    check_legacy(path, lambda p: read_bidl_pickle(p, allow_pickle=True))
    check_legacy(path, convert_and_read)


def _npz_bytes(data: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, dats=np.stack(data["dats"]), lbls=data["lbls"], shape=data["shape"])
    return buffer.getvalue()


@given(st.binary(max_size=300) | mutated(_npz_bytes(legacy_data())))
@FUZZ
def test_damaged_converted_npz(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("p") / "train.npz"
    path.write_bytes(data)
    check_legacy(path, read_bidl_npz)


def test_a_zip_version_python_cannot_read_is_one_error(tmp_path):
    """An .npz whose central directory asks for zip version 6.4 (found by the fuzz test:
    zipfile raised NotImplementedError from the size check before the reader ran)."""
    data = bytearray(_npz_bytes(legacy_data()))
    entry = data.index(b"PK\x01\x02")
    data[entry + 6 : entry + 8] = (64).to_bytes(2, "little")  # version needed to extract
    path = tmp_path / "train.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(BidlError) as caught:
        read_bidl_npz(path)
    assert str(path) in str(caught.value) and "6.4" in str(caught.value)


VALUES = st.none() | st.integers(-300, 300) | st.text(max_size=3) | st.floats()
LISTS = st.lists(VALUES | st.lists(st.integers(-2, 300), max_size=5), max_size=4)


@given(st.fixed_dictionaries({"dats": LISTS, "lbls": LISTS, "shape": LISTS | VALUES}))
@FUZZ
def test_pickles_of_wrong_content(tmp_path_factory, data):
    """Well-formed pickles holding the wrong things: refused or consistent, never a sample
    that unpacks into the wrong number of frames."""
    path = tmp_path_factory.mktemp("p") / "train.pkl"
    path.write_bytes(pickle.dumps(data))
    check_legacy(path, convert_and_read)
