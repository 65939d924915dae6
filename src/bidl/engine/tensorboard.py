"""TensorBoard logging of training records, when the ``tensorboard`` package is installed
(``pip install bidl[tensorboard]``); ``log.json`` is written either way."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class TensorboardLog:
    """Mirror ``log.json`` records into TensorBoard event files under ``log_dir``.

    Train records go under ``train/`` (loss, accuracy, ``lr``), validation records under
    ``val/``, and a record's ``firing_rate`` dict under ``firing_rate/<layer>``; the step
    is the global iteration. Without tensorboard installed every call does nothing.
    """

    SKIP = ("mode", "epoch", "iter", "time")

    def __init__(self, log_dir: str | Path, enabled: bool | None = None):
        self.log_dir = Path(log_dir)
        self.enabled = tensorboard_available() if enabled is None else enabled
        self._writer = None

    def _open(self):
        if self._writer is None and self.enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        return self._writer

    def write(self, record: dict, step: int) -> None:
        mode = record.get("mode")
        if mode not in ("train", "val") or not self.enabled:
            return
        writer = self._open()
        for key, value in record.items():
            if key in self.SKIP:
                continue
            if isinstance(value, dict):
                for name, inner in value.items():
                    self._scalar(writer, f"{key}/{name}", inner, step)
            elif key == "lr":
                self._scalar(writer, "lr", value, step)
            else:
                self._scalar(writer, f"{mode}/{key}", value, step)
        writer.flush()

    @staticmethod
    def _scalar(writer, tag: str, value, step: int) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
