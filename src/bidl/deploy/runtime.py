"""``Runtime``: run a compiled artifact (BIDL's ``ApuRun``).

It opens the step graph in its engine, keeps the state buffers on the device, starts every
sample from the initial states, runs its T steps and returns the aggregated output. Samples
can go through a bounded queue (``submit``) so that preparing and copying the next sample
overlaps with computing the current one, or be fed one timestep at a time (``step``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..datasets.base import topk_accuracy
from ..neurons.kernels import triton_available
from ..registry import BidlError
from .artifact import (
    artifact_file,
    describe_manifest,
    read_manifest,
    recover_interrupted,
    verify_files,
)
from .engines import ENGINES, NUMPY_DTYPES
from .streaming import latency_summary

_STOP = object()


@dataclass
class InferenceResult:
    """What ``Runtime.infer`` measured over a data set."""

    scores: np.ndarray  # [N, ...] aggregated outputs
    predictions: np.ndarray  # [N] arg-max class
    labels: np.ndarray | None
    accuracy: dict[str, float] = field(default_factory=dict)  # 'top-1' -> percent
    samples: int = 0
    seconds: float = 0.0
    samples_per_s: float = 0.0
    frames_per_s: float = 0.0  # samples * timesteps per second
    latency_ms: dict[str, float] = field(default_factory=dict)  # 'p50', 'p99' per batch

    def summary(self) -> str:
        lines = [f"samples: {self.samples}"]
        lines += [f"{k}: {v:.2f} %" for k, v in self.accuracy.items()]
        lines += [
            f"samples/s: {self.samples_per_s:.1f}",
            f"frames/s: {self.frames_per_s:.1f}",
            f"latency per batch: p50 {self.latency_ms['p50']:.3f} ms, "
            f"p99 {self.latency_ms['p99']:.3f} ms",
        ]
        return "\n".join(lines)


class Runtime:
    """Open the artifact folder ``artifact`` on ``device`` ('cpu' or 'cuda:N'; by default
    the device an AOTInductor package was compiled for, else the CPU).

    - ``run(sample)``: ``[N, T, *input]`` (or one ``[T, *input]``) -> outputs ``[N, ...]``.
    - ``submit(sample, callback)``: the same through a bounded queue and a worker thread;
      returns a ``Future``, and calls ``callback(output)`` when done.
    - ``infer(loader)``: predictions, top-k accuracy, frames/s, latency p50 / p99.
    - ``step(x_t)`` / ``reset()``: streaming, one timestep ``[N, *input]`` at a time,
      returning the running aggregate after each step.

    ``compile`` (the ``torch`` backend on CUDA): compile the graphs with ``torch.compile``
    (fused kernels; tens of seconds to open, Inductor's cache keeps the code for later
    opens); 'auto': on CUDA with Triton; None: as ``BIDL_TORCH_COMPILE`` says (default
    off).
    """

    def __init__(
        self,
        artifact: str | os.PathLike,
        device: str | None = None,
        queue_size: int = 4,
        verbose: bool = False,
        compile: bool | str | None = None,
    ):
        self.folder = Path(artifact)
        recover_interrupted(self.folder)  # a compile killed mid-swap: finish it first
        self.manifest = read_manifest(self.folder)
        verify_files(self.folder, self.manifest)
        device = device or self.manifest.get("device") or "cpu"
        try:
            self.device = torch.device(device)
        except RuntimeError:
            raise BidlError(f"unknown device {device!r}; use 'cpu' or 'cuda:N'") from None
        path = artifact_file(self.folder, self.manifest["graph"])
        options = {}
        if compile == "auto":  # on where it can run: CUDA with Triton
            compile = self.device.type == "cuda" and triton_available()
        if compile is not None and self.manifest["backend"] == "torch":
            options["compile"] = bool(compile)
        self.engine = ENGINES[self.manifest["backend"]](path, self.manifest, self.device, **options)
        self.batch_size = int(self.manifest["batch_size"])
        self.timesteps = int(self.manifest["timesteps"])
        self.step_shape = tuple(self.manifest["input"]["shape"][1:])
        self.input_dtype = self.manifest["input"]["dtype"]
        self._engine_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()  # client threads submitting at once start one
        self._stream_states: list | None = None
        self._stream_rows = 0
        self._step_seconds: deque = deque(maxlen=100_000)  # the latest steps' latencies
        if verbose:
            print(self.describe())

    # --- description ------------------------------------------------------------------

    def describe(self) -> str:
        """Batch size, inputs and outputs with shapes, dtypes and byte lengths, engine."""
        return (
            f"artifact: {self.folder}\nengine: {self.engine.describe()}\n"
            f"{describe_manifest(self.manifest)}"
        )

    # --- inputs -----------------------------------------------------------------------

    def _as_array(self, data, what: str) -> np.ndarray:
        if isinstance(data, torch.Tensor):
            data = data.detach().cpu()
            data = (data.float() if data.dtype == torch.bfloat16 else data).numpy()
        try:
            array = np.asarray(data)
        except (ValueError, TypeError) as err:  # a ragged nest of lists
            raise BidlError(
                f"{what}: the sample is not a rectangular array of numbers ({err}); give an "
                f"array of shape [N, T, ...] or [T, ...]"
            ) from None
        if array.dtype.kind not in "biuf":
            raise BidlError(f"{what}: expected numbers, got an array of dtype {array.dtype}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise BidlError(
                f"{what}: the input has {bad} NaN or infinite value(s); spiking layers would "
                f"read them as silence. Clean the input first."
            )
        dtype = np.dtype(NUMPY_DTYPES[self.input_dtype])
        if dtype.kind in "iu" and array.dtype != dtype and not _fits_integers(array, dtype):
            # integer inputs (raw uint8 frames, token ids) may come as any type that
            # holds the same values; anything else would be silently changed
            limits = np.iinfo(dtype)
            meaning = (
                f"raw uint8 frames (the graph scales them by "
                f"{self.manifest['input'].get('scale', 1.0):g}; compiled with --input-dtype "
                f"uint8). Pass the raw frames, or compile with --input-dtype float32."
                if self.input_dtype == "uint8"
                else "integer token ids."
            )
            raise BidlError(
                f"{what}: got {array.dtype} values that are not integers in "
                f"{limits.min}..{limits.max}; this artifact takes {meaning}"
            )
        return array.astype(dtype, copy=False)

    def _check_shape(self, array: np.ndarray, leading: int, layout: str, what: str) -> None:
        if array.ndim != leading + len(self.step_shape) or array.shape[leading:] != self.step_shape:
            dims = ", ".join(str(s) for s in self.step_shape)
            raise BidlError(
                f"{what}: this artifact takes {layout.format(dims=dims)}, got shape "
                f"{list(array.shape)}"
            )

    def _batches(self, sample) -> tuple[list[np.ndarray], int, bool]:
        """Split ``[N, T, ...]`` into batches ``[B, T, ...]`` padded to the batch size;
        returns (batches, N, whether the input was one unbatched sample)."""
        array = self._as_array(sample, "run")
        single = array.ndim == len(self.step_shape) + 1
        if single:
            array = array[None]
        self._check_shape(array, 2, "[N, T, {dims}] or [T, {dims}]", "run")
        if array.shape[1] < 1:
            raise BidlError("run: the sample has no timesteps (T = 0)")
        count = array.shape[0]
        batches = []
        for start in range(0, count, self.batch_size):
            chunk = array[start : start + self.batch_size]
            batches.append(self._pad(chunk))
        return batches, count, single

    def _pad(self, chunk: np.ndarray) -> np.ndarray:
        missing = self.batch_size - chunk.shape[0]
        if missing == 0:
            return chunk
        return np.concatenate([chunk, np.zeros((missing, *chunk.shape[1:]), chunk.dtype)])

    # --- one batch --------------------------------------------------------------------

    def _run_batch(self, uploaded: list) -> np.ndarray:
        """All steps of one uploaded batch from the initial states; the final output."""
        with self._engine_lock:
            run_sample = getattr(self.engine, "run_sample", None)
            output = run_sample(uploaded) if run_sample is not None else None
            if output is not None:  # the whole sample in one call (multi-step form)
                return self.engine.fetch(output)
            states = self.engine.initial_states()  # step 0 starts from zero (reset) states
            y_t = None
            for x_t in uploaded:
                y_t, states = self.engine.step(x_t, states)
            return self.engine.fetch(y_t)

    def _run_uploaded(self, uploaded: list, count: int, single: bool) -> np.ndarray:
        outputs = np.concatenate([self._run_batch(batch) for batch in uploaded])
        return outputs[0] if single else outputs[:count]  # drop the padding

    def run(self, sample) -> np.ndarray:
        """Aggregated outputs of ``sample`` ``[N, T, *input]`` (or ``[T, *input]``)."""
        batches, count, single = self._batches(sample)
        return self._run_uploaded([self.engine.upload(b) for b in batches], count, single)

    # --- queued -----------------------------------------------------------------------

    def submit(self, sample, callback: Callable[[np.ndarray], None] | None = None) -> Future:
        """Queue ``sample``; blocks while the queue is full. The worker thread runs it and
        calls ``callback(output)``; the returned ``Future`` gives the output (or error),
        and its ``latency_s`` the seconds the worker spent on it."""
        batches, count, single = self._batches(sample)  # checked and copied here, not later
        uploaded = [self.engine.upload(b) for b in batches]
        future: Future = Future()
        self._ensure_worker()
        self._queue.put((uploaded, count, single, future, callback))
        return future

    def _ensure_worker(self) -> None:
        # without the lock, two clients could each start a worker; close() stops one, and
        # waiting for the other one hung (seen in tests/test_runtime_load.py)
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="bidl-runtime", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            uploaded, count, single, future, callback = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                start = time.perf_counter()
                result = self._run_uploaded(uploaded, count, single)
                future.latency_s = time.perf_counter() - start
                if callback is not None:
                    callback(result)
                future.set_result(result)
            except BaseException as err:  # handed to whoever waits on the future
                future.set_exception(err)

    def close(self) -> None:
        """Finish queued samples and stop the worker thread."""
        with self._worker_lock:
            if self._worker is not None and self._worker.is_alive():
                self._queue.put(_STOP)
                self._worker.join()
            self._worker = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- a data set -------------------------------------------------------------------

    def infer(
        self, loader: Iterable, topk: tuple[int, ...] = (1, 5), progress: bool = True
    ) -> InferenceResult:
        """Run every batch of ``loader`` (dicts with ``img`` and ``gt_label``, or
        ``(img, label)`` pairs, or bare ``img``) through the queue; score the predictions."""

        futures, labels = [], []
        start = time.perf_counter()
        for batch in tqdm(loader, desc="infer", leave=False, disable=None if progress else True):
            img, label = _split_batch(batch)
            if label is not None:
                labels.append(np.asarray(label.cpu() if torch.is_tensor(label) else label))
            futures.append(self.submit(img))
        scores = [f.result() for f in futures]
        seconds = time.perf_counter() - start
        if not scores:
            raise BidlError("infer: the loader gave no batches")
        scores = np.concatenate(scores)
        count = scores.shape[0]
        result = InferenceResult(
            scores=scores,
            predictions=scores.reshape(count, -1).argmax(axis=1),
            labels=np.concatenate(labels) if labels else None,
            samples=count,
            seconds=seconds,
            samples_per_s=count / seconds,
            frames_per_s=count * self.timesteps / seconds,
        )
        latencies = np.array([f.latency_s for f in futures]) * 1000.0
        result.latency_ms = {
            "p50": float(np.percentile(latencies, 50)),
            "p99": float(np.percentile(latencies, 99)),
        }
        if result.labels is not None:
            values = topk_accuracy(
                torch.from_numpy(scores.reshape(count, -1).astype(np.float32)),
                torch.from_numpy(result.labels.astype(np.int64)),
                topk,
            )
            result.accuracy = {f"top-{k}": v for k, v in zip(topk, values, strict=True)}
        return result

    # --- streaming --------------------------------------------------------------------

    def reset(self) -> None:
        """Start a new stream: the next ``step`` begins from the initial states."""
        self._stream_states = None

    def step(self, x_t) -> np.ndarray:
        """Feed one timestep ``[N, *input]`` (N <= batch size) of a live stream; returns the
        running aggregate ``[N, ...]`` of the steps since the last ``reset``."""
        start = time.perf_counter()
        array = self._as_array(x_t, "step")
        self._check_shape(array, 1, "one timestep [N, {dims}]", "step")
        rows = array.shape[0]
        if not 1 <= rows <= self.batch_size:
            raise BidlError(
                f"step: got {rows} rows; this artifact streams 1 to {self.batch_size} at a time"
            )
        if self._stream_states is None:
            self._stream_states, self._stream_rows = self.engine.initial_states(), rows
        elif rows != self._stream_rows:
            raise BidlError(
                f"step: this stream has {self._stream_rows} rows, got {rows}; call reset() "
                f"to start a new stream"
            )
        (x_dev,) = self.engine.upload(self._pad(array)[:, None])
        with self._engine_lock:
            y_t, self._stream_states = self.engine.step(x_dev, self._stream_states)
            output = self.engine.fetch(y_t)[:rows]
        self._step_seconds.append(time.perf_counter() - start)
        return output

    def step_latency_ms(self) -> dict[str, float]:
        """p50, p99 and max latency of ``step`` (input checks, upload, the step, fetching
        the output), in milliseconds, over this runtime's latest 100,000 steps."""
        return latency_summary(self._step_seconds)


def _fits_integers(array: np.ndarray, dtype: np.dtype) -> bool:
    """Whether every value of ``array`` is an integer that ``dtype`` holds exactly."""
    if not array.size:
        return True
    limits = np.iinfo(dtype)
    if array.dtype.kind == "f" and not (
        np.all(np.isfinite(array)) and np.all(array == np.round(array))
    ):
        return False
    return bool(array.min() >= limits.min and array.max() <= limits.max)


def _split_batch(batch) -> tuple[object, object]:
    if isinstance(batch, dict):
        if "img" not in batch:
            raise BidlError(f"infer: a batch dict needs 'img'; got keys {sorted(batch)}")
        return batch["img"], batch.get("gt_label")
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], batch[1]
    return batch, None
