"""Spatiotemporal pipeline inference over a grid of devices, one process per device.

The grid ``[[0, 1], [2, 3]]`` has one row per *time slice* and one column per *model
segment*. The process at row k, column j runs segment j for timesteps
``[k*T//K, (k+1)*T//K)`` of every batch:

- it takes each step's input from the data (column 0) or from process (k, j-1), which sends
  its segment's activation of that step;
- it starts a batch from the initial states (row 0) or from the states process (k-1, j)
  hands on after its own slice of the same batch;
- the process at the last row and column holds the aggregated output of the whole sequence.

Every process works through the batches in order and sends without waiting for the
receiver (at most ``window`` messages unacknowledged, the receiver's readiness), so while
slice k+1 works on batch n, slice k is already on batch n+1: many batches are in flight and
frame rate grows with the number of devices. Messages travel over torch.distributed point-
to-point operations (gloo between CPU processes, NCCL between GPUs).

Keeping every device busy: the processes of column 0 read, pad and upload the next batches
in a thread (``prefetch.py``), so the first slice launches its steps without waiting for
data; a later column posts the receive of its next step's activation before computing the
current step, so the hand-off overlaps the compute.
"""

from __future__ import annotations

import ast
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..config import load_config
from ..datasets.base import topk_accuracy
from ..engine.apis import build_datasets
from ..engine.dataloader import build_dataloader
from ..registry import BidlError
from .engines import NUMPY_DTYPES, open_engine
from .prefetch import Prefetcher

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "uint8": torch.uint8}


# --- the grid -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceGrid:
    """Device ids, one row per time slice and one column per model segment."""

    rows: tuple[tuple[int, ...], ...]

    @classmethod
    def parse(cls, value, where: str = "devices") -> DeviceGrid:
        """``[[0, 1], [2, 3]]`` (or its text, as given on a command line)."""
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise BidlError(
                    f"{where}={value!r} is not a list of lists; write e.g. [[0, 1], [2, 3]]"
                ) from None
        usage = (
            f"{where} must be a list of rows, one per time slice, each listing one device per "
            f"model segment, e.g. [[0, 1], [2, 3]]; got {value!r}"
        )
        if not isinstance(value, (list, tuple)) or not value:
            raise BidlError(usage)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise BidlError(
                usage + f". For {len(value)} time slices write {[[v] for v in value]}; for "
                f"{len(value)} model segments write {[list(value)]}"
            )
        rows = []
        for row in value:
            if not isinstance(row, (list, tuple)) or not row:
                raise BidlError(usage)
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row):
                raise BidlError(usage + " (device ids are integers >= 0)")
            rows.append(tuple(row))
        if len({len(row) for row in rows}) != 1:
            raise BidlError(f"{where}: every row needs the same number of devices; got {value!r}")
        flat = [v for row in rows for v in row]
        if len(set(flat)) != len(flat):
            raise BidlError(f"{where}: device ids repeat in {value!r}; each device runs once")
        return cls(tuple(rows))

    @property
    def time_slices(self) -> int:
        return len(self.rows)

    @property
    def segments(self) -> int:
        return len(self.rows[0])

    @property
    def size(self) -> int:
        return self.time_slices * self.segments

    def position(self, rank: int) -> tuple[int, int]:
        return divmod(rank, self.segments)

    def rank(self, row: int, column: int) -> int:
        return row * self.segments + column

    def device_id(self, rank: int) -> int:
        row, column = self.position(rank)
        return self.rows[row][column]

    def __str__(self) -> str:
        return str([list(row) for row in self.rows])


