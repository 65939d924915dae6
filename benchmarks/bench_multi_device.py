"""Pipeline inference over a device grid: frames/s of ResNet-LIF-50 on CIFAR10-DVS shapes
(T=10, 2x128x128) on 1, 2 and 4 devices, by time slicing, model slicing and both.

    python benchmarks/bench_multi_device.py --phase compile --work /tmp/grid   # artifacts
    python benchmarks/bench_multi_device.py --phase run --work /tmp/grid --json out.jsonl

The model is the shipped ``resnetlif50-itout-b8x1-cifar10dvs_mp`` config (random weights;
speed does not depend on them): its ``model`` compiled whole, its ``model_0``/``model_1``
as two segments (as the config splits it, and with the split points that
``bidl compile --segments --balance cuda`` chooses), and the same network in four segments
of four residual blocks each. Every
grid run is checked against the one-device runtime's outputs on the same samples.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from bench_common import Emitter

CONFIG = "resnetlif50-itout-b8x1-cifar10dvs_mp"
FOUR_SPLITS = ([0, 4], [4, 8], [8, 12], [12, 16])


def _models(kind: str, timestep: int = 10):
    """(models, the config section that builds each) of the whole network or its segments."""
    from bidl.config import load_config
    from bidl.deploy.segments import build_segments, segment_configs
    from bidl.registry import CLASSIFIERS, build

    cfg = load_config(CONFIG)
    for section in ("model", "model_0", "model_1"):
        cfg[section].backbone.timestep = timestep
    torch.manual_seed(0)
    whole = build(cfg.model.to_dict(), CLASSIFIERS).eval()
    if kind == "whole":
        return [whole], [cfg.model.to_dict()]
    if kind == "segments4":
        for index, split in enumerate(FOUR_SPLITS):
            cfg[f"model_{index}"] = dict(cfg.model_0.to_dict())
            cfg[f"model_{index}"]["backbone"] = dict(cfg.model_0.backbone.to_dict(), split=split)
        cfg.models_compile_inputshape = None
    return build_segments(cfg, whole.state_dict()), segment_configs(cfg)


def compile_one(
    kind: str, work: str, batch: int, backend: str, device: str, timestep: int = 10
) -> str:
    import os

    # one Inductor cache per compile: parallel compiles must not share build folders
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"/tmp/bidl-inductor-{kind}"
    from bidl.deploy import compile_model
    from bidl.deploy.segments import compile_segments

    out = Path(work) / f"{kind}_b{batch}"
    start = time.perf_counter()
    if kind == "balanced2":  # the user's command: bidl compile --segments --balance cuda
        return compile_balanced(out, batch, backend, device, timestep, start)
    models, configs = _models(kind, timestep)
    options = dict(batch_size=batch, backend=backend, device=device)
    if kind == "whole":
        compile_model(models[0], out, model_config=configs[0], **options)
    else:
        compile_segments(models, out, model_configs=configs, **options)
    return f"{out}: {time.perf_counter() - start:.0f} s"


def compile_balanced(out: Path, batch: int, backend: str, device: str, timestep: int, start):
    """The config's two segments with split points balanced on the GPU, compiled as
    ``bidl compile CONFIG --checkpoint C --segments --balance cuda`` does."""
    from bidl.deploy import compile_config
    from bidl.engine.checkpoint import save_checkpoint

    models, _ = _models("whole", timestep)
    checkpoint = out.parent / "random_weights.pth"
    save_checkpoint(checkpoint, models[0])
    options = {f"{m}.backbone.timestep": timestep for m in ("model", "model_0", "model_1")}
    result = compile_config(
        CONFIG,
        checkpoint,
        out,
        cfg_options=options,
        segments=True,
        balance="cuda",
        backend=backend,
        batch_size=batch,
        device=device,
    )
    return f"{out}: {time.perf_counter() - start:.0f} s; {result.balanced}"


GRIDS = [
    ("1 device", "whole", [[0]]),
    ("time x2", "whole", [[0], [1]]),
    ("model x2", "segments2", [[0, 1]]),
    ("model x2 balanced", "balanced2", [[0, 1]]),
    ("time x4", "whole", [[0], [1], [2], [3]]),
    ("model x4", "segments4", [[0, 1, 2, 3]]),
    ("time x2, model x2", "segments2", [[0, 1], [2, 3]]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=["compile", "run"], required=True)
    parser.add_argument("--work", default="/tmp/bidl-grid-bench")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--warmup", type=int, default=4, help="batches before the clock")
    parser.add_argument("--backend", default="torch", choices=["torch", "aoti", "onnxruntime"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--max-devices", type=int, default=None)
    parser.add_argument("--kinds", nargs="+", default=None, help="compile only these")
    parser.add_argument("--timestep", type=int, default=10, help="T (CIFAR10-DVS: 10)")
    parser.add_argument("--grids", nargs="+", default=None, help="run only these (names)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.phase == "compile":
        kinds = ["whole", "segments2", "segments4"]
        if torch.cuda.is_available():
            kinds.append("balanced2")  # timed on the GPU
        compile_device = "cuda" if args.device == "cuda" and args.backend == "aoti" else "cpu"
        kinds = args.kinds or kinds
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(kinds), mp_context=spawn) as pool:
            jobs = [
                pool.submit(
                    compile_one,
                    k,
                    args.work,
                    args.batch,
                    args.backend,
                    compile_device,
                    args.timestep,
                )
                for k in kinds
            ]
            for job in jobs:
                print(job.result(), flush=True)
        return

    from bidl.deploy import Runtime
    from bidl.deploy.launch import run_grid

    work = Path(args.work)
    generator = np.random.default_rng(0)
    shape = (args.samples, args.timestep, 2, 128, 128)
    samples = (generator.random(shape, dtype=np.float32) < 0.1).astype(np.float32)
    device = "cuda:0" if args.device == "cuda" else "cpu"
    with Runtime(work / f"whole_b{args.batch}", device=device) as runtime:
        reference = runtime.run(samples)
    available = torch.cuda.device_count() if args.device == "cuda" else (args.max_devices or 4)
    limit = min(available, args.max_devices or available)
    base, emit = None, Emitter(args.json)
    for name, kind, grid in GRIDS:
        if args.grids and name not in args.grids:
            continue
        size = sum(len(row) for row in grid)
        if not (work / f"{kind}_b{args.batch}").exists():
            print(json.dumps({"grid": name, "skipped": f"{kind} not compiled"}), flush=True)
            continue
        if size > limit:
            print(json.dumps({"grid": name, "skipped": f"needs {size} devices"}), flush=True)
            continue
        result = run_grid(
            work / f"{kind}_b{args.batch}",
            grid,
            samples,
            device=args.device,
            warmup_batches=args.warmup,
            timeout_s=560,
        )
        base = base or result.frames_per_s
        record = {
            "grid": name,
            "devices": grid,
            "batch": args.batch,
            "samples_timed": result.timed_samples,
            "frames_per_s": round(result.frames_per_s, 1),
            "speedup": round(result.frames_per_s / base, 2),
            "latency_ms": {k: round(v, 2) for k, v in result.latency_ms.items()},
            "utilisation": [round(r.utilisation, 3) for r in result.reports],
            "max_abs_diff_vs_one_device_runtime": float(np.abs(result.outputs - reference).max()),
        }
        emit(**record)


if __name__ == "__main__":
    main()
