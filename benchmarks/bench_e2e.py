"""``bidl train`` end to end, as a user runs it, on files in the real formats.

1. Writes a CIFAR10-DVS folder (jAER AEDAT 2.0 files of random events, a folder per class,
   written by the test writers in ``tests/format_writers.py``) unless it exists.
2. Runs ``bidl train CONFIG`` in a subprocess for each ``--run`` (config name, then
   ``key=value`` overrides, e.g. ``clif5fc2cd_itout-b64x1-cifar10dvs data.workers_per_gpu=8``),
   sampling the GPU's utilisation through NVML meanwhile, and reads its ``log.json``:
   samples/s and the data-wait share per log interval (the first epoch, with the
   cache build, cuDNN autotuning and any compilation, is left out of the medians).
3. ``--digits``: the DigitsDVS main job (``bidl data prepare digits_dvs``, then ``bidl train
   clif3fc3dm_itout-b16x1-digitsdvs``), wall clock and final accuracy.
4. ``--model-step``: in this process, the model step alone (synthetic batch on the GPU) of
   each run's config as bidl builds it, and SpikingJelly 2.0's multi-step network of
   ``bench_train.py`` (same shapes), for the side-by-side figure.

    python benchmarks/bench_e2e.py --cifar-root /tmp/c10 --files 2000 --events 20000 \\
        --run "clif5fc2cd_itout-b64x1-cifar10dvs data.workers_per_gpu=8 runner.max_epochs=6" \\
        --digits --model-step --json out.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_common import Emitter  # noqa: E402

CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def write_cifar10dvs(root: Path, files: int, events: int) -> float:
    """``files`` AEDAT 2.0 recordings of ``events`` random events, spread over the classes;
    returns the seconds it took (0 when the folder was there)."""
    from format_writers import random_events, write_aedat2_dvs128

    marker = root / f".written-{files}-{events}"
    if marker.exists():
        return 0.0
    start = time.perf_counter()
    for index in range(files):
        name = CIFAR_CLASSES[index % 10]
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"cifar10_{name}_{index // 10}.aedat"
        write_aedat2_dvs128(path, random_events(events, seed=index))
    marker.touch()
    return time.perf_counter() - start


class GpuSampler:
    """GPU utilisation (percent) read through NVML every 100 ms, with its wall times."""

    def __init__(self):
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._read = lambda: pynvml.nvmlDeviceGetUtilizationRates(self._handle).gpu
        except Exception:  # no NVML: no figure
            self._read = None

    def __enter__(self):
        if self._read is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(0.1):
            self.samples.append((time.time(), int(self._read())))

    def __exit__(self, *exc):
        self._stop.set()

    def mean(self, start: float | None = None, end: float | None = None) -> float | None:
        """Mean over ``[start, end]`` (wall times), all samples when not given."""
        values = [
            v
            for t, v in self.samples
            if (start is None or t >= start) and (end is None or t <= end)
        ]
        return statistics.fmean(values) if values else None


def training_window(work_dir: Path) -> tuple[float | None, float | None]:
    """Wall times of the first log line of epoch 2 and of the last iteration log line, read
    off ``train.log`` (the steady part of a run: no start-up, cache build or compiling)."""
    log = work_dir / "train.log"
    if not log.exists():
        return None, None
    stamps = []
    for line in log.read_text().splitlines():
        if " - Epoch [" in line and "Epoch [1]" not in line:
            stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
            stamps.append(stamp + int(line[20:23]) / 1000)
    return (stamps[0], stamps[-1]) if len(stamps) > 1 else (None, None)


def bidl(*args: str, log: Path, spy: tuple | None = None) -> tuple[int, float]:
    """Run ``bidl ARGS`` (this checkout's package) with its output in ``log``; returns the
    exit status and the wall clock seconds. ``spy = (work_dir, seconds, out)``: sample the
    training thread's Python stack for ``seconds`` once epoch 2 logs (``sample_stacks.py``)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "bidl.cli", *args]
    if spy is not None:
        work_dir, seconds, out = spy
        command = [sys.executable, str(HERE / "sample_stacks.py"), str(out), str(work_dir),
                   str(seconds), *args]  # fmt: skip
    start = time.perf_counter()
    with open(log, "w") as handle:
        status = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    return status, time.perf_counter() - start


def _frame(text: str) -> str:
    """``name (file.py:12)`` -> ``name (file.py)``."""
    name, _, where = text.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rsplit('/', 1)[-1]})" if where else name


