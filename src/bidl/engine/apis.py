"""What ``bidl train`` and ``bidl test`` do, callable from Python."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import fileio
from ..config import Config, config_name, load_config
from ..datasets import build_dataset
from ..locking import work_dir_lock
from ..models import build_classifier
from ..registry import BidlError
from .checkpoint import load_weights
from .dataloader import build_dataloader, seed_everything
from .detection import evaluate_detector, is_detector
from .distributed import init_dist, is_main_process, local_device
from .evaluation import predict
from .metrics import metric_options
from .runner import EpochBasedRunner, autocast_context


def resolve_device(name: str | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:1' or None (CUDA when there is one)."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BidlError(f"--device {name}: this machine has no CUDA device; use --device cpu")
    return device


def build_model(cfg: Config) -> torch.nn.Module:
    return build_classifier(cfg.model)


def build_datasets(cfg: Config, splits=("train", "val")) -> dict:
    return {split: build_dataset(cfg.data[split]) for split in splits if cfg.data.get(split)}


def default_work_dir(cfg: Config) -> Path:
    return Path("work_dirs") / config_name(cfg)


def train_model(
    config: str | os.PathLike,
    work_dir: str | None = None,
    cfg_options: dict | None = None,
    device: str | None = None,
    seed: int | None = None,
    deterministic: bool | None = None,
    launcher: str = "none",
    resume: bool = False,
) -> dict:
    """Train a config; returns the last validation metrics (rank 0's under torchrun).

    ``launcher='pytorch'``: one process of a torchrun job (data-parallel, ``dist_params``).
    ``resume``: continue from the work dir's ``latest.pth`` where there is one."""
    cfg = load_config(config, cfg_options)
    backend = (cfg.get("dist_params") or {}).get("backend")
    started = launcher != "none" and not torch.distributed.is_initialized()
    rank, _ = init_dist(launcher, backend)
    if launcher != "none" and device is None:
        device = str(local_device(backend or torch.distributed.get_backend()))
    work_dir = Path(work_dir or cfg.get("work_dir") or default_work_dir(cfg))
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg.work_dir = str(work_dir)
    resolve_start_checkpoints(cfg, work_dir, resume)
    seed = int(cfg.get("seed", 0) if seed is None else seed)
    deterministic = bool(
        cfg.get("deterministic", False) if deterministic is None else deterministic
    )
    lock = config_text = None
    try:
        if is_main_process():  # one run per work dir: a second one is refused, naming this one
            lock = work_dir_lock(work_dir).acquire()
            config_text = cfg.pretty_text
            fileio.write_text(work_dir / f"{config_name(cfg)}.py", config_text)
        seed_everything(seed + rank, deterministic)  # DDP copies rank 0's initial weights
        datasets = build_datasets(cfg)
        model = build_model(cfg)
        runner = EpochBasedRunner(
            cfg, model, datasets, work_dir, resolve_device(device), seed, config_text
        )
        return runner.run()
    finally:
        if lock is not None:
            lock.release()
        if started:
            torch.distributed.destroy_process_group()


def resolve_start_checkpoints(cfg: Config, work_dir: Path, resume: bool) -> None:
    """Set ``cfg.resume_from`` to the work dir's ``latest.pth`` for ``resume`` (unless one is
    given); look bare names in ``resume_from`` / ``load_from`` up in the work dir."""
    if resume and not cfg.get("resume_from"):
        latest = work_dir / "latest.pth"
        if latest.is_file():
            cfg.resume_from = str(latest)
        elif is_main_process():
            print(f"--resume: no latest.pth in {work_dir} yet; training from the start")
    for key in ("resume_from", "load_from"):
        if cfg.get(key):
            try:
                cfg[key] = str(find_checkpoint(cfg[key], cfg, str(work_dir)))
            except BidlError as err:
                raise BidlError(f"{key}: {err}") from None


def find_checkpoint(
    checkpoint: str | os.PathLike, cfg: Config, work_dir: str | None = None
) -> Path:
    """A path, or a bare file name looked up in the config's work dir (BIDL's habit)."""
    path = Path(checkpoint)
    if path.is_file():
        return path
    candidate = Path(work_dir or default_work_dir(cfg)) / path.name
    if candidate.is_file():
        return candidate
    raise BidlError(
        f"checkpoint {str(checkpoint)!r} not found (also looked for {str(candidate)!r}); "
        f"train first with `bidl train {config_name(cfg)}` or give the checkpoint's path"
    )


def evaluate_checkpoint(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    cfg_options: dict | None = None,
    device: str | None = None,
    work_dir: str | None = None,
    split: str = "test",
    out: str | None = None,
) -> dict:
    """Evaluate a checkpoint on the test split: top-1, top-5 (a detector: COCO mAP, mAP50,
    ...), samples/s, ms per sample."""
    cfg = load_config(config, cfg_options)
    dev = resolve_device(device)
    ckpt = find_checkpoint(checkpoint, cfg, work_dir)
    dataset = build_datasets(cfg, (split,))[split]
    model = build_model(cfg).to(dev)
    load_weights(model, ckpt, map_location=dev)
    loader = build_dataloader(
        dataset, int(cfg.data.samples_per_gpu), int(cfg.data.get("workers_per_gpu", 0))
    )
    autocast = autocast_context(cfg.get("fp16"), dev)
    if is_detector(model):
        metrics, seconds = evaluate_detector(model, dataset, loader, dev, autocast)
    else:
        scores, seconds = predict(model, loader, dev, autocast)
        metrics = dataset.evaluate(scores, metric_options=metric_options(cfg))
    metrics.update(
        samples=len(dataset),
        samples_per_s=len(dataset) / seconds,
        ms_per_sample=1000.0 * seconds / len(dataset),
        checkpoint=str(ckpt),
    )
    if out:
        fileio.write_json(out, metrics)
    return metrics
