"""`bidl stream` end to end on a GPU: ResNet-LIF-18 (``resnetlif18-itout-b8x1-cifar10dvs``,
2x128x128, T=10) fed a recording one 1 ms frame at a time, as a user runs it:

    bidl compile resnetlif18-itout-b8x1-cifar10dvs --checkpoint C --backend torch --batch 1 \
        --precision P --out A
    bidl stream resnetlif18-itout-b8x1-cifar10dvs --artifact A --source rec.dat \
        --frame-us 1000 --speed 0 --device cuda:0 [--compile on|off]

The recording (Prophesee ``.dat``, written by the test suite's format writer) holds
``--windows`` windows of 10 ms at ``--rate`` events per ms; the checkpoint holds random
weights (latency does not depend on them). Per-step latency as `bidl stream` reports it:
integrating the frame, uploading it, the step, the output back on the host.

    python benchmarks/bench_stream_gpu.py --json out.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import Emitter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from format_writers import write_dat  # noqa: E402

CONFIG = "resnetlif18-itout-b8x1-cifar10dvs"
SENSOR = (128, 128)


def recording(path: Path, windows: int, rate: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    n = windows * 10 * rate
    events = {
        "x": rng.integers(0, SENSOR[1], n),
        "y": rng.integers(0, SENSOR[0], n),
        "t": np.sort(rng.integers(0, windows * 10_000, n)),
        "p": rng.integers(0, 2, n),
    }
    events["t"][0] = 0
    write_dat(path, events, size=SENSOR)
    return path


def bidl(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bidl.cli", *argv], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise SystemExit(f"bidl {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=60)
    parser.add_argument("--rate", type=int, default=2000, help="events per ms")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16"])
    parser.add_argument("--compile", nargs="+", default=["off", "auto"])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from bidl.config import load_config
    from bidl.engine.apis import build_model
    from bidl.engine.checkpoint import save_checkpoint

    emit = Emitter(args.json)
    emit(device=torch.cuda.get_device_name(0), torch=torch.__version__,
         date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        source = recording(work / "rec_td.dat", args.windows, args.rate)
        torch.manual_seed(0)
        checkpoint = work / "random.pth"
        save_checkpoint(checkpoint, build_model(load_config(CONFIG)))
        for precision in args.precisions:
            artifact = work / f"r18_{precision}"
            bidl("compile", CONFIG, "--checkpoint", str(checkpoint), "--backend", "torch",
                 "--batch", "1", "--precision", precision, "--eval-samples", "0",
                 "--out", str(artifact))  # fmt: skip
            for mode in args.compile:
                out = work / f"{precision}_{mode}.json"
                started = time.perf_counter()
                bidl("stream", CONFIG, "--artifact", str(artifact), "--source", str(source),
                     "--frame-us", "1000", "--speed", "0", "--device", "cuda:0",
                     "--compile", mode, "--out", str(out))  # fmt: skip
                figures = json.loads(out.read_text())
                emit(
                    bench="bidl stream",
                    precision=precision,
                    compile=mode,
                    steps=figures["steps"],
                    wall_s=round(time.perf_counter() - started, 1),
                    step_ms={k: round(v, 4) for k, v in figures["latency_ms"].items()},
                )


if __name__ == "__main__":
    main()
