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
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import fileio
from ..registry import BidlError

CACHE_VERSION = 1


def _paths(folder: Path, split: str) -> tuple[Path, Path, Path]:
    return folder / f"{split}_img.npy", folder / f"{split}_label.npy", folder / f"{split}.json"


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
        if path.is_symlink() or not path.is_file():
            return f"{path} is missing (or not a regular file)"
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
    fileio.remove_stale_temp_files(folder, f".{split}_*.tmp")  # an interrupted build's
    if count < 1:
        raise BidlError(f"{desc or folder}: split {split!r} has no samples to cache")
    with fileio.staged_file(img_path) as img_tmp, fileio.staged_file(label_path) as label_tmp:
        images = None
        labels = np.zeros(count, dtype=np.int64)
        done = 0
        bar = tqdm(total=count, desc=f"{desc} {split}".strip(), disable=not verbose, unit="sample")
        for array, label in samples:
            array = np.asarray(array)
            if images is None:
                images = open_image_file(img_tmp, array.dtype, (count, *array.shape), img_path)
            elif array.shape != images.shape[1:] or array.dtype != images.dtype:
                raise BidlError(
                    f"{desc}: sample {done} of split {split!r} has shape {array.shape} "
                    f"{array.dtype}, the first had {images.shape[1:]} {images.dtype}"
                )
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                raise BidlError(
                    f"{desc}: sample {done} of split {split!r} has NaN or infinite values; "
                    f"the source file is damaged. Remove or repair it and prepare again."
                )
            images[done] = array
            labels[done] = _integer_label(label, f"{desc}: sample {done} of split {split!r}")
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
    """Write ``data`` to ``path`` durably (``bidl.fileio``)."""
    fileio.write_bytes(path, data)


def open_image_file(
    path: Path, dtype: np.dtype, shape: tuple[int, ...], target: Path | None = None
) -> np.memmap:
    """``path`` as an ``.npy`` file of ``shape``, memory-mapped for writing. Its disk space is
    allocated before it is mapped: a write through a map into space the disk cannot give
    kills the process with SIGBUS, while a failed allocation is an ordinary error."""
    dtype = np.dtype(dtype)
    with open(path, "r+b") as handle:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
        np.lib.format.write_array_header_2_0(handle, {**header, "shape": tuple(shape)})
        offset = handle.tell()
    size = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    fileio.reserve(path, size, target=target)
    return np.memmap(path, dtype=dtype, mode="r+", offset=offset, shape=tuple(shape))


def _integer_label(label, where: str) -> int:
    """A label as an int; a float that is not whole (2.5) is refused, not truncated."""
    value = label.item() if hasattr(label, "item") and np.ndim(label) == 0 else label
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise BidlError(f"{where}: label {label!r} is not an integer class index")
    if isinstance(value, float | np.floating) and not float(value).is_integer():
        raise BidlError(f"{where}: label {value!r} is not an integer class index")
    if value < 0:
        raise BidlError(f"{where}: label {value!r} is negative")
    return int(value)


def load_split(folder: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """The split's samples (memory-mapped read-only), labels and meta."""
    img_path, label_path, _ = _paths(Path(folder), split)
    meta = read_meta(folder, split)
    images = _load_array(img_path, folder, mmap_mode="r")
    labels = _load_array(label_path, folder)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise BidlError(
            f"the cache label file {label_path} holds {labels.dtype} values of shape "
            f"{list(labels.shape)}, not one integer label per sample; delete {folder} and "
            f"prepare again"
        )
    if meta is None or images.shape[0] != labels.shape[0]:
        raise BidlError(f"the cache in {folder} is inconsistent; delete it and prepare again")
    return images, labels, meta


def _load_array(path: Path, folder, mmap_mode=None) -> np.ndarray:
    """One array of a cache; an error names that file."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise BidlError(
            f"{path} is a link or not a regular file; a cache holds only its own files. "
            f"Delete {folder} and prepare again"
        )
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise BidlError(
            f"cannot read the cache file {path} ({err}); delete {folder} and prepare again"
        ) from None


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
