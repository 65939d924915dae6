"""Event-to-frame integration (bidl.datasets.events) and the simulated event camera."""

from __future__ import annotations

import numpy as np
import pytest

from bidl.datasets.events import frames as events_module
from bidl.datasets.events.camera import EventCamera
from bidl.datasets.events.frames import events_to_frames, events_to_frames_batch
from bidl.registry import BidlError


def make_events(n=200, size=(6, 5), t_max=1000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, size[1], n)
    y = rng.integers(0, size[0], n)
    t = np.sort(rng.integers(0, t_max, n))
    p = rng.integers(0, 2, n).astype(np.uint8)
    return x, y, t, p


# ----------------------------------------------------------------------------- frames


def test_time_frames_count_events_per_equal_window():
    x = np.array([0, 0, 0, 0])
    y = np.array([0, 0, 0, 0])
    t = np.array([0, 10, 60, 99])
    p = np.array([1, 1, 1, 1])
    frames = events_to_frames(x, y, t, p, (1, 1), n_frames=2, t_start=0, t_end=100)
    assert frames.shape == (2, 2, 1, 1)
    assert frames[:, 1, 0, 0].tolist() == [2, 2]


def test_frames_put_off_in_channel_0_and_on_in_channel_1():
    frames = events_to_frames([1, 2], [0, 1], [0, 0], [0, 1], (2, 3), n_frames=1)
    expected = np.zeros((1, 2, 2, 3), dtype=np.int64)
    expected[0, 0, 0, 1] = 1
    expected[0, 1, 1, 2] = 1
    np.testing.assert_array_equal(frames, expected)


def test_minus_one_polarity_counts_as_off():
    frames = events_to_frames([0, 0], [0, 0], [0, 1], [-1, 1], (1, 1), n_frames=1)
    assert frames[0, :, 0, 0].tolist() == [1, 1]


def test_event_at_t_end_counts_in_last_frame():
    frames = events_to_frames([0, 0], [0, 0], [0, 100], [1, 1], (1, 1), 4, t_start=0, t_end=100)
    assert frames[:, 1, 0, 0].tolist() == [1, 0, 0, 1]


def test_default_span_runs_from_first_to_last_event():
    frames = events_to_frames([0] * 3, [0] * 3, [500, 550, 600], [1] * 3, (1, 1), n_frames=2)
    assert frames[:, 1, 0, 0].tolist() == [1, 2]


def test_explicit_span_drops_events_outside_it():
    t = np.array([5, 15, 25, 35])
    frames = events_to_frames([0] * 4, [0] * 4, t, [1] * 4, (1, 1), 2, t_start=10, t_end=30)
    assert frames.sum() == 2


def test_window_us_gives_consecutive_windows_and_drops_later_events():
    t = np.array([0, 9, 10, 25, 30, 31])
    frames = events_to_frames([0] * 6, [0] * 6, t, [1] * 6, (1, 1), 3, t_start=0, window_us=10)
    assert frames[:, 1, 0, 0].tolist() == [2, 1, 1]


def test_count_mode_gives_each_frame_an_equal_share_in_time_order():
    t = np.array([40, 10, 30, 20, 60, 50])  # not sorted
    x = np.array([4, 1, 3, 2, 6, 5])  # x encodes the time order
    frames = events_to_frames(x, np.zeros(6, int), t, np.ones(6, int), (1, 7), 3, by="count")
    on = frames[:, 1, 0]
    assert on.sum(axis=1).tolist() == [2, 2, 2]
    assert [np.flatnonzero(f).tolist() for f in on] == [[1, 2], [3, 4], [5, 6]]


def test_frames_hold_every_event_once():
    x, y, t, p = make_events(n=500)
    frames = events_to_frames(x, y, t, p, (6, 5), n_frames=7)
    assert frames.sum() == 500
    assert frames[:, 1].sum() == int(p.sum())


def test_uint8_frames_saturate_at_255_instead_of_wrapping():
    n = 300
    frames = events_to_frames(
        np.zeros(n, int),
        np.zeros(n, int),
        np.zeros(n, int),
        np.ones(n, int),
        (1, 1),
        1,
        dtype=np.uint8,
    )
    assert frames.dtype == np.uint8
    assert frames[0, 1, 0, 0] == 255


def test_empty_stream_gives_zero_frames():
    frames = events_to_frames([], [], [], [], (3, 4), n_frames=2)
    assert frames.shape == (2, 2, 3, 4)
    assert frames.sum() == 0


# ----------------------------------------------------------------------------- errors


def test_mismatched_lengths_error_lists_each_length():
    with pytest.raises(BidlError, match=r"same length; got x: 3, y: 2, t: 3, p: 3"):
        events_to_frames([0, 0, 0], [0, 0], [0, 1, 2], [0, 1, 0], (2, 2), 1)


