"""Data loaders whose order and augmentation depend only on (seed, epoch, sample), so a
resumed run sees exactly the batches an uninterrupted one would, with any number of
workers.

Each sample is prepared with numpy's and ``random``'s global generators seeded from
``(seed, epoch, index)``: the random choices of a sample do not depend on which worker
loads it, nor on what that worker loaded before. So workers can persist across epochs
(the sampler sends the epoch with every index) without changing any batch.
"""

from __future__ import annotations

import bisect
import os
import queue
import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler
from torch.utils.data._utils.pin_memory import pin_memory as pin_batch

from ..registry import BidlError
from .sample_checks import number_of_classes, sample_problem


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


@contextmanager
def _seeded(seed: int, epoch: int, index: int, restore: bool):
    """numpy's and ``random``'s global generators seeded from ``(seed, epoch, index)``;
    ``restore`` puts their previous states back afterwards (the main process's)."""
    saved = (np.random.get_state(), random.getstate()) if restore else None
    key = [seed % 2**32, epoch % 2**32, index % 2**32]
    np.random.seed(key)
    random.seed((key[0] << 64) | (key[1] << 32) | key[2])
    try:
        yield
    finally:
        if saved is not None:
            np.random.set_state(saved[0])
            random.setstate(saved[1])


class _NamedSamples(Dataset):
    """Wraps a dataset so that an error loading one sample names the sample, and each
    sample's random choices come from ``(seed, epoch, index)``. Keys are ``(epoch, index)``
    pairs (from ``EpochSampler``) or plain indices (epoch 0)."""

    def __init__(self, dataset: Dataset, seed: int = 0):
        self.dataset = dataset
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        in_worker = torch.utils.data.get_worker_info() is not None
        try:
            with _seeded(self.seed, epoch, index, restore=not in_worker):
                sample = self.dataset[index]
        except SampleError:
            raise
        except Exception as err:
            raise SampleError(
                f"loading {describe_sample(self.dataset, index)} failed: "
                f"{type(err).__name__}: {err}"
            ) from err
        problem = sample_problem(sample, number_of_classes(self.dataset))
        if problem:  # NaN frames, labels out of range: one error naming the sample
            raise SampleError(
                f"{describe_sample(self.dataset, index)}: {problem}; the data (a cache, an "
                f"event file or a pipeline step) is damaged. Rebuild or fix it."
            )
        return sample


class EpochSampler(Sampler):
    """Yields ``(epoch, index)``: the order of ``sampler`` (given ``set_epoch`` when it has
    one, e.g. ``DistributedSampler``), else a permutation drawn from ``(seed, epoch)``
    (``shuffle``) or ``0..n-1``."""

    def __init__(self, length: int, shuffle: bool, seed: int, epoch: int = 0, sampler=None):
        self.length, self.shuffle, self.seed = length, shuffle, int(seed)
        self.sampler = sampler
        self.epoch = int(epoch)
        self._drives_sampler = False  # a caller may have set the given sampler's epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._drives_sampler = True

    def __len__(self) -> int:
        return len(self.sampler) if self.sampler is not None else self.length

    def __iter__(self):
        if self.sampler is not None:
            if self._drives_sampler and hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(self.epoch)
            order = iter(self.sampler)
        elif self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed * 100003 + self.epoch)
            order = iter(torch.randperm(self.length, generator=generator).tolist())
        else:
            order = iter(range(self.length))
        epoch = self.epoch
        for index in order:
            yield epoch, int(index)