def spy_summary(path: Path, emit, config: str) -> None:
    """The training thread's time: per call made from the epoch loop (inclusive) and per
    innermost frame (self), in percent of its samples; other threads' totals."""
    from collections import Counter

    threads, loop, leaves, inside = Counter(), Counter(), Counter(), Counter()
    main_total = 0
    for line in path.read_text().splitlines() if path.exists() else []:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        threads[frames[0]] += int(count)
        names = [_frame(f) for f in frames[1:]]
        epoch = next((i for i, f in enumerate(names) if f.startswith("train_epoch ")), None)
        if epoch is None:
            continue
        main_total += int(count)
        # a call made from the loop, or the loop's own line (C calls count there)
        here = names[epoch + 1] if epoch + 1 < len(names) else frames[1 + epoch].split("/")[-1]
        loop[here] += int(count)
        leaves[names[-1]] += int(count)
        step = next((i for i, f in enumerate(names) if f.startswith("train_step ")), None)
        if step is not None:
            inside[
                names[step + 1] if step + 1 < len(names) else frames[1 + step].split("/")[-1]
            ] += int(count)
    if not main_total:
        emit(bench="stacks", config=config, error="no samples of the training loop")
        return
    share = {k: round(100 * v / main_total, 1) for k, v in loop.most_common(15)}
    self_share = {k: round(100 * v / main_total, 1) for k, v in leaves.most_common(25)}
    step_share = {k: round(100 * v / main_total, 1) for k, v in inside.most_common(12)}
    emit(bench="stacks", config=config, samples=main_total, loop_calls_pct=share,
         train_step_calls_pct=step_share, self_pct=self_share,
         threads=dict(threads.most_common(8)))  # fmt: skip


def read_log(work_dir: Path) -> list[dict]:
    path = work_dir / "log.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_train(spec: str, cifar_root: Path, out: Path, emit, device: str, spy: float = 0) -> dict:
    """One ``--run``: ``bidl train`` of the config with the overrides, and its figures."""
    config, *overrides = shlex.split(spec)
    tag = "-".join([config, *[o.split("=")[0].split(".")[-1] + o.split("=")[1] for o in overrides]])
    work = out / tag.replace("/", "_")
    options = [f"data.{split}.data_prefix={cifar_root}" for split in ("train", "val", "test")]
    options += ["log_config.interval=5", "evaluation.interval=1000", *overrides]
    spied = (work, spy, work.with_suffix(".spy.txt")) if spy else None
    with GpuSampler() as gpu:
        status, wall = bidl(
            "train", config, "--work-dir", str(work), "--device", device,
            "--cfg-options", *options, log=work.with_suffix(".log"), spy=spied,
        )  # fmt: skip
    if spied:
        spy_summary(spied[2], emit, spec)
    records = [r for r in read_log(work) if r.get("mode") == "train"]
    later = [r for r in records if r["epoch"] > 1] or records
    row = dict(
        bench="bidl_train_e2e", config=config, overrides=overrides, status=status, wall_s=wall,
        iterations=len(records) and records[-1]["iter"] * records[-1]["epoch"],
        samples_per_s=statistics.median(r["samples_per_s"] for r in later) if later else None,
        data_wait=statistics.median(r["data_wait"] for r in later) if later else None,
        host_data_wait=statistics.median(r.get("host_data_wait", r["data_wait"]) for r in later)
        if later
        else None,
        ms_per_iter=1e3 * statistics.median(r["time"] for r in later) if later else None,
        data_ms=1e3 * statistics.median(r["data_time"] for r in later) if later else None,
        memory_mib=max((r.get("memory", 0) for r in records), default=None),
        gpu_util=gpu.mean(*training_window(work)),
        gpu_util_whole_run=gpu.mean(),
        execution=_execution_line(work),
    )  # fmt: skip
    if status:
        row["tail"] = work.with_suffix(".log").read_text()[-1500:]
    emit(**row)
    return row


def _execution_line(work: Path) -> str | None:
    log = work / "train.log"
    if not log.exists():
        return None
    for line in log.read_text().splitlines():
        if "execution:" in line:
            return line.split("execution:", 1)[1].strip()
    return None


def run_digits(out: Path, emit, device: str, seeds=(0,)) -> None:
    """The README's main job: prepare the embedded data set (once), then train; wall clocks.
    Several ``seeds`` show the spread of the final accuracy."""
    root = out / "digits_dvs"
    status, prepare_s = 0, 0.0
    if not (root / "meta.json").exists():
        status, prepare_s = bidl(
            "data", "prepare", "digits_dvs", "--root", str(root), log=out / "prepare.log"
        )
    options = [f"data.{split}.data_prefix={root}" for split in ("train", "val", "test")]
    for seed in seeds:
        work = out / f"digits_work_seed{seed}"
        status2, train_s = bidl(
            "train", "clif3fc3dm_itout-b16x1-digitsdvs", "--work-dir", str(work), "--device",
            device, "--seed", str(seed), "--cfg-options", *options,
            log=out / f"digits_train_seed{seed}.log",
        )  # fmt: skip
        val = [r for r in read_log(work) if r.get("mode") == "val"]
        epochs = _epoch_seconds(out / f"digits_train_seed{seed}.log")
        emit(
            bench="digitsdvs_main_job", seed=seed, status=[status, status2], prepare_s=prepare_s,
            train_wall_s=train_s, epochs_s=epochs, sum_epochs_s=sum(epochs),
            top1=val[-1]["accuracy_top-1"] if val else None,
            top1_per_epoch=[round(r["accuracy_top-1"], 2) for r in val],
            execution=_execution_line(work),
        )  # fmt: skip