def slice_bounds(timesteps: int, slices: int) -> list[tuple[int, int]]:
    """``[start, end)`` timesteps of each time slice (sizes differ by at most one)."""
    if slices > timesteps:
        raise BidlError(
            f"the grid has {slices} time slices (rows) but the model runs {timesteps} "
            f"timesteps; use at most {timesteps} rows"
        )
    return [(k * timesteps // slices, (k + 1) * timesteps // slices) for k in range(slices)]


# --- where the data comes from ------------------------------------------------------------


@dataclass(frozen=True)
class ArrayInput:
    """Samples ``[N, T, ...]`` in a ``.npy`` file, read memory-mapped batch by batch."""

    path: str

    def open(self):
        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def count(self) -> int:
        return int(self.open().shape[0])

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        array = self.open()
        for start in range(0, array.shape[0], batch_size):
            yield np.asarray(array[start : start + batch_size])

    def labels(self) -> np.ndarray | None:
        return None


@dataclass(frozen=True)
class DatasetInput:
    """A config's data split, built in each process that feeds the first segment."""

    config: str
    cfg_options: dict | None = None
    split: str = "test"

    def _dataset(self):
        cfg = load_config(self.config, self.cfg_options)
        if not cfg.data.get(self.split):
            raise BidlError(f"config {self.config!r} has no data.{self.split}")
        return cfg, build_datasets(cfg, (self.split,))[self.split]

    def count(self) -> int:
        return len(self._dataset()[1])

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        cfg, dataset = self._dataset()
        loader = build_dataloader(dataset, batch_size, int(cfg.data.get("workers_per_gpu", 0)))
        for batch in loader:
            img = batch["img"] if isinstance(batch, dict) else batch[0]
            yield img.numpy() if torch.is_tensor(img) else np.asarray(img)

    def labels(self) -> np.ndarray | None:
        dataset = self._dataset()[1]
        return dataset.get_gt_labels() if hasattr(dataset, "get_gt_labels") else None


# --- one process of the grid --------------------------------------------------------------


@dataclass
class RankReport:
    """What one process did: its place, its busy time, and (last process) the outputs."""

    rank: int
    row: int
    column: int
    device: str
    steps: int  # timesteps of this process's time slice
    timesteps: int
    batch_size: int
    timed_batches: int
    busy_s: float = 0.0
    seconds: float = 0.0
    begins: list[float] = field(default_factory=list)  # (0, 0): when each batch started
    ends: list[float] = field(default_factory=list)  # last process: when each batch ended
    outputs: np.ndarray | None = None

    @property
    def utilisation(self) -> float:
        return self.busy_s / self.seconds if self.seconds > 0 else 0.0


class _Sender:
    """Sends without waiting, keeping at most ``window`` messages unacknowledged."""

    def __init__(self, window: int):
        self.window = max(1, window)
        self.pending: deque = deque()

    def send(self, tensor: torch.Tensor, dst: int) -> None:
        tensor = tensor.contiguous()
        self.pending.append((dist.isend(tensor, dst), tensor))
        while len(self.pending) > self.window:
            self.pending.popleft()[0].wait()

    def flush(self) -> None:
        while self.pending:
            self.pending.popleft()[0].wait()


def _state_groups(manifest: dict) -> list[tuple[str, list[int]]]:
    """States packed into one flat message per dtype: (dtype, indices of its states)."""
    groups: dict[str, list[int]] = {}
    for index, spec in enumerate(manifest["states"]):
        groups.setdefault(spec["dtype"], []).append(index)
    return list(groups.items())


class _BusyClock:
    """Seconds a device spent computing: wall time on CPU, CUDA events on a GPU (so that
    measuring does not make the host wait for the device)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.cpu_s = 0.0
        self.events: list = []

    def start(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def stop(self, started) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.events.append((started, event))
        else:
            self.cpu_s += time.perf_counter() - started

    def seconds(self) -> float:
        if not self.cuda:
            return self.cpu_s
        torch.cuda.synchronize()
        return sum(a.elapsed_time(b) for a, b in self.events) / 1000.0


class GridProcess:
    """The work of process ``rank`` of a grid over the segment artifacts ``folders``."""

    def __init__(
        self,
        rank: int,
        grid: DeviceGrid,
        folders: list[Path],
        device: torch.device,
        comm_device: torch.device,
        threads: int | None = None,
        window: int = 64,
    ):
        if len(folders) != grid.segments:
            raise BidlError(
                f"the grid {grid} has {grid.segments} model segment(s) (columns) but the "
                f"artifact holds {len(folders)}; compile with as many segments as columns "
                f"(bidl compile --segments, model_0 .. model_{grid.segments - 1})"
            )
        self.rank, self.grid = rank, grid
        self.row, self.column = grid.position(rank)
        self.device, self.comm_device = device, comm_device
        self.engine, self.manifest = open_engine(Path(folders[self.column]), device, threads)
        self.batch_size = int(self.manifest["batch_size"])
        self.timesteps = int(self.manifest["timesteps"])
        self.first, self.last = slice_bounds(self.timesteps, grid.time_slices)[self.row]
        self.groups = _state_groups(self.manifest)
        self.sender = _Sender(window)
        self.clock = _BusyClock(device)
        self.outputs: list[np.ndarray] = []
        self.begins: list[float] = []
        self.ends: list[float] = []
        self._posted: list | None = None  # receives of the next batch's states
        self._copying: deque = deque()  # outputs on their way to the host

    @property
    def is_output(self) -> bool:
        return self.row == self.grid.time_slices - 1 and self.column == self.grid.segments - 1

    # --- messages -------------------------------------------------------------------

    def _post_states(self) -> list:
        """Post the receives of the next batch's states (one flat message per dtype)."""
        src = self.grid.rank(self.row - 1, self.column)
        specs = self.manifest["states"]
        posted = []
        for dtype, indices in self.groups:
            size = sum(int(np.prod(specs[i]["shape"])) for i in indices)
            buffer = torch.empty((size,), dtype=TORCH_DTYPES[dtype], device=self.comm_device)
            posted.append((buffer, dist.irecv(buffer, src)))
        return posted

    def _receive_states(self, more: bool) -> list:
        """The batch's initial states: from the manifest (row 0) or from the previous
        slice. The receives of the next batch's states are posted before this batch
        runs (``more``: there is one), so that hand-off overlaps this batch's steps."""
        if self.row == 0:
            return self.engine.initial_states()
        posted = self._posted or self._post_states()
        self._posted = self._post_states() if more else None
        specs = self.manifest["states"]
        states: list = [None] * len(specs)
        for (_, indices), (flat, request) in zip(self.groups, posted, strict=True):
            request.wait()
            sizes = [int(np.prod(specs[i]["shape"])) for i in indices]
            for i, part in zip(indices, flat.split(sizes), strict=True):
                states[i] = self.engine.from_torch(part.view(specs[i]["shape"]))
        return states

    def _send_states(self, states: list) -> None:
        if self.row == self.grid.time_slices - 1:
            return
        dst = self.grid.rank(self.row + 1, self.column)
        for _, indices in self.groups:
            parts = [self.engine.to_torch(states[i]).reshape(-1) for i in indices]
            self.sender.send(torch.cat(parts).to(self.comm_device), dst)

    def _step_inputs(self, steps: list | None) -> Iterator:
        if self.column == 0:
            yield from steps
            return
        src = self.grid.rank(self.row, self.column - 1)
        spec = self.manifest["input"]

        def post():
            buffer = torch.empty(
                spec["shape"], dtype=TORCH_DTYPES[spec["dtype"]], device=self.comm_device
            )
            return buffer, dist.irecv(buffer, src)

        pending = post()
        for step in range(self.first, self.last):
            buffer, request = pending
            if step + 1 < self.last:  # the next activation arrives while this step runs
                pending = post()
            request.wait()
            yield self.engine.from_torch(buffer)

    # --- batches --------------------------------------------------------------------

    def prepare(self, batch: np.ndarray) -> list:
        """Column 0: a batch of data padded, cut to this slice's steps and uploaded."""
        window = np.ascontiguousarray(self.pad(batch)[:, self.first : self.last])
        return self.engine.upload(window)

    def run_batch(self, steps: list | None, more: bool = False) -> None:
        """This process's share of one batch (``steps``: its uploaded input steps, for
        column 0; see ``prepare``; ``more``: another batch follows this one)."""
        if self.rank == 0:
            self.begins.append(time.perf_counter())
        states = self._receive_states(more)
        y_t = None
        for x_t in self._step_inputs(steps):
            started = self.clock.start()
            y_t, states = self.engine.step(x_t, states)
            self.clock.stop(started)
            if self.column < self.grid.segments - 1:
                dst = self.grid.rank(self.row, self.column + 1)
                # a copy: a CUDA-graph engine writes its next output into the same tensor
                activation = self.engine.to_torch(y_t).to(self.comm_device, copy=True)
                self.sender.send(activation, dst)
        self._send_states(states)
        if self.is_output:
            self._collect(y_t)

    def _collect(self, y_t) -> None:
        """Keep the batch's output. On a GPU it is copied to pinned host memory without
        waiting; the host waits for it only after the next batch is queued (or at
        ``flush``), so the device never idles while the host reads an output. A batch's
        end time is when the host has its output."""
        tensor = self.engine.to_torch(y_t) if self.device.type == "cuda" else None
        if tensor is None or not tensor.is_cuda:
            self.outputs.append(self.engine.fetch(y_t))
            self.ends.append(time.perf_counter())
            return
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        self._resolve_outputs()
        self._copying.append((host, done))

    def _resolve_outputs(self) -> None:
        while self._copying:
            host, done = self._copying.popleft()
            done.synchronize()
            self.outputs.append(host.numpy())
            self.ends.append(time.perf_counter())

    def pad(self, batch: np.ndarray) -> np.ndarray:
        dtype = np.dtype(NUMPY_DTYPES[self.manifest["input"]["dtype"]])
        batch = np.asarray(batch).astype(dtype, copy=False)
        expected = tuple(self.manifest["input"]["shape"][1:])
        if batch.ndim != 2 + len(expected) or tuple(batch.shape[2:]) != expected:
            raise BidlError(
                f"grid input: the artifact takes [N, T, {', '.join(map(str, expected))}] "
                f"samples, got a batch of shape {list(batch.shape)}"
            )
        if batch.shape[1] != self.timesteps:
            raise BidlError(
                f"grid input: samples have {batch.shape[1]} timesteps; the artifact was "
                f"compiled for {self.timesteps} (the grid slices time by that count)"
            )
        missing = self.batch_size - batch.shape[0]
        if missing:
            batch = np.concatenate([batch, np.zeros((missing, *batch.shape[1:]), dtype)])
        return batch

    def flush(self) -> None:
        self.sender.flush()
        self._resolve_outputs()

    def report(self, seconds: float, count: int, timed_batches: int) -> RankReport:
        outputs = None
        if self.is_output and self.outputs:
            outputs = np.concatenate(self.outputs)[:count]
        return RankReport(
            rank=self.rank,
            row=self.row,
            column=self.column,
            device=str(self.device),
            steps=self.last - self.first,
            timesteps=self.timesteps,
            batch_size=self.batch_size,
            timed_batches=timed_batches,
            busy_s=self.clock.seconds(),
            seconds=seconds,
            begins=self.begins,
            ends=self.ends,
            outputs=outputs,
        )


def run_grid_process(
    rank: int,
    grid: DeviceGrid,
    folders: list[Path],
    source,
    device: torch.device,
    comm_device: torch.device,
    threads: int | None = None,
    warmup_batches: int = 0,
    object_group=None,
) -> list[RankReport] | None:
    """Run process ``rank``'s share of all of ``source``'s batches; the reports of every
    process come back on rank 0 (None elsewhere). The process group must be initialised.

    The first ``warmup_batches`` batches run before the clock starts (their outputs are
    kept), so that one-off costs (connections, kernel caches) stay out of the figures.
    """
    work = GridProcess(rank, grid, folders, device, comm_device, threads)
    counted = [source.count() if rank == 0 else None]
    dist.broadcast_object_list(counted, src=0, group=object_group)
    count = int(counted[0])
    if count < 1:
        raise BidlError("grid input: no samples")
    batches = -(-count // work.batch_size)
    feed = None
    if work.column == 0:
        feed = Prefetcher(source.batches(work.batch_size), work.prepare, device)
    warmup = min(max(0, warmup_batches), batches - 1)

    done = 0

    def run() -> None:
        nonlocal done
        steps = feed.next() if feed is not None else None
        if feed is not None and steps is None:
            raise BidlError(f"grid input: fewer batches than the {count} samples announced")
        done += 1
        work.run_batch(steps, more=done < batches)

    for _ in range(warmup):
        run()
    work.flush()
    dist.barrier(group=object_group)
    # the figures are of the timed batches only (the warm-up outputs are kept)
    work.begins, work.ends, work.clock = [], [], _BusyClock(device)
    start = time.perf_counter()
    for _ in range(warmup, batches):
        run()
    work.flush()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dist.barrier(group=object_group)
    seconds = time.perf_counter() - start
    report = work.report(seconds, count, batches - warmup)
    gathered = [None] * grid.size if rank == 0 else None
    dist.gather_object(report, gathered, dst=0, group=object_group)
    return gathered if rank == 0 else None


# --- the result ---------------------------------------------------------------------------


@dataclass
class GridResult:
    """Outputs in sample order and the figures of one grid run."""

    grid: DeviceGrid
    outputs: np.ndarray
    reports: list[RankReport]
    samples: int
    timed_samples: int
    seconds: float
    timesteps: int
    batch_size: int
    labels: np.ndarray | None = None
    accuracy: dict[str, float] = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        return self.timed_samples / self.seconds if self.seconds > 0 else 0.0

    @property
    def frames_per_s(self) -> float:
        return self.samples_per_s * self.timesteps

    @property
    def latency_ms(self) -> dict[str, float]:
        """Per batch: from the first device starting it to the last device's output (one
        host's monotonic clock)."""
        begins = self.reports[0].begins
        ends = self.reports[-1].ends
        pairs = min(len(begins), len(ends))
        if not pairs:
            return {"p50": 0.0, "p99": 0.0}
        delays = (np.array(ends[-pairs:]) - np.array(begins[-pairs:])) * 1000.0
        return {"p50": float(np.percentile(delays, 50)), "p99": float(np.percentile(delays, 99))}

    def summary(self) -> str:
        lines = [
            f"grid {self.grid}: {self.grid.time_slices} time slice(s) x "
            f"{self.grid.segments} model segment(s), batch {self.batch_size}, "
            f"T={self.timesteps}",
            f"{'rank':>4} {'device':<8} {'slice':>5} {'segment':>7} {'steps':>5} "
            f"{'busy s':>8} {'utilisation':>11}",
        ]
        for r in self.reports:
            lines.append(
                f"{r.rank:>4} {r.device:<8} {r.row:>5} {r.column:>7} {r.steps:>5} "
                f"{r.busy_s:>8.3f} {100 * r.utilisation:>10.1f}%"
            )
        latency = self.latency_ms
        lines += [f"samples: {self.samples}"]
        lines += [f"{k}: {v:.2f} %" for k, v in self.accuracy.items()]
        lines += [
            f"samples/s: {self.samples_per_s:.1f}",
            f"frames/s: {self.frames_per_s:.1f}",
            f"latency per batch: p50 {latency['p50']:.3f} ms, p99 {latency['p99']:.3f} ms",
        ]
        return "\n".join(lines)


def grid_result(grid: DeviceGrid, reports: list[RankReport], count: int, labels=None) -> GridResult:
    """The run's outputs and figures from every process's report (rank order)."""

    last, first = reports[-1], reports[0]
    timed = min(count, first.timed_batches * first.batch_size)
    result = GridResult(
        grid=grid,
        outputs=last.outputs,
        reports=reports,
        samples=count,
        timed_samples=timed,
        seconds=max(r.seconds for r in reports),
        timesteps=first.timesteps,
        batch_size=first.batch_size,
        labels=labels,
    )
    if labels is not None and last.outputs is not None:
        scores = torch.from_numpy(last.outputs.reshape(count, -1).astype(np.float32))
        topk = tuple(k for k in (1, 5) if k <= scores.shape[1])
        values = topk_accuracy(scores, torch.as_tensor(labels[:count]), topk)
        result.accuracy = {f"top-{k}": v for k, v in zip(topk, values, strict=True)}
    return result


def default_threads(world: int) -> int:
    """Intra-op threads of one CPU process when ``world`` of them share this machine."""
    return max(1, (os.cpu_count() or 1) // world)
