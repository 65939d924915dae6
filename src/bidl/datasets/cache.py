"""Memory-mapped sample caches: one split of a dataset decoded once into ``.npy`` files.

A split ``S`` of a cache folder is three files::

    S_img.npy     [N, *sample_shape]  the decoded samples (read back memory-mapped)
    S_label.npy   [N] int64           their labels
    S.json        what made them (dataset, parameters), counts, shape, dtype, classes

The arrays are written into temporary files and renamed into place; ``S.json`` comes
last, so an interrupted build leaves no split that looks complete, and a rerun starts
that split again.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..registry import BidlError

CACHE_VERSION = 1


def _paths(folder: Path, split: str) -> tuple[Path, Path, Path]:
    return folder / f"{split}_img.npy", folder / f"{split}_label.npy", folder / f"{split}.json"


def _temp_path(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_meta(folder: str | Path, split: str) -> dict | None:
    """The split's ``S.json``, or None if it is missing or unreadable."""
    try:
        return json.loads(_paths(Path(folder), split)[2].read_text())
    except (OSError, ValueError):
        return None


def cache_problem(folder: str | Path, split: str, params: dict) -> str | None:
    """Why ``folder`` holds no usable cache of ``split`` made with ``params``; None if it does."""
    folder = Path(folder)
    meta = read_meta(folder, split)
    if meta is None:
        return f"{folder / (split + '.json')} is missing"
    if meta.get("version") != CACHE_VERSION or meta.get("params") != params:
        return f"the cache in {folder} was made with other parameters"
    for path in _paths(folder, split)[:2]:
        if not path.is_file():
            return f"{path} is missing"
    return None


def write_split(
    folder: str | Path,
    split: str,
    params: dict,
    samples: Iterable[tuple[np.ndarray, int]],
    count: int,
    classes: list[str] | None = None,
    verbose: bool = False,
    desc: str = "",
) -> dict:
    """Write ``count`` (array, label) pairs from ``samples`` as split ``split`` of ``folder``.

    Every array must have the first one's shape and dtype. Returns the meta written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    img_path, label_path, meta_path = _paths(folder, split)
    meta_path.unlink(missing_ok=True)  # the old split is no longer trusted
    for stale in folder.glob(f".{split}_*.tmp"):
        stale.unlink(missing_ok=True)  # left by an interrupted build
    if count < 1:
        raise BidlError(f"{desc or folder}: split {split!r} has no samples to cache")
    img_tmp, label_tmp = _temp_path(img_path), _temp_path(label_path)
    try:
        images = None
        labels = np.zeros(count, dtype=np.int64)
        done = 0
        bar = tqdm(total=count, desc=f"{desc} {split}".strip(), disable=not verbose, unit="sample")
        for array, label in samples:
            array = np.asarray(array)
            if images is None:
                images = np.lib.format.open_memmap(
                    img_tmp, mode="w+", dtype=array.dtype, shape=(count, *array.shape)
                )
            elif array.shape != images.shape[1:] or array.dtype != images.dtype:
                raise BidlError(
                    f"{desc}: sample {done} of split {split!r} has shape {array.shape} "
                    f"{array.dtype}, the first had {images.shape[1:]} {images.dtype}"
                )
            images[done] = array
            labels[done] = int(label)
            done += 1
            bar.update()
        bar.close()
        if done != count:
            raise BidlError(f"{desc}: expected {count} samples in split {split!r}, got {done}")
        images.flush()
        shape, dtype = list(images.shape[1:]), images.dtype.str
        del images
        with open(label_tmp, "wb") as handle:
            np.save(handle, labels, allow_pickle=False)
        _replace(img_tmp, img_path)
        _replace(label_tmp, label_path)
    finally:
        img_tmp.unlink(missing_ok=True)
        label_tmp.unlink(missing_ok=True)
    meta = {
        "version": CACHE_VERSION,
        "params": params,
        "count": count,
        "sample_shape": shape,
        "dtype": dtype,
        "classes": classes,
        "class_counts": np.bincount(labels, minlength=len(classes or [])).tolist(),
        "bytes": img_path.stat().st_size + label_path.stat().st_size,
    }
    write_bytes_atomic(meta_path, json.dumps(meta, indent=1).encode())
    return meta


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        tmp.write_bytes(data)
        _replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_split(folder: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """The split's samples (memory-mapped read-only), labels and meta."""
    img_path, label_path, _ = _paths(Path(folder), split)
    meta = read_meta(folder, split)
    try:
        images = np.load(img_path, mmap_mode="r", allow_pickle=False)
        labels = np.load(label_path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise BidlError(
            f"cannot read the cache {img_path} ({err}); delete {folder} and prepare again"
        ) from None
    if meta is None or images.shape[0] != labels.shape[0]:
        raise BidlError(f"the cache in {folder} is inconsistent; delete it and prepare again")
    return images, labels, meta


def describe_split(meta: dict, split: str) -> str:
    """One summary line: samples per class, tensor shape and dtype, size on disk."""
    classes = meta.get("classes") or [str(i) for i in range(len(meta["class_counts"]))]
    per_class = ", ".join(
        f"{name}: {n}" for name, n in zip(classes, meta["class_counts"], strict=False)
    )
    shape = "x".join(str(s) for s in meta["sample_shape"])
    return (
        f"{split}: {meta['count']} samples of [{shape}] {np.dtype(meta['dtype']).name}, "
        f"{meta['bytes'] / 2**20:.1f} MiB ({per_class})"
    )


def iterate_decoded(refs, labels, decode: Callable) -> Iterable[tuple[np.ndarray, int]]:
    """``(decode(ref), label)`` for each sample reference, in order."""
    for ref, label in zip(refs, labels, strict=True):
        yield decode(ref), label
