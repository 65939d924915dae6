"""Run ``bidl ARGS`` with a thread that samples the main thread's Python stack.

    python benchmarks/sample_stacks.py OUT WORK_DIR SECONDS train CONFIG ...

Once ``WORK_DIR/train.log`` logs epoch 2 (start-up, caches and compilation behind), the
stack of the training thread is read every 2 ms for ``SECONDS`` (or until the run ends)
and written to ``OUT`` as
``thread (main);outer (file:line);...;inner (file:line) COUNT`` lines (py-spy's raw
format). Time spent in C (a CUDA call, a queue wait) counts for the Python frame that
made the call. In-process, so it needs no ptrace permission; the sampling thread takes
the interpreter lock briefly 500 times a second, a small share of the loop's time.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from collections import Counter
from pathlib import Path


def _wait_for_epoch_two(log: Path, limit: float = 900) -> bool:
    deadline = time.time() + limit
    while time.time() < deadline:
        if log.exists() and "Epoch [2]" in log.read_text():
            return True
        time.sleep(0.5)
    return False


def _write(out: Path, counts: Counter) -> None:
    lines = [f"thread (main);{stack} {n}\n" for stack, n in list(counts.items())]
    if lines:
        out.write_text("".join(lines))


def _sample(out: Path, log: Path, seconds: float, thread_id: int, counts: Counter) -> None:
    if not _wait_for_epoch_two(log):
        return
    end = time.time() + seconds
    while time.time() < end:
        frame = sys._current_frames().get(thread_id)
        stack = []
        while frame is not None:
            code = frame.f_code
            stack.append(f"{code.co_name} ({code.co_filename}:{frame.f_lineno})")
            frame = frame.f_back
        counts[";".join(reversed(stack))] += 1
        time.sleep(0.002)
    _write(out, counts)


def main() -> int:
    out, work_dir, seconds, *args = sys.argv[1:]
    counts: Counter = Counter()
    atexit.register(_write, Path(out), counts)  # a run shorter than SECONDS: what it has
    thread = threading.Thread(
        target=_sample,
        args=(Path(out), Path(work_dir) / "train.log", float(seconds), threading.get_ident(),
              counts),
        daemon=True,
    )  # fmt: skip
    thread.start()
    from bidl.cli import main as bidl_main

    return bidl_main(args)


if __name__ == "__main__":
    sys.exit(main())
