"""What the benchmark scripts share: the anchor's timing method and JSON-line output."""

from __future__ import annotations

import json
import time

import torch


def timeit(fn, iters: int = 20, warm: int = 5) -> float:
    """Mean seconds per call after ``warm`` calls (the anchor benchmark's method)."""
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


class Emitter:
    """Prints one JSON line per record, keeps the records, and appends them to ``path``."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.rows: list[dict] = []

    def __call__(self, **record) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        self.rows.append(record)
        if self.path:
            with open(self.path, "a") as handle:
                handle.write(line + "\n")
