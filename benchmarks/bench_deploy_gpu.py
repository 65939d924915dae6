"""Deployed step graphs on one GPU, each beside its eager baseline in the same run:

- ``resnet50``: ResNet-LIF-50 (``resnetlif50-itout-b8x1-cifar10dvs_mp``'s whole model, T=10,
  2x128x128), batch 1, the ``torch`` backend: eager launches (``BIDL_CUDA_GRAPHS=0``, the
  issue's baseline) against one CUDA graph per step, and a CUDA graph of the step compiled
  by torch.compile (``BIDL_TORCH_COMPILE=1``), and the default: the whole sample in
  multi-step form replayed from one CUDA graph (``sample``, ``BIDL_SAMPLE_GRAPH``), in
  fp32, fp16 and bf16 (``--variants``).
- ``stream18``: ResNet-LIF-18 (``resnetlif18-itout-b8x1-cifar10dvs``, 128x128) fed one
  timestep at a time (``Runtime.step``); per-step latency p50 / p99.
- ``seqclif``: ``SeqClif5Fc2CdItout`` (T=10, 2x128x128), batch 1: PyTorch eager EIM (the
  model called on the sequence) against the runtime (``torch`` backend, CUDA graphs).
- ``aoti-diag``: AOTInductor CUDA packages (a small network under each variant of the
  compile options, and ResNet-LIF-18) compiled, then loaded in fresh processes: a crash
  there is reported with its signal and traceback, not fatal to this script.

    python benchmarks/bench_deploy_gpu.py --what resnet50 stream18 seqclif --json out.jsonl

Random weights (speed does not depend on them), inputs random spikes (10 % ones). Each
figure is the median of the timed repeats after warm-up, synchronised, inputs copied
from the host every time on every path.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from bench_common import Emitter

from bidl.config import load_config
from bidl.deploy import Runtime, compile_model
from bidl.registry import CLASSIFIERS, build

R50 = "resnetlif50-itout-b8x1-cifar10dvs_mp"
R18 = "resnetlif18-itout-b8x1-cifar10dvs"


#: how the torch engine launches a step: one kernel at a time, one CUDA graph per step,
#: or a CUDA graph of the step compiled by torch.compile (fused kernels)
#: ('sample': a whole sample in multi-step form from one CUDA graph, the default on CUDA)
MODES = {
    "eager": {"BIDL_CUDA_GRAPHS": "0", "BIDL_TORCH_COMPILE": "0", "BIDL_SAMPLE_GRAPH": "0"},
    "graph": {"BIDL_CUDA_GRAPHS": "1", "BIDL_TORCH_COMPILE": "0", "BIDL_SAMPLE_GRAPH": "0"},
    "compiled": {"BIDL_CUDA_GRAPHS": "1", "BIDL_TORCH_COMPILE": "1", "BIDL_SAMPLE_GRAPH": "0"},
    "sample": {"BIDL_CUDA_GRAPHS": "1", "BIDL_TORCH_COMPILE": "0", "BIDL_SAMPLE_GRAPH": "auto"},
    "sample-compiled": {
        "BIDL_CUDA_GRAPHS": "1",
        "BIDL_TORCH_COMPILE": "1",
        "BIDL_SAMPLE_GRAPH": "auto",
    },
}


@contextlib.contextmanager
def launch_mode(mode: str):
    old = {k: os.environ.get(k) for k in MODES[mode]}
    os.environ.update(MODES[mode])
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def variants(args) -> list[tuple[str, str]]:
    """(mode, precision) pairs of ``--variants`` (``mode:precision``)."""
    return [tuple(v.split(":")) for v in args.variants]


def classifier(config: str, timestep: int):
    cfg = load_config(config)
    cfg.model.backbone.timestep = timestep
    torch.manual_seed(0)
    return build(cfg.model.to_dict(), CLASSIFIERS).eval(), cfg.model.to_dict()


def spikes(count: int, timestep: int, size: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (count, timestep, 2, size, size)
    return (rng.random(shape, dtype=np.float32) < 0.1).astype(np.float32)


def per_sample_seconds(run, samples: np.ndarray, warmup: int) -> np.ndarray:
    for sample in samples[:warmup]:
        run(sample[None])
    torch.cuda.synchronize()
    seconds = []
    for sample in samples[warmup:]:
        start = time.perf_counter()
        run(sample[None])
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return np.array(seconds)


def resnet50(args, emit: Emitter, work: Path) -> None:
    model, section = classifier(R50, 10)
    samples = spikes(args.samples + args.warmup, 10)
    reference = None
    for mode, precision in variants(args):
        folder = work / f"r50_{precision}"
        if not folder.exists():
            compile_model(model, folder, backend="torch", model_config=section, precision=precision)
        opened = time.perf_counter()
        with launch_mode(mode), Runtime(folder, device="cuda:0") as runtime:
            opened = time.perf_counter() - opened
            out = runtime.run(samples[:8])
            seconds = per_sample_seconds(runtime.run, samples, args.warmup)
            launches = runtime.engine.launches
            samples_run = runtime.engine.samples_run
        reference = out if reference is None else reference
        emit(
            bench="resnet50",
            mode=mode,
            precision=precision,
            launches=launches,
            samples_run=samples_run,
            open_s=round(opened, 1),
            samples_per_s=round(1.0 / float(np.median(seconds)), 1),
            ms_per_sample_p50=round(1000 * float(np.median(seconds)), 3),
            ms_per_sample_p99=round(1000 * float(np.percentile(seconds, 99)), 3),
            max_abs_diff_vs_eager_fp32=float(np.abs(out - reference).max()),
            same_top1_as_eager_fp32=float((out.argmax(1) == reference.argmax(1)).mean()),
        )


def stream18(args, emit: Emitter, work: Path) -> None:
    model, section = classifier(R18, 10)
    frames = spikes(1, args.steps + args.warmup, seed=1)[0]
    for mode, precision in variants(args):
        folder = work / f"r18_{precision}"
        if not folder.exists():
            compile_model(model, folder, backend="torch", model_config=section, precision=precision)
        with launch_mode(mode), Runtime(folder, device="cuda:0") as runtime:
            runtime.reset()
            for frame in frames[: args.warmup]:
                runtime.step(frame[None])
            runtime._step_seconds.clear()  # the figures are of the timed steps only
            for k, frame in enumerate(frames[args.warmup :]):
                if k % 10 == 0:
                    runtime.reset()  # a window of T=10 steps, as a live stream runs
                runtime.step(frame[None])
            latency = runtime.step_latency_ms()
            launches = runtime.engine.launches
        emit(
            bench="stream18",
            mode=mode,
            precision=precision,
            launches=launches,
            steps=args.steps,
            step_ms={k: round(v, 4) for k, v in latency.items()},
        )


def seqclif(args, emit: Emitter, work: Path) -> None:
    section = dict(
        type="ImageClassifier",
        backbone=dict(type="SeqClif5Fc2CdItout", timestep=10, h=128, w=128, nclass=10),
        neck=None,
        head=dict(type="ClsHead", loss=dict(type="CrossEntropyLoss"), topk=(1,)),
    )
    torch.manual_seed(0)
    model = build(section, CLASSIFIERS).eval()
    samples = spikes(args.samples + args.warmup, 10, seed=2)
    eager = copy.deepcopy(model.backbone).cuda()

    def run_eager(batch):
        with torch.no_grad():
            return eager(torch.from_numpy(batch).cuda()).cpu().numpy()

    seconds = per_sample_seconds(run_eager, samples, args.warmup)
    base = float(np.median(seconds))
    emit(bench="seqclif", path="PyTorch eager EIM", samples_per_s=round(1 / base, 1))
    reference = run_eager(samples[:1])
    for precision in ("fp32", "fp16", "bf16"):
        folder = work / f"seqclif_{precision}"
        if not folder.exists():
            compile_model(model, folder, backend="torch", model_config=section, precision=precision)
        with Runtime(folder, device="cuda:0") as runtime:
            out = runtime.run(samples[:1])
            seconds = per_sample_seconds(runtime.run, samples, args.warmup)
            launches = f"{runtime.engine.launches}; samples {runtime.engine.samples_run}"
        median = float(np.median(seconds))
        emit(
            bench="seqclif",
            path=f"Runtime (torch, {precision})",
            launches=launches,
            samples_per_s=round(1 / median, 1),
            over_eager=round(base / median, 2),
            max_abs_diff_vs_eager=float(np.abs(out - reference).max()),
        )


#: Inductor options of each AOTInductor variant (None: bidl's own, compile._aoti_configs)
AOTI_VARIANTS = {
    "bidl-options": None,
    "inductor-defaults": {},
    "O0-only": {"aot_inductor.compile_wrapper_opt_level": "O0"},
    "no-pch-only": {"aot_inductor.precompile_headers": False},
}

FRESH_LOAD = """
import faulthandler, sys, numpy as np, torch
faulthandler.enable()
from bidl.deploy import Runtime
runtime = Runtime(sys.argv[1], device="cuda:0")
shape = [1, runtime.timesteps, *runtime.step_shape]
out = runtime.run((np.random.default_rng(0).random(shape) < 0.1).astype(np.float32))
print("ran", out.shape, flush=True)
"""


def _compile_aoti(folder: str, model_name: str, variant: str) -> str:
    """One AOTInductor CUDA package (run in a process of its own, its own Inductor cache)."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"/tmp/bidl-inductor-{model_name}-{variant}"
    import bidl.deploy.compile as compile_module
    from bidl.registry import BACKBONES

    if AOTI_VARIANTS[variant] is not None:
        compile_module._aoti_configs = lambda: dict(AOTI_VARIANTS[variant])
    if model_name == "tiny":
        torch.manual_seed(0)
        model = BACKBONES.get("SeqClif3Fc3DmItout")(timestep=4, h0=34, w0=34, nclass=10)
    else:
        model, _ = classifier({"r18": R18, "r50": R50}[model_name], 10)
    start = time.perf_counter()
    compile_model(model.eval(), folder, backend="aoti", device="cuda:0")
    return f"{time.perf_counter() - start:.0f} s"


