"""Reading and uploading the next batches in a thread, off the critical path of the device
that computes the first steps (the first time slice of a grid, which otherwise waits for
each batch to be read, padded and copied before it launches anything).

On a CUDA device the copies go on a stream of their own; each batch carries an event that
the computing stream waits on (on the device, not the host) before its first step.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable

import torch

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher:
    """``prepare(item)`` for every item of ``items``, ``depth`` ahead, in a daemon thread;
    ``next()`` returns them in order (None after the last) and re-raises a failure."""

    def __init__(
        self,
        items: Iterable,
        prepare: Callable[[object], list],
        device: torch.device,
        depth: int = 2,
    ):
        self.device = device
        self.cuda = device.type == "cuda"
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._thread = threading.Thread(
            target=self._fill, args=(items, prepare), name="bidl-prefetch", daemon=True
        )
        self._thread.start()

    def _fill(self, items: Iterable, prepare: Callable) -> None:
        try:
            stream = None
            if self.cuda:
                torch.cuda.set_device(self.device)
                stream = torch.cuda.Stream(self.device)
            with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                for item in items:
                    prepared = prepare(item)
                    event = None
                    if stream is not None:
                        event = torch.cuda.Event()
                        event.record(stream)
                    self._queue.put((prepared, event))
            self._queue.put(_END)
        except BaseException as err:  # handed to the consumer, which raises it
            self._queue.put(_Failure(err))

    def next(self) -> list | None:
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # every later call sees the end too
            return None
        if isinstance(item, _Failure):
            raise item.error
        prepared, event = item
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            for value in prepared:  # made on the copy stream, used on this one
                if torch.is_tensor(value):
                    value.record_stream(current)
        return prepared


__all__ = ["Prefetcher"]