class _Loader(DataLoader):
    """A ``DataLoader`` whose errors are ``BidlError``s: a sample that fails in a worker keeps
    its own message (not the worker's traceback), and a worker that dies says so.
    ``set_epoch`` picks the epoch of the next pass (order and random choices)."""

    _batches = None  # the last iterator (its worker processes, for error messages)
    pin_threads = 0  # > 0: batches are pinned by this many threads, not torch's one
    pin_fn = staticmethod(pin_batch)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        if not self.pin_threads:
            yield from self._batches_named()
            return
        # A thread takes the batches from the workers (unpickling, receiving the shared
        # memory) and hands them to pinning threads -- pinning a batch left in shared memory
        # first faults its pages in -- so the training step waits only for late data.
        ready: queue.Queue = queue.Queue(maxsize=self.pin_threads + 2)
        stop = threading.Event()
        with ThreadPoolExecutor(self.pin_threads, thread_name_prefix="bidl-pin") as pool:
            fetcher = threading.Thread(
                target=self._fetch, args=(pool, ready, stop), name="bidl-fetch", daemon=True
            )
            fetcher.start()
            try:
                while True:
                    item = ready.get()
                    if item is None:
                        return
                    if isinstance(item, BaseException):
                        raise item
                    yield item.result()
            finally:
                stop.set()
                fetcher.join()

    def _fetch(self, pool, ready: queue.Queue, stop: threading.Event) -> None:
        """Runs in the fetching thread: batches from the workers into ``ready`` (pinned
        futures, in order), then None; an error is put there for the consumer to raise."""

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for batch in self._batches_named():
                if not put(pool.submit(self.pin_fn, batch)):
                    return
        except BaseException as err:  # noqa: BLE001 (handed to the consumer's thread)
            put(err)
            return
        put(None)

    def _batches_named(self):
        batches = self._batches = super().__iter__()
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
                raise self.worker_error(err) from None
            yield batch

    def worker_error(self, err: Exception) -> LoaderWorkerError:
        return LoaderWorkerError(
            f"a data-loader worker of {type(self.dataset.dataset).__name__} died: "
            f"{_worker_deaths(self._batches) or err} "
            f"(a worker killed by SIGKILL is often the out-of-memory killer). Lower "
            f"data.workers_per_gpu or data.samples_per_gpu, or set workers_per_gpu=0 to "
            f"load in the main process."
        )

    @contextmanager
    def reporting_worker_deaths(self):
        """Report a worker's death noticed anywhere inside as a ``LoaderWorkerError``: torch's
        SIGCHLD handler raises in the main thread wherever it is, often in the model step."""
        try:
            yield
        except RuntimeError as err:
            if "DataLoader worker" not in str(err):
                raise
            raise self.worker_error(err) from None


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
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    pin_threads: int = 0,
) -> DataLoader:
    """A loader over ``dataset`` whose batches depend only on ``(seed, epoch)``; call its
    ``set_epoch`` before each pass to reuse it (and its persistent workers) for the next
    epoch. ``prefetch_factor``: batches each worker keeps ready (torch's default 2).
    ``pin_threads`` > 0 with ``pin_memory`` and several workers: a thread takes the batches
    from the workers and that many threads pin them, instead of torch's one pinning thread
    (more batches per second from the workers; but on a host-bound training step the
    extra threads take the interpreter from it: 0 by default, see benchmarks/RESULTS.md)."""
    workers = int(workers_per_gpu)
    order = EpochSampler(len(dataset), shuffle, seed, epoch, sampler)
    extra = {}
    if workers > 0:
        extra["persistent_workers"] = bool(persistent_workers)
        if prefetch_factor is not None:
            extra["prefetch_factor"] = int(prefetch_factor)
    generator = torch.Generator()  # torch's worker seeds: never drawn from the global generator
    generator.manual_seed(int(seed) * 100003 + int(epoch))
    own_pinning = pin_memory and workers > 1 and pin_threads > 0 and torch.cuda.is_available()
    loader = _Loader(
        _NamedSamples(dataset, seed),
        batch_size=samples_per_gpu,
        sampler=order,
        num_workers=workers,
        generator=generator,
        drop_last=drop_last,
        pin_memory=pin_memory and not own_pinning,
        **extra,
    )
    loader.pin_threads = min(int(pin_threads), workers) if own_pinning else 0
    return loader


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