def aoti_diag(args, emit: Emitter, work: Path) -> None:
    """Why AOTInductor packages crash at load: packages of a small network (each variant of
    the compile options) and of ResNet-LIF-18 compiled in parallel, then each loaded in a
    fresh process, once with its compile's Inductor cache and once with an empty one."""
    jobs = [("tiny", v) for v in AOTI_VARIANTS] + [
        ("r18", "bidl-options"),
        ("r18", "inductor-defaults"),
    ]
    spawn = multiprocessing.get_context("spawn")
    built = []
    with ProcessPoolExecutor(len(jobs), mp_context=spawn) as pool:
        futures = {
            job: pool.submit(_compile_aoti, str(work / f"aoti_{job[0]}_{job[1]}"), *job)
            for job in jobs
        }
        for (model_name, variant), future in futures.items():
            try:
                seconds = future.result()
                built.append((model_name, variant))
                emit(bench="aoti-diag", model=model_name, variant=variant, compiled=seconds)
            except Exception as err:
                emit(bench="aoti-diag", model=model_name, variant=variant, error=str(err)[:800])
    for model_name, variant in built:
        for cache in ("compile's", "empty"):
            cache_dir = (
                f"/tmp/bidl-inductor-{model_name}-{variant}"
                if cache == "compile's"
                else tempfile.mkdtemp(prefix="inductor-empty-")
            )
            child = subprocess.run(
                [sys.executable, "-c", FRESH_LOAD, str(work / f"aoti_{model_name}_{variant}")],
                env=dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache_dir, PYTHONUNBUFFERED="1"),
                capture_output=True,
                text=True,
                timeout=120,
            )
            emit(
                bench="aoti-diag",
                model=model_name,
                variant=variant,
                cache=cache,
                returncode=child.returncode,
                out=(child.stdout + child.stderr)[-300:] if child.returncode else "",
            )


BENCHES = {
    "resnet50": resnet50,
    "stream18": stream18,
    "seqclif": seqclif,
    "aoti-diag": aoti_diag,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", nargs="+", default=["resnet50", "stream18", "seqclif"])
    parser.add_argument("--samples", type=int, default=30, help="timed samples")
    parser.add_argument("--steps", type=int, default=500, help="timed streaming steps")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["eager:fp32", "graph:fp32", "graph:fp16", "graph:bf16"],
        help="resnet50 / stream18: MODE:PRECISION, MODE one of " + ", ".join(MODES),
    )
    parser.add_argument("--work", default=None, help="artifact folder (default: a temp dir)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    emit = Emitter(args.json)
    emit(
        device=torch.cuda.get_device_name(0),
        torch=torch.__version__,
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work or scratch)
        work.mkdir(parents=True, exist_ok=True)
        for what in args.what:
            BENCHES[what](args, emit, work)


if __name__ == "__main__":
    main()
