"""Fuzzing (hypothesis) of the Prophesee and AEDAT 4 readers: mutated files end in one
``EventFileError`` naming the file, or in plausible events (on the sensor, 0/1 polarity,
non-negative times); never in another exception or a hang."""

from __future__ import annotations

import numpy as np
import pytest
from format_writers import (
    burst_events,
    random_events,
    write_aedat4,
    write_dat,
    write_evt3,
    write_evt21,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidl.datasets.events.formats import EVENT_DTYPE, EventFileError, read_event_file

FUZZ = settings(
    max_examples=80, deadline=2000, suppress_health_check=list(HealthCheck), database=None
)
SENSOR = (720, 1280)


def written(fmt: str, folder) -> bytes:
    path = folder / f"valid.{fmt}"
    events = burst_events(12, seed=2)
    if fmt == "evt3.raw":
        write_evt3(path, events)
    elif fmt == "evt21.raw":
        write_evt21(path, events)
    elif fmt == "dat":
        write_dat(path, random_events(12, size=SENSOR, seed=2), size=SENSOR)
    else:
        write_aedat4(path, random_events(12, size=SENSOR, seed=2), size=SENSOR, packet_size=5)
    return path.read_bytes()


@st.composite
def mutated(draw, data: bytes) -> bytes:
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


@pytest.mark.parametrize("fmt", ["evt3.raw", "evt21.raw", "dat", "aedat4"])
def test_mutated_recordings(fmt, tmp_path_factory):
    original = written(fmt, tmp_path_factory.mktemp("valid"))

    @given(mutated(original))
    @FUZZ
    def run(data):
        path = tmp_path_factory.mktemp("m") / f"m.{fmt.split('.')[-1]}"
        path.write_bytes(data)
        try:
            events = read_event_file(path, SENSOR)
        except EventFileError as err:
            assert str(path) in str(err)
            return
        assert events.dtype == EVENT_DTYPE
        assert np.isin(events["p"], (0, 1)).all()
        assert (events["t"] >= 0).all()

    run()
