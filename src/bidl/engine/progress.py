"""What a training run tells its user as it goes: the work dir at the start and one summary
line per epoch (train loss, validation accuracy, time, ETA, the checkpoints written), on
the console and in ``train.log`` alike, whether or not the output is a terminal."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

#: ``extra=`` of the log records the console shows (besides warnings)
CONSOLE = {"console": True}


class ConsoleHandler(logging.Handler):
    """Writes the records marked ``CONSOLE``, and warnings, to stdout: through tqdm, so a
    progress bar on a terminal stays below them; plain lines when output is redirected."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "file_only", False):  # said on the console another way
            return False
        return record.levelno >= logging.WARNING or bool(getattr(record, "console", False))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:
            self.handleError(record)


def duration(seconds: float) -> str:
    """``42.0 s``, ``3m05s``, ``2h07m``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def accuracy_text(metrics: dict) -> str:
    """``val top-1 97.50 %, top-5 99.72 %`` from ``accuracy_top-k`` entries."""
    parts = [
        f"{key.removeprefix('accuracy_')} {value:.2f} %"
        for key, value in metrics.items()
        if key.startswith("accuracy_")
    ]
    parts += [f"{key} {metrics[key]:.4f}" for key in ("mAP", "mAP50") if key in metrics]
    return "val " + ", ".join(parts) if parts else "no validation"


class EpochProgress:
    """Mean training loss of an epoch (summed on the device: no wait per step), the epoch's
    time and the estimated time left, as one summary line."""

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs
        self.durations: list[float] = []
        self.started = time.perf_counter()
        self.loss_sum: torch.Tensor | None = None
        self.steps = 0

    def start(self) -> None:
        self.started = time.perf_counter()
        self.loss_sum, self.steps = None, 0

    def add_loss(self, loss: torch.Tensor) -> None:
        value = torch.as_tensor(loss).detach().float()
        self.loss_sum = value if self.loss_sum is None else self.loss_sum + value
        self.steps += 1

    def summary(self, epoch: int, metrics: dict, saved: list[str], work_dir: Path) -> str:
        self.durations.append(time.perf_counter() - self.started)
        loss = "no step" if not self.steps else f"{self.loss_sum.item() / self.steps:.4f}"
        left = self.max_epochs - epoch
        eta = sum(self.durations) / len(self.durations) * left
        written = f"saved {', '.join(saved)} in {work_dir}" if saved else "nothing saved"
        return (
            f"epoch {epoch}/{self.max_epochs}: train loss {loss}, {accuracy_text(metrics)}; "
            f"{duration(self.durations[-1])}, ETA {duration(eta) if left else 'done'}; {written}"
        )
