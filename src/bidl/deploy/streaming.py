"""Live inference on an event stream: an ``EventSource`` (a recording replayed, or a camera)
feeds a ``SlidingWindowIntegrator`` that turns its events into one frame per time step, and
each frame goes through ``Runtime.step``; every ``timesteps`` steps the running aggregate is
a prediction over that window, and the stream starts again from the initial states.
A detector's stream (``detect_stream``) also runs its head graph on the running aggregate
(after every step, or every N steps) and gives the boxes of the latest step.

A camera SDK plugs in as an ``EventSource``: a class whose ``__iter__`` yields blocks of
events in time order (structured arrays with x, y, t in microseconds and p, as
``bidl.datasets.events.EVENT_DTYPE``) and whose ``sensor_size`` is ``(H, W)``;
``IterableSource`` wraps any iterable of such arrays (e.g. Metavision's ``EventsIterator``
or dv-processing's event batches, converted field by field).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.events.formats import iter_event_file, sensor_size_of
from ..datasets.events.integration import EventIntegration
from ..datasets.events.records import EVENT_DTYPE, concatenate, make_events
from ..registry import BidlError


class EventSource:
    """Blocks of events in time order; ``sensor_size`` is ``(H, W)``. Subclass it (define
    ``__iter__``) to plug in a camera."""

    sensor_size: tuple[int, int]

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError


class IterableSource(EventSource):
    """Any iterable of event arrays (fields x, y, t, p; any integer types) as a source."""

    def __init__(self, blocks: Iterable, sensor_size):
        self.blocks = blocks
        self.sensor_size = _pair(sensor_size, "IterableSource")

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.blocks:
            if block.dtype != EVENT_DTYPE:
                block = make_events(block["x"], block["y"], block["t"], block["p"])
            yield block


class RecordingSource(EventSource):
    """A recording replayed in blocks of ``block_us``: at its recorded pace times ``speed``
    (1.0 = real time: a block is released when the wall clock reaches its end), or as fast
    as it can be read (``speed=None``). ``sensor_size`` defaults to the file header's."""

    def __init__(
        self,
        path: str | Path,
        speed: float | None = 1.0,
        block_us: float = 1000.0,
        sensor_size=None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.path = Path(path)
        if speed is not None and not speed > 0:
            raise BidlError(f"RecordingSource: speed must be > 0 or None, got {speed!r}")
        self.speed, self.block_us = speed, float(block_us)
        size = sensor_size or sensor_size_of(self.path)
        if size is None:
            raise BidlError(
                f"{self.path}: the file does not state its sensor size; give sensor_size (H, W)"
            )
        self.sensor_size = _pair(size, "RecordingSource")
        self.clock, self.sleep = clock, sleep

    def __iter__(self) -> Iterator[np.ndarray]:
        start_wall = t0 = None
        for k, block in enumerate(iter_event_file(self.path, chunk_us=self.block_us)):
            if t0 is None:
                t0, start_wall = float(block["t"][0]), self.clock()
            if self.speed is not None:
                due = start_wall + (k + 1) * self.block_us / 1e6 / self.speed
                wait = due - self.clock()
                if wait > 0:
                    self.sleep(wait)
            yield block


def _pair(size, where: str) -> tuple[int, int]:
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise BidlError(f"{where}: sensor_size must be (H, W), got {size!r}") from None
    if height < 1 or width < 1:
        raise BidlError(f"{where}: sensor_size must be positive, got {(height, width)}")
    return height, width


class SlidingWindowIntegrator:
    """Events in, one frame ``[C, h, w]`` (uint8 counts) per ``step_us`` out: frame ``k``
    counts the events in ``[t0 + (k + 1) * step_us - window_us, t0 + (k + 1) * step_us)``
    (``window_us`` defaults to ``step_us``: adjacent frames; longer windows overlap), with
    ``t0`` the first event's time unless given. Frames are made by ``EventIntegration``
    (same channels, downsampling and clipping as the datasets' frames)."""

    def __init__(
        self,
        sensor_size,
        step_us: float,
        window_us: float | None = None,
        polarity: bool = True,
        size=None,
        binary: bool = False,
        t0: float | None = None,
    ):
        if not step_us > 0:
            raise BidlError(f"SlidingWindowIntegrator: step_us must be > 0, got {step_us!r}")
        window_us = step_us if window_us is None else window_us
        if not window_us >= step_us:
            raise BidlError(
                f"SlidingWindowIntegrator: window_us ({window_us}) must be >= step_us ({step_us})"
            )
        self.sensor_size = _pair(sensor_size, "SlidingWindowIntegrator")
        self.step_us, self.window_us = float(step_us), float(window_us)
        self.frame = EventIntegration(
            1, "time", self.window_us, polarity, size, None, binary, "SlidingWindowIntegrator"
        )
        self.t0 = t0
        self.steps = 0
        self._held = np.zeros(0, dtype=EVENT_DTYPE)

    def _end(self, step: int) -> float:
        return self.t0 + (step + 1) * self.step_us

    def _frame(self) -> np.ndarray:
        end = self._end(self.steps)
        start = end - self.window_us
        held = self._held
        inside = held[(held["t"] >= start) & (held["t"] < end)]
        frame = self.frame.single_frame(inside, self.sensor_size)[0]
        self._held = held[held["t"] >= start + self.step_us]  # what later windows still need
        self.steps += 1
        return frame

    def push(self, events: np.ndarray) -> Iterator[tuple[float, np.ndarray]]:
        """Take a block of events; yield ``(window end in us, frame)`` for every step that
        the events seen so far complete."""
        if not events.size:
            return
        if self.t0 is None:
            self.t0 = float(events["t"][0])
        self._held = concatenate([self._held, events])
        latest = float(events["t"].max())
        while self._end(self.steps) <= latest:
            end = self._end(self.steps)
            yield end, self._frame()

    def flush(self) -> Iterator[tuple[float, np.ndarray]]:
        """The last, partly filled step (if any events wait for it)."""
        if (
            self.t0 is not None
            and self._held.size
            and self._held["t"].max() >= self._end(self.steps - 1)
        ):
            end = self._end(self.steps)
            yield end, self._frame()


@dataclass
class StepResult:
    """One time step of a stream."""

    step: int  # counted from the start of the stream
    t_end_us: float  # the end of the step's window, in the recording's clock
    scores: np.ndarray  # running aggregate of the window so far
    window: int  # index of the window of ``timesteps`` steps this step belongs to
    window_done: bool  # the last step of its window: ``scores`` is its prediction
    latency_s: float  # seconds spent on this step: integration, upload, step, fetch


def stream(
    runtime, source: EventSource, integrator: SlidingWindowIntegrator, timesteps: int | None = None
) -> Iterator[StepResult]:
    """Run ``source`` through ``runtime`` one step at a time; every ``timesteps`` steps
    (default the artifact's) a window ends and the runtime is reset."""
    timesteps = int(timesteps or runtime.timesteps)
    runtime.reset()
    clock = time.perf_counter
    step = 0

    def run(pairs) -> Iterator[StepResult]:
        nonlocal step
        begin = clock()
        for end, frame in pairs:
            scores = runtime.step(frame[None])[0]
            latency = clock() - begin
            done = (step + 1) % timesteps == 0
            yield StepResult(step, end, scores, step // timesteps, done, latency)
            step += 1
            if done:
                runtime.reset()
            begin = clock()

    for block in source:
        yield from run(integrator.push(block))
    yield from run(integrator.flush())


@dataclass
class DetectionStep:
    """One time step of a detector's stream: ``detections`` are the boxes of the running
    aggregate after this step (None where the head did not run)."""

    result: StepResult
    detections: dict | None  # bboxes [K, 4] x1, y1, x2, y2; scores [K]; labels [K]
    head_latency_s: float | None


def detect_stream(
    runtime,
    head,
    source: EventSource,
    integrator: SlidingWindowIntegrator,
    every: int = 1,
    timesteps: int | None = None,
) -> Iterator[DetectionStep]:
    """``stream`` with a detector's head graph (``head_graph.HeadGraph``) run on the running
    aggregate of the features after every ``every``-th step of a window and after its last
    step (the window's boxes)."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise BidlError(f"the head runs every N steps with N a positive integer, got {every!r}")
    timesteps = int(timesteps or runtime.timesteps)
    clock = time.perf_counter
    for result in stream(runtime, source, integrator, timesteps):
        detections = head_s = None
        if result.window_done or (result.step % timesteps + 1) % every == 0:
            begin = clock()
            detections = head.detect(result.scores[None])[0]
            head_s = clock() - begin
        yield DetectionStep(result, detections, head_s)


def latency_summary(latencies_s) -> dict[str, float]:
    """p50, p99 and max of per-step latencies, in milliseconds."""
    ms = np.asarray(latencies_s, dtype=np.float64) * 1000.0
    if not ms.size:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }
