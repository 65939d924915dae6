"""Peak memory and speed of reading a large event recording in chunks.

Writes an EVT 2.0 ``.raw`` of about ``--gb`` GB (random events, rising times, written in
slices so the writer itself stays small), then reads it with ``iter_event_file`` in chunks
of ``--chunk`` events in a fresh process and reports the process's peak resident memory
(``VmHWM``; also right after importing bidl, which imports torch), the events read and the
rate.

    python benchmarks/bench_event_read.py --gb 1 --folder /tmp
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def write(path: Path, gigabytes: float) -> int:
    from format_writers import _raw_header, evt2_words

    slice_events, total, t = 10_000_000, 0, 0
    target = int(gigabytes * 1e9)
    rng = np.random.default_rng(0)
    with open(path, "wb") as handle:
        handle.write(_raw_header("EVT2", "2.0", (720, 1280)))
        while handle.tell() < target:
            gaps = rng.integers(0, 3, slice_events)
            times = t + np.cumsum(gaps)
            t = int(times[-1])
            events = {
                "x": rng.integers(0, 1280, slice_events),
                "y": rng.integers(0, 720, slice_events),
                "t": times,
                "p": rng.integers(0, 2, slice_events),
            }
            evt2_words(events).tofile(handle)
            total += slice_events
    return total


def _vm(key: str) -> float:
    """A /proc/self/status figure in MB (VmHWM: peak resident set of this process image,
    which, unlike ru_maxrss, does not inherit the parent's peak across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read(path: str, chunk: int) -> dict:
    from bidl.datasets.events.formats import iter_event_file

    after_import = _vm("VmHWM")
    start = time.perf_counter()
    count = 0
    for events in iter_event_file(path, chunk_events=chunk):
        count += len(events)
    seconds = time.perf_counter() - start
    return {
        "events": count,
        "seconds": seconds,
        "peak_rss_mb": _vm("VmHWM"),
        "peak_rss_after_import_mb": after_import,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--folder", default="/tmp")
    parser.add_argument("--read", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        print(json.dumps(read(args.read, args.chunk)))
        return
    path = Path(args.folder) / "bench_events.raw"
    written = write(path, args.gb)
    size_gb = path.stat().st_size / 1e9
    out = subprocess.run(
        [sys.executable, __file__, "--read", str(path), "--chunk", str(args.chunk)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout)
    result.update(file_gb=round(size_gb, 3), written=written, chunk=args.chunk)
    result["events_per_s"] = result["events"] / result["seconds"]
    print(json.dumps(result, indent=2))
    path.unlink()


if __name__ == "__main__":
    main()
