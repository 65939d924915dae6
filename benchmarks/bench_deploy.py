"""Step-graph runtime against PyTorch eager EIM (the time loop in Python, one step of the
whole network at a time): frames/s and per-batch latency at batch 1 and batch 64.

    python benchmarks/bench_deploy.py --device cuda:0 --backend aoti --out results.md

Weights are random (speed does not depend on them); inputs are sparse random spikes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bidl.deploy import Runtime, compile_model
from bidl.registry import BACKBONES


def timed(run, sync, iterations: int, warmup: int = 3) -> np.ndarray:
    """Seconds of each of ``iterations`` calls of ``run()``, after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    sync()
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        sync()
        seconds.append(time.perf_counter() - start)
    return np.array(seconds)


def row(what: str, batch: int, timesteps: int, seconds: np.ndarray) -> str:
    fps = batch * timesteps * len(seconds) / seconds.sum()
    p50, p99 = np.percentile(seconds * 1000, [50, 99])
    return f"| {what} | {batch} | {fps:,.0f} | {p50:.2f} | {p99:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="SeqClif5Fc2CdItout")
    parser.add_argument("--timestep", type=int, default=10)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backend", default="aoti", choices=["aoti", "onnxruntime"])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args()

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = BACKBONES.get(args.backbone)(
        timestep=args.timestep, h=args.size, w=args.size, nclass=10
    ).eval()
    name = f"{args.backbone} (T={args.timestep}, 2x{args.size}x{args.size})"
    lines = [
        f"{name} on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
        f"torch {torch.__version__}, {args.iterations} timed batches after 3 warm-up ones; "
        f"latency per batch, input copied from the host each time.",
        "",
        "| path | batch | frames/s | p50 ms | p99 ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    eager = model.to(device)
    with tempfile.TemporaryDirectory() as folder:
        for batch in args.batches:
            xs = (torch.rand(batch, args.timestep, 2, args.size, args.size) < 0.1).float()

            def run_eager(xs=xs):
                with torch.no_grad():
                    return eager(xs.to(device)).cpu()

            lines.append(row("PyTorch eager EIM", batch, args.timestep,
                             timed(run_eager, sync, args.iterations)))  # fmt: skip
            start = time.perf_counter()
            artifact = compile_model(
                model.cpu(),
                Path(folder) / f"b{batch}",
                backend=args.backend,
                batch_size=batch,
                device=str(device) if args.backend == "aoti" else "cpu",
            )
            model.to(device)
            compile_s = time.perf_counter() - start
            with Runtime(artifact, device=str(device)) as runtime:
                got = runtime.run(xs)
                diff = np.abs(got - run_eager().numpy()).max()
                seconds = timed(lambda xs=xs: runtime.run(xs), sync, args.iterations)
            lines.append(row(f"Runtime ({args.backend})", batch, args.timestep, seconds))
            print(f"batch {batch}: compiled in {compile_s:.0f} s, max |runtime - eager| {diff:.2e}")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