def test_x_outside_sensor_error_names_axis_limit_and_event():
    with pytest.raises(BidlError, match=r"x outside the sensor.*0 <= x < W = 4.*event 2: x = 4"):
        events_to_frames([0, 1, 4], [0, 0, 0], [0, 1, 2], [0, 1, 0], (3, 4), 1)


def test_negative_y_error_names_y():
    with pytest.raises(BidlError, match=r"y outside the sensor.*H = 3.*event 0: y = -1"):
        events_to_frames([0], [-1], [0], [1], (3, 4), 1)


def test_n_frames_below_one_is_refused():
    with pytest.raises(BidlError, match=r"n_frames must be >= 1, got 0"):
        events_to_frames([0], [0], [0], [1], (1, 1), 0)


def test_unknown_mode_is_refused():
    with pytest.raises(BidlError, match=r"by must be one of \('time', 'count'\), got 'events'"):
        events_to_frames([0], [0], [0], [1], (1, 1), 1, by="events")


def test_bad_polarity_values_are_refused():
    with pytest.raises(
        BidlError, match=r"polarity p must be 0/1 \(OFF/ON\) or -1/1, got values \[0, 2\]"
    ):
        events_to_frames([0, 0], [0, 0], [0, 1], [0, 2], (1, 1), 1)


def test_window_us_with_count_mode_is_refused():
    with pytest.raises(BidlError, match=r"window_us applies to by='time' only"):
        events_to_frames([0], [0], [0], [1], (1, 1), 1, by="count", window_us=10)


def test_t_end_before_t_start_is_refused():
    with pytest.raises(BidlError, match=r"t_end \(5.0\) is before t_start \(10.0\)"):
        events_to_frames([0], [0], [7], [1], (1, 1), 1, t_start=10, t_end=5)


# ----------------------------------------------------------------------------- batch


def _batch(seed=0, n=6, size=(6, 5)):
    streams = [
        make_events(n=int(k), size=size, seed=seed + i)
        for i, k in enumerate(np.random.default_rng(seed).integers(0, 80, n))
    ]
    streams[2] = tuple(a[:0] for a in streams[2])  # one empty recording
    offsets = np.concatenate([[0], np.cumsum([len(s[0]) for s in streams])])
    cat = [np.concatenate([s[i] for s in streams]) for i in range(4)]
    return streams, offsets, cat


@pytest.mark.parametrize("by", ["time", "count"])
def test_batch_matches_one_recording_at_a_time(by):
    streams, offsets, (x, y, t, p) = _batch()
    frames = events_to_frames_batch(x, y, t, p, offsets, (6, 5), 4, by=by)
    assert frames.shape == (6, 4, 2, 6, 5)
    for i, s in enumerate(streams):
        np.testing.assert_array_equal(frames[i], events_to_frames(*s, (6, 5), 4, by=by))


def test_batch_with_shared_span_matches_one_recording_at_a_time():
    streams, offsets, (x, y, t, p) = _batch(seed=3)
    frames = events_to_frames_batch(x, y, t, p, offsets, (6, 5), 3, t_start=0, t_end=1000)
    for i, s in enumerate(streams):
        expected = events_to_frames(*s, (6, 5), 3, t_start=0, t_end=1000)
        np.testing.assert_array_equal(frames[i], expected)


def test_batch_samples_selects_recordings_in_the_given_order():
    _, offsets, (x, y, t, p) = _batch()
    every = events_to_frames_batch(x, y, t, p, offsets, (6, 5), 2)
    some = events_to_frames_batch(x, y, t, p, offsets, (6, 5), 2, samples=[4, 0, 2])
    np.testing.assert_array_equal(some, every[[4, 0, 2]])


def test_batch_result_does_not_depend_on_chunking(monkeypatch):
    _, offsets, (x, y, t, p) = _batch(n=9)
    whole = events_to_frames_batch(x, y, t, p, offsets, (6, 5), 3, by="count")
    monkeypatch.setattr(events_module, "_CHUNK_EVENTS", 50)
    monkeypatch.setattr(events_module, "_CHUNK_BINS", 200)
    chunked = events_to_frames_batch(x, y, t, p, offsets, (6, 5), 3, by="count", samples=range(9))
    np.testing.assert_array_equal(chunked, whole)


def test_batch_offsets_must_cover_all_events():
    with pytest.raises(BidlError, match=r"offsets must run from 0 to the number of events \(3\)"):
        events_to_frames_batch([0] * 3, [0] * 3, [0, 1, 2], [1] * 3, [0, 2], (1, 1), 1)


