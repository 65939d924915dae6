"""Data loaders whose order and augmentation depend only on (seed, epoch), so a resumed run
sees exactly the batches an uninterrupted one would."""

from __future__ import annotations

import bisect
import os
import random
import signal

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from ..registry import BidlError


class SampleError(BidlError):
    """Loading one sample (the dataset's ``__getitem__`` or a pipeline step) failed."""


class LoaderWorkerError(BidlError):
    """A data-loader worker process died (killed by a signal, or exited)."""


def describe_sample(dataset: Dataset, index: int) -> str:
    """``TinyBlinks sample 5 (img='a/b.npy')``: the dataset, the index and the sample's files
    (the string fields of its annotation), looked up through a ``ConcatDataset``."""
    if isinstance(dataset, ConcatDataset) and 0 <= index < len(dataset):
        part = bisect.bisect_right(dataset.cumulative_sizes, index)
        offset = dataset.cumulative_sizes[part - 1] if part else 0
        return f"{describe_sample(dataset.datasets[part], index - offset)} of a ConcatDataset"
    text = f"{type(dataset).__name__} sample {index}"
    infos = getattr(dataset, "data_infos", None)
    try:
        info = infos[index] if infos is not None else None
    except (IndexError, KeyError, TypeError):
        info = None
    if isinstance(info, dict):
        files = [f"{k}={str(v)!r}" for k, v in info.items() if isinstance(v, str | os.PathLike)]
        if files:
            text += f" ({', '.join(files[:4])})"
    return text


class _NamedSamples(Dataset):
    """Wraps a dataset so that an error loading one sample names the sample."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        try:
            return self.dataset[index]
        except SampleError:
            raise
        except Exception as err:
            raise SampleError(
                f"loading {describe_sample(self.dataset, index)} failed: "
                f"{type(err).__name__}: {err}"
            ) from err


class _Loader(DataLoader):
    """A ``DataLoader`` whose errors are ``BidlError``s: a sample that fails in a worker keeps
    its own message (not the worker's traceback), and a worker that dies says so."""

    def __iter__(self):
        batches = super().__iter__()
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except SampleError as err:  # re-raised from a worker with its traceback
                message = str(err).rstrip().rsplit("SampleError: ", 1)[-1]
                raise SampleError(message) from None
            except RuntimeError as err:
                if "DataLoader worker" not in str(err):
                    raise
                raise LoaderWorkerError(
                    f"a data-loader worker of {type(self.dataset.dataset).__name__} died: "
                    f"{_worker_deaths(batches) or err} "
                    f"(a worker killed by SIGKILL is often the out-of-memory killer). Lower "
                    f"data.workers_per_gpu or data.samples_per_gpu, or set workers_per_gpu=0 to "
                    f"load in the main process."
                ) from None
            yield batch


def _worker_deaths(batches) -> str:
    """``worker pid 12 was killed by signal SIGKILL``, from the loader's worker processes."""
    deaths = []
    for worker in getattr(batches, "_workers", []):
        code = worker.exitcode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            deaths.append(f"worker pid {worker.pid} was killed by signal {name}")
        elif code:
            deaths.append(f"worker pid {worker.pid} exited with status {code}")
    return "; ".join(deaths)


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
    return _Loader(
        _NamedSamples(dataset),
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
