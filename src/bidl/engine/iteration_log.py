"""What a training iteration costs, measured without stopping the device every step.

Per iteration, as mmengine's runner logs them: ``data_time`` (waiting for the batch:
loader workers, the copy to the device) and ``time`` (the whole iteration). The host
does not wait for the device inside a step, so single iterations are timed as the host
sees them; the figures logged are means over a log interval that ends by waiting for the
device, so they add up to the wall clock. Also: samples per second, the share of the time
spent waiting for data, and the peak GPU memory.
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
        self.start_interval()

    def start_interval(self) -> None:
        self.count, self.data_seconds = 0, 0.0
        self.interval_start = self.last_end = time.perf_counter()

    def data_ready(self) -> None:
        """The batch is on its way to the device: the iteration's data time ends."""
        self.data_seconds += time.perf_counter() - self.last_end

    def step_done(self) -> None:
        self.count += 1
        self.last_end = time.perf_counter()

    def summary(self) -> dict:
        """Means over the iterations since the last summary (waits for the device first)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - self.interval_start
        count = max(self.count, 1)
        record = {
            "data_time": self.data_seconds / count,
            "time": elapsed / count,
            "samples_per_s": self.samples_per_step * self.count / elapsed if elapsed > 0 else 0.0,
            "data_wait": self.data_seconds / elapsed if elapsed > 0 else 0.0,
        }
        if self.device.type == "cuda":
            record["memory"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20)
        self.start_interval()
        return record