def test_batch_decreasing_offsets_are_refused():
    with pytest.raises(
        BidlError, match=r"offsets must not decrease; offsets\[1\] = 3 > offsets\[2\] = 1"
    ):
        events_to_frames_batch([0] * 3, [0] * 3, [0, 1, 2], [1] * 3, [0, 3, 1, 3], (1, 1), 1)


def test_batch_samples_out_of_range_are_refused():
    with pytest.raises(BidlError, match=r"samples must index the 2 recordings \(0..1\)"):
        events_to_frames_batch(
            [0] * 3, [0] * 3, [0, 1, 2], [1] * 3, [0, 1, 3], (1, 1), 1, samples=[0, 2]
        )


def test_batch_per_recording_span_needs_one_value_per_recording():
    with pytest.raises(
        BidlError, match=r"t_start must be a scalar or one value per recording \(2\)"
    ):
        events_to_frames_batch(
            [0] * 3, [0] * 3, [0, 1, 2], [1] * 3, [0, 1, 3], (1, 1), 1, t_start=[0, 0, 0]
        )


# ----------------------------------------------------------------------------- camera


def exact_camera(**kwargs):
    """No per-pixel variation: thresholds exactly C, references exactly the first frame."""
    return EventCamera(threshold=0.2, threshold_sigma=0.0, ref_jitter=0.0, eps=0.1, **kwargs)


def brightness_for_log_step(step, base=0.0, eps=0.1):
    """The intensity whose log is ``step`` above that of ``base``."""
    return (base + eps) * np.exp(step) - eps


def test_static_scene_gives_no_events():
    camera = EventCamera(seed=0)
    frame = np.random.default_rng(0).random((3, 8, 8))
    events = camera.simulate([frame] * 5, [0, 10, 20, 30, 40])
    assert events.num_events == 0


def test_brightening_emits_one_on_event_per_threshold_crossed():
    camera = exact_camera()
    camera.reset(np.zeros((1, 1)), 0)
    events = camera.step(np.full((1, 1), brightness_for_log_step(0.5)), 1000)
    assert events.p.tolist() == [1, 1]  # floor(0.5 / 0.2) crossings, ON


def test_event_times_interpolate_where_the_log_intensity_crosses():
    camera = exact_camera()
    camera.reset(np.zeros((1, 1)), 0)
    events = camera.step(np.full((1, 1), brightness_for_log_step(0.5)), 1000)
    # crossings at 0.2 and 0.4 of a linear 0.5 rise over [0, 1000] us
    assert events.t.tolist() == [400, 800]
    assert events.t.dtype == np.int64


def test_darkening_emits_off_events():
    camera = exact_camera()
    camera.reset(np.ones((1, 2)), 0)
    darker = np.array([[1.0, brightness_for_log_step(-0.45, base=1.0)]])
    events = camera.step(darker, 100)
    assert events.p.tolist() == [0, 0]
    assert events.x.tolist() == [1, 1]


def test_reference_level_carries_over_between_frames():
    camera = exact_camera()
    camera.reset(np.zeros((1, 1)), 0)
    assert camera.step(np.full((1, 1), brightness_for_log_step(0.5)), 100).num_events == 2
    # the reference is now 0.4 above the start: 0.65 crosses only 0.6
    assert camera.step(np.full((1, 1), brightness_for_log_step(0.65)), 200).num_events == 1


def test_events_come_back_sorted_by_recording_then_time():
    rng = np.random.default_rng(1)
    frames = [rng.random((4, 6, 6)) for _ in range(6)]
    events = EventCamera(seed=2).simulate(frames, np.arange(6) * 1000)
    key = events.index.astype(np.int64) * 10**9 + events.t
    assert events.num_events > 0
    assert np.all(np.diff(key) >= 0)


def test_simulation_is_deterministic_for_a_seed():
    rng = np.random.default_rng(1)
    frames = [rng.random((2, 6, 6)) for _ in range(5)]
    times = np.arange(5) * 1000
    a = EventCamera(seed=7).simulate(frames, times)
    b = EventCamera(seed=7).simulate(frames, times)
    c = EventCamera(seed=8).simulate(frames, times)
    for field in a._fields:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.t, c.t) or not np.array_equal(a.x, c.x)


def test_step_before_reset_is_refused():
    with pytest.raises(BidlError, match=r"call reset\(first_frame, t_us\) first"):
        EventCamera().step(np.zeros((2, 2)), 10)


def test_step_with_another_frame_shape_is_refused():
    camera = EventCamera()
    camera.reset(np.zeros((2, 2)), 0)
    with pytest.raises(
        BidlError, match=r"frame shape \(3, 3\) differs from the first frame's \(2, 2\)"
    ):
        camera.step(np.zeros((3, 3)), 10)
