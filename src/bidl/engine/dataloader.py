"""Data loaders whose order and augmentation depend only on (seed, epoch), so a resumed run
sees exactly the batches an uninterrupted one would."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a loader worker from the seed torch gave it."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_dataloader(
    dataset: Dataset,
    samples_per_gpu: int,
    workers_per_gpu: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    sampler=None,
) -> DataLoader:
    generator = torch.Generator()
    generator.manual_seed(seed * 100003 + epoch)
    return DataLoader(
        dataset,
        batch_size=samples_per_gpu,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers_per_gpu,
        generator=generator,
        worker_init_fn=seed_worker,
        drop_last=drop_last,
        pin_memory=pin_memory,
    )


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
