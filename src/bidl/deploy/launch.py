"""Start a device grid: one process per device, on this host (started here, each a fresh
``python -m bidl.deploy.launch`` so that nothing depends on the caller's main module) or as
the processes of a ``torchrun`` job (one rank each, across hosts too)."""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..registry import BidlError
from .grid import (
    ArrayInput,
    DatasetInput,
    DeviceGrid,
    GridResult,
    RankReport,
    default_threads,
    grid_result,
    run_grid_process,
)
from .segments import segment_artifacts

DIST_BACKENDS = ("gloo", "nccl")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _devices(grid: DeviceGrid, rank: int, device_type: str, backend: str):
    """(compute device, device messages travel from) of process ``rank``."""
    if device_type == "cuda":
        device = torch.device("cuda", grid.device_id(rank))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return device, (device if backend == "nccl" else torch.device("cpu"))


def _check(grid: DeviceGrid, device_type: str, backend: str) -> None:
    if backend not in DIST_BACKENDS:
        raise BidlError(f"unknown backend {backend!r}; use one of {', '.join(DIST_BACKENDS)}")
    if device_type not in ("cpu", "cuda"):
        raise BidlError(f"device {device_type!r}: use 'cpu' or 'cuda'")
    if device_type == "cuda":
        if not torch.cuda.is_available():
            raise BidlError("device 'cuda': this machine has no CUDA device; use 'cpu'")
        count = torch.cuda.device_count()
        too_high = [d for row in grid.rows for d in row if d >= count]
        if too_high:
            raise BidlError(
                f"the grid {grid} names GPU(s) {too_high}, but this host has {count} "
                f"(ids 0..{count - 1})"
            )
    if backend == "nccl" and device_type != "cuda":
        raise BidlError("backend 'nccl' connects GPUs; CPU processes use 'gloo'")


def _run_rank(rank, grid, folders, source, device_type, backend, threads, warmup) -> list | None:
    device, comm_device = _devices(grid, rank, device_type, backend)
    if device_type == "cpu":
        torch.set_num_threads(threads)
    # small control messages (counts, reports) go over gloo even between GPUs
    objects = dist.new_group(backend="gloo") if backend == "nccl" else None
    return run_grid_process(
        rank, grid, folders, source, device, comm_device, threads, warmup, objects
    )


def _source_spec(source) -> dict:
    if isinstance(source, ArrayInput):
        return {"kind": "array", "path": source.path}
    if isinstance(source, DatasetInput):
        return {
            "kind": "dataset",
            "config": source.config,
            "cfg_options": source.cfg_options,
            "split": source.split,
        }
    raise BidlError(f"unknown grid input {type(source).__name__}; use ArrayInput or DatasetInput")


def _source_from_spec(spec: dict):
    if spec["kind"] == "array":
        return ArrayInput(spec["path"])
    return DatasetInput(spec["config"], spec["cfg_options"], spec["split"])


def worker_main(argv: list[str]) -> int:
    """One started grid process: ``python -m bidl.deploy.launch SPEC RANK``. Rank 0 writes
    the reports and outputs beside SPEC; a failing process writes its error there."""
    spec_path, rank = Path(argv[0]), int(argv[1])
    spec = json.loads(spec_path.read_text())
    folder = spec_path.parent
    grid = DeviceGrid.parse(spec["grid"])
    try:
        dist.init_process_group(
            spec["backend"],
            init_method=f"tcp://127.0.0.1:{spec['port']}",
            rank=rank,
            world_size=grid.size,
            timeout=datetime.timedelta(seconds=spec["timeout_s"]),
        )
        try:
            reports = _run_rank(
                rank,
                grid,
                [Path(f) for f in spec["folders"]],
                _source_from_spec(spec["source"]),
                spec["device"],
                spec["backend"],
                spec["threads"],
                spec["warmup_batches"],
            )
            dist.barrier()  # all ranks done before any tears its connections down
        finally:
            dist.destroy_process_group()
        if rank == 0:
            _write_reports(folder, reports)
        return 0
    except Exception as err:  # the parent reads this and raises it as a BidlError
        message = str(err) if isinstance(err, BidlError) else f"{type(err).__name__}: {err}"
        (folder / f"error_{rank}.txt").write_text(message)
        return 1


def _write_reports(folder: Path, reports: list[RankReport]) -> None:
    outputs = reports[-1].outputs
    if outputs is not None:
        np.save(folder / "outputs.npy", outputs)
    rows = [{k: v for k, v in asdict(r).items() if k != "outputs"} for r in reports]
    (folder / "reports.json").write_text(json.dumps(rows))


def _read_reports(folder: Path) -> list[RankReport]:
    reports = [RankReport(**row) for row in json.loads((folder / "reports.json").read_text())]
    outputs = folder / "outputs.npy"
    if outputs.exists():
        reports[-1].outputs = np.load(outputs, allow_pickle=False)
    return reports


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait()


