"""What a training iteration costs, measured without stopping the device every step.

Per iteration, as mmengine's runner logs them: ``data_time`` (the host waiting for the
loader's next batch) and ``time`` (the whole iteration, the batch's copy to the device and
its device-side augmentation included, as mmengine counts its data preprocessor). The
host does not wait for the device inside a step, so single iterations are timed as the
host sees them; the figures logged are means over a log interval that ends by waiting for
the device, so they add up to the wall clock. Also: samples per second, the share of the
time spent waiting for data, and the peak GPU memory.

On CUDA the host runs ahead of the device: it may wait for the loader while the device
still works through earlier steps, which costs nothing. ``gpu_data_wait`` is the share of
the interval the device itself sat idle between finishing one step and the next batch
reaching it (timed by CUDA events: an event recorded when the batch arrives runs at once
on an idle device, right after the queued work on a busy one). ``data_wait`` is the
device's share there, the host's elsewhere.
"""

from __future__ import annotations

import time

import torch

#: share of an interval spent waiting for data above which the runner warns
DATA_WAIT_WARNING = 0.20


class IterationLog:
    def __init__(self, device: torch.device, samples_per_step: int):
        self.device = device
        self.samples_per_step = samples_per_step
        self.cuda = device.type == "cuda"
        self.step_end: torch.cuda.Event | None = None  # the last step's work, on the device
        self.start_interval()

    def start_interval(self) -> None:
        self.count, self.data_seconds = 0, 0.0
        self.gaps: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self.interval_start = self.last_end = time.perf_counter()

    def data_ready(self) -> None:
        """The loader handed over the batch: the iteration's data time ends."""
        self.data_seconds += time.perf_counter() - self.last_end
        if self.cuda:
            arrived = torch.cuda.Event(enable_timing=True)
            arrived.record()
            if self.step_end is not None:
                self.gaps.append((self.step_end, arrived))

    def step_done(self) -> None:
        self.count += 1
        self.last_end = time.perf_counter()
        if self.cuda:
            self.step_end = torch.cuda.Event(enable_timing=True)
            self.step_end.record()

    def summary(self) -> dict:
        """Means over the iterations since the last summary (waits for the device first)."""
        if self.cuda:
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - self.interval_start
        count = max(self.count, 1)
        host_wait = self.data_seconds / elapsed if elapsed > 0 else 0.0
        record = {
            "data_time": self.data_seconds / count,
            "time": elapsed / count,
            "samples_per_s": self.samples_per_step * self.count / elapsed if elapsed > 0 else 0.0,
            "data_wait": host_wait,
        }
        if self.cuda:
            idle = sum(start.elapsed_time(end) for start, end in self.gaps) / 1e3
            record["gpu_data_wait"] = idle / elapsed if elapsed > 0 else 0.0
            record["host_data_wait"] = host_wait
            record["data_wait"] = record["gpu_data_wait"]
            record["memory"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20)
        self.start_interval()
        return record
