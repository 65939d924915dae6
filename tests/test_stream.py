"""Streaming: a recording replayed step by step through the Runtime gives, at the end of
every window, the prediction ``bidl infer``'s path (``Runtime.infer``) gives for the same
window integrated as a dataset sample; real-time replay keeps the recorded pace."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from deploy_helpers import tiny_config_checkpoint
from format_writers import write_dat

pytest.importorskip("onnxruntime")

from bidl.cli import main  # noqa: E402
from bidl.datasets.events import EventIntegration  # noqa: E402
from bidl.datasets.events.formats import read_event_file  # noqa: E402
from bidl.datasets.events.records import make_events  # noqa: E402
from bidl.deploy import Runtime, compile_config  # noqa: E402
from bidl.deploy.streaming import (  # noqa: E402
    IterableSource,
    RecordingSource,
    SlidingWindowIntegrator,
    stream,
)
from bidl.registry import BidlError  # noqa: E402

SENSOR = (32, 32)
T0 = 5_000_000
STEP_US, TIMESTEPS, WINDOWS = 1000, 4, 10


def blink_recording(path, seed=0):
    """40 ms of events on a 32x32 sensor: each 4 ms window lights one quadrant (or the
    centre) over sparse noise; an event at the very start fixes the time origin."""
    rng = np.random.default_rng(seed)
    cols = {k: [] for k in "xytp"}
    corners = [(0, 0), (0, 16), (16, 0), (16, 16), (8, 8)]
    for window in range(WINDOWS):
        top, left = corners[rng.integers(0, 5)]
        n = 400
        lit = rng.random(n) < 0.7
        cols["x"] += np.where(lit, left + rng.integers(0, 16, n), rng.integers(0, 32, n)).tolist()
        cols["y"] += np.where(lit, top + rng.integers(0, 16, n), rng.integers(0, 32, n)).tolist()
        start = T0 + window * TIMESTEPS * STEP_US
        cols["t"] += rng.integers(start, start + TIMESTEPS * STEP_US, n).tolist()
        cols["p"] += rng.integers(0, 2, n).tolist()
    events = {k: np.array(v, dtype=np.int64) for k, v in cols.items()}
    order = np.argsort(events["t"], kind="stable")
    events = {k: v[order] for k, v in events.items()}
    events["t"][0] = T0
    write_dat(path, events, size=SENSOR)
    return path


def window_samples(path, size) -> np.ndarray:
    """The recording cut into its windows, each integrated as a dataset sample
    ``[T, 2, h, w]`` (``EventIntegration`` with ``window_us`` frames from the window start)."""
    events = read_event_file(path)
    integrate = EventIntegration(TIMESTEPS, "time", STEP_US, True, size)
    samples = []
    for window in range(WINDOWS):
        start = T0 + window * TIMESTEPS * STEP_US
        inside = events[(events["t"] >= start) & (events["t"] < start + TIMESTEPS * STEP_US)]
        samples.append(integrate(inside, SENSOR, t_start=start))
    return np.stack(samples)


def infer_predictions(artifact, samples) -> tuple[np.ndarray, np.ndarray]:
    """What `bidl infer` computes over a loader of these samples: scores, predictions."""
    loader = [
        torch.from_numpy(samples[i : i + 2].astype(np.float32)) for i in range(0, len(samples), 2)
    ]
    with Runtime(artifact) as runtime:
        result = runtime.infer(loader, progress=False)
    return result.scores, result.predictions


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return blink_recording(tmp_path_factory.mktemp("rec") / "blinks_td.dat")


@pytest.fixture(scope="module")
def compiled_tiny_config(tmp_path_factory):
    config, work_dir = tiny_config_checkpoint()  # TinyBlinks: 4 steps of [2, 16, 16]
    folder = tmp_path_factory.mktemp("art") / "tiny"
    compile_config(config, work_dir / "latest.pth", folder, batch_size=2)
    return config, folder


@pytest.fixture(scope="module")
def artifact(compiled_tiny_config):
    return compiled_tiny_config[1]


def window_ends(results):
    return [r for r in results if r.window_done]


def test_replayed_stream_predicts_what_infer_predicts_on_the_same_windows(recording, artifact):
    scores, predictions = infer_predictions(artifact, window_samples(recording, (16, 16)))
    with Runtime(artifact) as runtime:
        source = RecordingSource(recording, speed=None, block_us=STEP_US)
        integrator = SlidingWindowIntegrator(source.sensor_size, STEP_US, size=(16, 16))
        results = list(stream(runtime, source, integrator))
    ends = window_ends(results)
    assert len(results) == WINDOWS * TIMESTEPS and len(ends) == WINDOWS
    got = np.stack([r.scores for r in ends])
    np.testing.assert_allclose(got, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.argmax(axis=1), predictions)
    assert np.ptp(got, axis=0).max() > 1e-3  # the windows score differently: the check has teeth
    assert all(r.latency_s > 0 for r in results)


def test_a_camera_plugs_in_as_an_iterable_of_event_buffers(recording, artifact):
    """Any iterable of arrays with x, y, t, p (here a camera SDK's own dtype) streams alike."""
    events = read_event_file(recording)
    camera_dtype = np.dtype([("x", "<u2"), ("y", "<u2"), ("p", "<i2"), ("t", "<i8")])
    buffers = []
    for part in np.array_split(events, 37):
        buffer = np.empty(len(part), camera_dtype)
        for name in "xytp":
            buffer[name] = part[name]
        buffers.append(buffer)
    with Runtime(artifact) as runtime:
        replayed = window_ends(
            stream(
                runtime,
                RecordingSource(recording, speed=None),
                SlidingWindowIntegrator(SENSOR, STEP_US, size=(16, 16)),
            )
        )
        live = window_ends(
            stream(
                runtime,
                IterableSource(buffers, SENSOR),
                SlidingWindowIntegrator(SENSOR, STEP_US, size=(16, 16)),
            )
        )
    np.testing.assert_allclose(
        np.stack([r.scores for r in live]), np.stack([r.scores for r in replayed]), rtol=1e-6
    )


def test_real_time_replay_keeps_the_recorded_pace(recording):
    source = RecordingSource(recording, speed=1.0, block_us=STEP_US)
    start = time.perf_counter()
    count = sum(len(block) for block in source)
    elapsed = time.perf_counter() - start
    assert count == len(read_event_file(recording))
    assert elapsed >= WINDOWS * TIMESTEPS * STEP_US / 1e6 * 0.95


def test_overlapping_windows_count_the_last_window_us(recording):
    events = read_event_file(recording)
    integrator = SlidingWindowIntegrator(SENSOR, 1000, window_us=3000)
    frames = [f for block in RecordingSource(recording, speed=None) for f in integrator.push(block)]
    end, frame = frames[5]
    assert end == T0 + 6000
    inside = events[(events["t"] >= end - 3000) & (events["t"] < end)]
    assert frame.sum() == len(inside)
    expected = EventIntegration(1, "time", 3000)(inside, SENSOR, t_start=end - 3000)[0]
    np.testing.assert_array_equal(frame, expected)


def test_window_shorter_than_the_step_is_refused():
    with pytest.raises(BidlError, match=r"window_us \(500\) must be >= step_us \(1000\)"):
        SlidingWindowIntegrator(SENSOR, 1000, window_us=500)


def test_bidl_stream_prints_window_predictions_and_latency(
    compiled_tiny_config, recording, tmp_path, capsys
):
    config, artifact = compiled_tiny_config
    out = tmp_path / "stream.json"
    argv = ["stream", str(config), "--artifact", str(artifact), "--source", str(recording)]
    assert main([*argv, "--frame-us", str(STEP_US), "--speed", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "source: " in printed and "(32x32 sensor), frames of 1 ms" in printed
    assert "window 0 [0.000, 0.004) s: prediction " in printed
    assert "per-step latency p50 " in printed and " p99 " in printed
    figures = json.loads(out.read_text())
    _, predictions = infer_predictions(artifact, window_samples(recording, (16, 16)))
    assert [w["prediction"] for w in figures["windows"]] == predictions.tolist()
    assert figures["steps"] == WINDOWS * TIMESTEPS


def test_bidl_stream_needs_a_sensor_size_when_nothing_states_it(
    compiled_tiny_config, tmp_path, capsys
):
    config, artifact = compiled_tiny_config
    np.savez(tmp_path / "rec.npz", x=[1], y=[1], t=[0], p=[1])
    argv = [
        "stream",
        str(config),
        "--artifact",
        str(artifact),
        "--source",
        str(tmp_path / "rec.npz"),
    ]
    assert main(argv) == 1
    assert "neither the file nor the test set states the sensor size; pass --sensor H W" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "options",
    [
        dict(polarity=True, size=None, binary=False),
        dict(polarity=False, size=(16, 16), binary=False),
        dict(polarity=True, size=(8, 12), binary=True),
    ],
)
def test_a_streamed_frame_equals_the_datasets_integration(options):
    rng = np.random.default_rng(4)
    n = 5000
    events = make_events(
        rng.integers(0, 32, n), rng.integers(0, 24, n), np.sort(rng.integers(0, 999, n)),
        rng.integers(0, 2, n),
    )  # fmt: skip
    integration = EventIntegration(1, "time", 1000.0, options["polarity"], options["size"],
                                   None, options["binary"])  # fmt: skip
    expected = integration(events, (24, 32), t_start=0)
    fast = integration.single_frame(events, (24, 32))
    assert fast.dtype == expected.dtype == np.uint8
    np.testing.assert_array_equal(fast, expected)


def test_a_streamed_frame_with_an_event_outside_the_sensor_is_one_error():
    events = make_events(np.array([3, 40]), np.array([1, 2]), np.array([0, 5]), np.array([1, 0]))
    integration = EventIntegration(1, "time", 1000.0, True, None, None, False)
    with pytest.raises(BidlError, match=r"1 event\(s\) have x outside the sensor"):
        integration.single_frame(events, (24, 32))