def _wait(processes: list[subprocess.Popen], folder: Path, timeout_s: float) -> None:
    """Wait for every process; the first failure stops the others and is raised."""
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            codes = [p.poll() for p in processes]
            failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                break
            if all(code == 0 for code in codes):
                return
            if time.monotonic() > deadline:
                raise BidlError(f"the grid run did not finish within {timeout_s:g} s; stopped it")
            time.sleep(0.02)
    finally:
        _stop(processes)
    # the process that failed first wrote why; the others lost their peer after it
    written = sorted(folder.glob("error_*.txt"), key=lambda p: p.stat().st_mtime)
    if written:
        rank = written[0].stem.split("_")[1]
        raise BidlError(f"grid process {rank} failed: {written[0].read_text()}")
    rank = failed[0]
    raise BidlError(
        f"grid process {rank} exited with code {codes[rank]} (killed, or out of memory)"
    )


def run_grid(
    artifact: str | os.PathLike,
    grid,
    data=None,
    *,
    source=None,
    labels: np.ndarray | None = None,
    device: str = "cpu",
    backend: str | None = None,
    threads: int | None = None,
    warmup_batches: int = 0,
    timeout_s: float = 600.0,
) -> GridResult:
    """Run samples through the compiled ``artifact`` (a pipeline of segments, or one step
    graph for a single-column grid) on ``grid`` (``[[...], ...]``), one process per device
    of this host; returns the outputs in sample order and the figures.

    ``data``: samples ``[N, T, ...]``; or ``source`` (``ArrayInput``, ``DatasetInput``).
    ``device``: 'cpu' (processes sharing this machine's cores, gloo) or 'cuda' (the grid's
    numbers are GPU ids, NCCL). ``backend`` overrides the choice of gloo / NCCL.
    """
    grid = grid if isinstance(grid, DeviceGrid) else DeviceGrid.parse(grid)
    backend = backend or ("nccl" if device == "cuda" else "gloo")
    _check(grid, device, backend)
    folders = segment_artifacts(artifact)
    if len(folders) != grid.segments:
        raise BidlError(
            f"{artifact}: holds {len(folders)} model segment(s) but the grid {grid} has "
            f"{grid.segments} column(s); give one column per segment"
        )
    threads = threads or default_threads(grid.size)
    with tempfile.TemporaryDirectory(prefix="bidl-grid-") as tmp:
        tmp = Path(tmp)
        if source is None:
            if data is None:
                raise BidlError("run_grid: give the samples (data) or a source")
            array = data.detach().cpu().numpy() if torch.is_tensor(data) else np.asarray(data)
            np.save(tmp / "samples.npy", array)
            source = ArrayInput(str(tmp / "samples.npy"))
        count = source.count()
        spec = {
            "grid": [list(row) for row in grid.rows],
            "folders": [str(Path(f).resolve()) for f in folders],
            "source": _source_spec(source),
            "device": device,
            "backend": backend,
            "threads": threads,
            "warmup_batches": warmup_batches,
            "timeout_s": timeout_s,
            "port": _free_port(),
        }
        (tmp / "spec.json").write_text(json.dumps(spec))
        command = [sys.executable, "-m", "bidl.deploy.launch", str(tmp / "spec.json")]
        processes = [subprocess.Popen([*command, str(rank)]) for rank in range(grid.size)]
        _wait(processes, tmp, timeout_s)
        reports = _read_reports(tmp)
    return grid_result(grid, reports, count, labels)


def run_grid_in_group(
    artifact: str | os.PathLike,
    grid,
    source,
    *,
    device: str = "cpu",
    warmup_batches: int = 0,
    threads: int | None = None,
) -> GridResult | None:
    """This process's share of a grid run inside a torchrun job (``RANK``, ``WORLD_SIZE``
    and the rendezvous in the environment); the result on rank 0, None on the others."""
    grid = grid if isinstance(grid, DeviceGrid) else DeviceGrid.parse(grid)
    backend = "nccl" if device == "cuda" else "gloo"
    _check(grid, device, backend)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != grid.size:
        raise BidlError(
            f"the grid {grid} has {grid.size} devices but torchrun started {world} "
            f"processes; start one per device (--nproc_per_node={grid.size})"
        )
    started_here = not dist.is_initialized()
    if started_here:
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    try:
        folders = segment_artifacts(artifact)
        rank = dist.get_rank()
        labels = source.labels() if rank == 0 else None
        reports = _run_rank(
            rank,
            grid,
            folders,
            source,
            device,
            backend,
            threads or default_threads(grid.size),
            warmup_batches,
        )
        # every rank done before any tears its connections down: a rank that left early
        # while the others still talked to it aborted in the communication threads
        dist.barrier()
    finally:
        if started_here:
            dist.destroy_process_group()
    if rank != 0:
        return None
    return grid_result(grid, reports, source.count(), labels)


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