def _epoch_seconds(console_log: Path) -> list[float]:
    """Seconds of each epoch (training, validation, checkpoints) off the console lines."""
    seconds = []
    for line in console_log.read_text().splitlines() if console_log.exists() else []:
        if line.startswith("epoch ") and "; " in line:
            for part in line.split("; "):
                part = part.split(", ")[0].strip()  # "6.1 s, ETA 42.7 s"
                if part.endswith(" s") and part[:-2].replace(".", "").isdigit():
                    seconds.append(float(part[:-2]))
                    break
    return seconds


def time_step(forward, optimizer, iters: int) -> float:
    """Mean seconds of one training step: ``forward()`` gives the loss."""
    from bench_common import timeit

    def step():
        loss = forward()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timeit(step, iters=iters, warm=5)


def bidl_model_step(config: str, iters: int, graphed: bool = False) -> tuple[float, int]:
    """The config's model as ``bidl train`` sets it up (multi-step form, channels_last,
    cuDNN autotuning; forward and backward from CUDA graphs with ``graphed``, as
    ``runner.cuda_graph='auto'`` does, else eager) on a synthetic batch already on the GPU."""
    import torch

    from bidl.config import load_config
    from bidl.engine.apis import build_model
    from bidl.engine.execution import prepare_model
    from bidl.optim.optimizer import build_optimizer

    device = torch.device("cuda")
    cfg = load_config(config)
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    prepare_model(model, cfg.get("runner"), device)
    model.train()
    batch = int(cfg.data.samples_per_gpu)
    xs = model.backbone.example_input(batch).to(device)
    labels = torch.randint(0, int(getattr(model.backbone, "nclass", 10)), (batch,), device=device)
    optimizer = build_optimizer(model, cfg.optimizer)
    forward = model
    if graphed:
        from bidl.engine.graphed_step import GraphedLosses

        forward = GraphedLosses(model, required=True)
    return time_step(lambda: forward(xs, labels)["loss"], optimizer, iters), batch


def spikingjelly_step(channels_last: bool, iters: int) -> float:
    """SpikingJelly 2.0's multi-step network of ``bench_train.py``, B=64, T=10, Adam."""
    import torch
    from bench_train import build_spikingjelly

    torch.manual_seed(0)
    net = build_spikingjelly().cuda()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    xs = (torch.rand(64, 10, 2, 128, 128, device="cuda") < 0.1).float()
    labels = torch.randint(0, 10, (64,), device="cuda")
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    return time_step(lambda: loss_fn(net(xs), labels), optimizer, iters)


def loader_only(spec: str, cifar_root: Path, emit, device: str, batches: int = 60) -> None:
    """The data path alone: the config's train loader (its workers, pinned memory) and the
    image steps on the GPU, no model: how many samples per second it can feed."""
    import torch

    from bidl.config import load_config
    from bidl.engine.apis import build_datasets
    from bidl.engine.dataloader import build_dataloader
    from bidl.engine.device_batch import install_device_augmentation

    config, *overrides = shlex.split(spec)
    options = dict(o.split("=", 1) for o in overrides if not o.startswith("runner."))
    options = {k: json.loads(v) if v[:1].isdigit() or v in ("true", "false") else v
               for k, v in options.items()}  # fmt: skip
    options.update({f"data.{s}.data_prefix": str(cifar_root) for s in ("train", "val", "test")})
    cfg = load_config(config, options)
    dataset = build_datasets(cfg, ("train",))["train"]
    augment = install_device_augmentation(dataset)
    workers = int(cfg.data.get("workers_per_gpu", 0))
    loader = build_dataloader(
        dataset, int(cfg.data.samples_per_gpu), workers, shuffle=True, drop_last=True,
        pin_memory=True, persistent_workers=True,
    )  # fmt: skip
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    seen, start = 0, None
    while seen < batches:
        for batch in loader:
            img = augment(batch, device)["img"] if augment else batch["img"].to(device)
            seen += 1
            if seen == 10:  # workers started and warm
                sync()
                start, first = time.perf_counter(), seen
            if seen >= batches:
                break
    sync()
    rate = (seen - first) * img.shape[0] / (time.perf_counter() - start)
    emit(bench="loader_only", config=config, workers=workers, samples_per_s=rate,
         img=list(img.shape), dtype=str(img.dtype), device_steps=repr(augment))  # fmt: skip


