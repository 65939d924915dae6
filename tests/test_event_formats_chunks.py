"""Reading in chunks: by event count or time window, the chunks rebuild the file, and the
memory held stays bounded by the chunk, not by the recording."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from format_writers import random_events, write_aedat31, write_dat, write_evt2_fast

from bidl.datasets.events import prophesee_raw
from bidl.datasets.events.formats import EventFileError, iter_event_file, read_event_file
from bidl.registry import BidlError


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "rec_td.dat"
    events = random_events(5000, size=(240, 304), t_max=1_000_000, seed=21)
    write_dat(path, events)
    return path, events


def test_chunks_by_count_rebuild_the_file(recording):
    path, events = recording
    chunks = list(iter_event_file(path, chunk_events=777))
    assert [len(c) for c in chunks] == [777] * 6 + [5000 - 6 * 777]
    np.testing.assert_array_equal(np.concatenate(chunks)["t"], events["t"])


def test_chunks_by_time_are_windows_from_the_first_event(recording):
    path, events = recording
    t0 = int(events["t"][0])
    chunks = list(iter_event_file(path, chunk_us=50_000))
    assert len(chunks) == (int(events["t"][-1]) - t0) // 50_000 + 1
    for k, chunk in enumerate(chunks):
        assert ((chunk["t"] >= t0 + k * 50_000) & (chunk["t"] < t0 + (k + 1) * 50_000)).all()
    assert sum(len(c) for c in chunks) == 5000


def test_empty_windows_are_yielded_in_turn(tmp_path):
    events = {
        k: np.array(v)
        for k, v in dict(x=[1, 2, 3], y=[0, 0, 0], t=[0, 10, 95], p=[1, 0, 1]).items()
    }
    write_dat(tmp_path / "gap.dat", events, size=(4, 4))
    chunks = list(iter_event_file(tmp_path / "gap.dat", chunk_us=20, t_start=-20))
    assert [c["t"].tolist() for c in chunks] == [[], [0, 10], [], [], [], [95]]


def test_aedat31_chunks(tmp_path):
    events = random_events(450, seed=3)
    write_aedat31(tmp_path / "g.aedat", events)
    chunks = list(iter_event_file(tmp_path / "g.aedat", chunk_events=100))
    assert [len(c) for c in chunks] == [100] * 4 + [50]
    np.testing.assert_array_equal(np.concatenate(chunks)["x"], events["x"])


def test_both_chunk_kinds_at_once_is_an_error(recording):
    with pytest.raises(BidlError, match="give chunk_events or chunk_us, not both"):
        next(iter_event_file(recording[0], chunk_events=10, chunk_us=10))


def test_sensor_size_is_checked_per_chunk(recording):
    with pytest.raises(EventFileError, match=r"rec_td\.dat: \d+ event\(s\) have x outside"):
        list(iter_event_file(recording[0], chunk_events=1000, sensor_size=(240, 100)))


def test_chunked_reading_holds_a_chunk_not_the_recording(tmp_path, monkeypatch):
    """4 M events (16 MB of EVT 2.0): reading them whole holds them all (52 MB as events);
    in chunks of 50 k events with 256 KB decode blocks, the peak stays near one chunk."""
    n = 4_000_000
    rng = np.random.default_rng(0)
    events = {
        "x": rng.integers(0, 1280, n),
        "y": rng.integers(0, 720, n),
        "t": np.sort(rng.integers(0, 60_000_000, n)),
        "p": rng.integers(0, 2, n),
    }
    path = tmp_path / "big.raw"
    write_evt2_fast(path, events)
    last_t = int(events["t"][-1])
    del events, rng
    monkeypatch.setattr(prophesee_raw, "BLOCK_BYTES", 1 << 18)
    tracemalloc.start()
    count, latest = 0, -1
    for chunk in iter_event_file(path, chunk_events=50_000):
        count += len(chunk)
        latest = int(chunk["t"][-1])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (count, latest) == (n, last_t)
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MB"
    assert read_event_file(path).size == n