def profile_step(config: str) -> None:
    """Where the time of the model step goes: CUDA kernels and the host's share."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from bidl.config import load_config
    from bidl.engine.apis import build_model
    from bidl.engine.execution import prepare_model
    from bidl.optim.optimizer import build_optimizer

    device = torch.device("cuda")
    cfg = load_config(config)
    model = build_model(cfg).to(device)
    prepare_model(model, cfg.get("runner"), device)
    batch = int(cfg.data.samples_per_gpu)
    xs = model.backbone.example_input(batch).to(device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    optimizer = build_optimizer(model, cfg.optimizer)

    def step():
        loss = model(xs, labels)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=15,
                                      max_name_column_width=50)  # fmt: skip
    events = prof.key_averages()
    cuda_ms = sum(e.self_device_time_total for e in events) / 3e3
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel")) / 3
    print(f"profile of {config}: {cuda_ms:.2f} ms of kernels and {launches:.0f} launches "
          f"per step\n{table}", flush=True)  # fmt: skip


def model_steps(configs: list[str], emit, iters: int = 20) -> None:
    """The model steps alone, bidl's and SpikingJelly 2.0's, side by side."""
    for config in configs:
        for graphed in (False, True):
            impl = f"bidl {config}" + (" cuda graph" if graphed else " eager")
            try:
                seconds, batch = bidl_model_step(config, iters, graphed)
                emit(bench="model_step", impl=impl, ms=seconds * 1e3,
                     samples_per_s=batch / seconds)  # fmt: skip
            except Exception as err:
                emit(bench="model_step", impl=impl, error=repr(err)[:300])
    for channels_last in (False, True):
        name = "spikingjelly2 multistep" + (" channels_last" if channels_last else "")
        try:
            seconds = spikingjelly_step(channels_last, iters)
            emit(bench="model_step", impl=name, ms=seconds * 1e3, samples_per_s=64 / seconds)
        except Exception as err:  # the side-by-side figure is optional
            emit(bench="model_step", impl=name, error=repr(err)[:300])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar-root", default="/tmp/bidl_e2e/cifar10dvs")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--run", action="append", default=[], help="config and overrides")
    parser.add_argument("--digits", action="store_true", help="the DigitsDVS main job")
    parser.add_argument("--digits-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--model-step", action="store_true", help="model steps alone, and SJ")
    parser.add_argument("--step-config", action="append", default=[], help="another model step")
    parser.add_argument("--loader-only", action="store_true", help="each run's data path alone")
    parser.add_argument("--profile", nargs="*", default=[], help="configs whose step to profile")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--stacks", type=float, default=0, help="seconds of stack samples a run")
    parser.add_argument("--out", default="/tmp/bidl_e2e/runs")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    emit = Emitter(args.json)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.run:
        seconds = write_cifar10dvs(Path(args.cifar_root), args.files, args.events)
        emit(bench="write_cifar10dvs", files=args.files, events=args.events, seconds=seconds)
    for spec in args.run if args.loader_only else []:
        loader_only(spec, Path(args.cifar_root), emit, args.device)
    for spec in args.run:
        run_train(spec, Path(args.cifar_root), out, emit, args.device, args.stacks)
    if args.digits:
        run_digits(out, emit, args.device, args.digits_seeds)
    if args.model_step:
        steps = {shlex.split(spec)[0] for spec in args.run} | set(args.step_config)
        model_steps(sorted(steps), emit)
    for config in args.profile:
        profile_step(config)
    print(f"\n{'what':48s} {'samples/s':>10s} {'ms/it':>8s} {'wait':>6s} {'gpu %':>6s}")
    for row in emit.rows:
        if row.get("bench") == "bidl_train_e2e":
            name = " ".join([row["config"], *row["overrides"]])[:48]
            print(
                f"{name:48s} {row['samples_per_s'] or 0:10.0f} {row['ms_per_iter'] or 0:8.2f} "
                f"{row['data_wait'] or 0:6.1%} {row['gpu_util'] or 0:6.0f}"
            )
        elif row.get("bench") == "model_step" and "ms" in row:
            print(
                f"{'step alone: ' + row['impl']:48s} {row['samples_per_s']:10.0f} {row['ms']:8.2f}"
            )
        elif row.get("bench") == "loader_only":
            print(f"{'data path alone: ' + row['config']:48s} {row['samples_per_s']:10.0f}")
        elif row.get("bench") == "digitsdvs_main_job":
            print(
                f"DigitsDVS main job, seed {row['seed']}: bidl train {row['train_wall_s']:.1f} s "
                f"(epochs {row['sum_epochs_s']:.1f} s), top-1 {row['top1']}"
            )


if __name__ == "__main__":
    main()
