"""The DigitsDVS event cache: generated once, checked against its parameters, loaded.

<root>/events.npz   x, y (uint8), t (int64, us), p (uint8: 1 ON, 0 OFF) of all samples
                    back to back, offsets [N + 1], labels [N], train_idx, test_idx
<root>/meta.json    seed, size, generator version, counts (written last)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from ... import fileio
from ...locking import dataset_lock, waiting_lock
from ...registry import BidlError
from ..base import DatasetNotFoundError
from ..npz_cache import read_meta, read_npz, write_npz
from .simulate import (
    DURATION_US,
    FRAMES_PER_SACCADE,
    GENERATOR_VERSION,
    NUM_DIGITS,
    THRESHOLD,
    simulate_digits,
)

TEST_SIZE = 0.2
MIN_SAMPLES = 50
EVENTS_FILE = "events.npz"
META_FILE = "meta.json"
PREPARE_COMMAND = "bidl data prepare digits_dvs --root {root}"
LAYOUT = (
    "  <root>/events.npz   event arrays x, y, t, p, offsets, labels, train_idx, test_idx\n"
    "  <root>/meta.json    seed, size, generator version, counts"
)
_ARRAY_KEYS = ("x", "y", "t", "p", "offsets", "labels", "train_idx", "test_idx")


def _check_args(seed, size, num_samples) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BidlError(f"DigitsDVS: seed must be a non-negative int, got {seed!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 16 <= size <= 255:
        raise BidlError(f"DigitsDVS: size must be an int in [16, 255], got {size!r}")
    if num_samples is None:
        return NUM_DIGITS
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, (int, np.integer))
        or not MIN_SAMPLES <= num_samples <= NUM_DIGITS
    ):
        raise BidlError(
            f"DigitsDVS: num_samples must be None (all {NUM_DIGITS}) or an int in "
            f"[{MIN_SAMPLES}, {NUM_DIGITS}], got {num_samples!r}"
        )
    return int(num_samples)


def _read_meta(root: Path) -> dict | None:
    return read_meta(root / META_FILE)


def cache_problem(root: str | Path, seed: int = 0, size: int = 34, num_samples=None) -> str | None:
    """Why the cache in ``root`` cannot serve (seed, size, num_samples); None if it can."""
    root = Path(root)
    count = _check_args(seed, size, num_samples)
    meta = _read_meta(root)
    if meta is None:
        return f"{META_FILE} is missing or unreadable"
    if not (root / EVENTS_FILE).is_file():
        return f"{EVENTS_FILE} is missing"
    wanted = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "size": int(size),
        "num_samples": count,
    }
    wrong = [f"{k} {meta.get(k)!r} (wanted {v!r})" for k, v in wanted.items() if meta.get(k) != v]
    if wrong:
        return "the cache was made with " + ", ".join(wrong)
    return None


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through ``bidl.fileio``: a temp file beside ``path``, fsync, rename."""
    fileio.atomic_write(path, write)


def generate_digits_dvs(seed: int = 0, size: int = 34, num_samples: int | None = None) -> dict:
    """Simulate the events of the digits and split them; returns the cache arrays."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    count = _check_args(seed, size, num_samples)
    digits = load_digits()
    images = digits.images[:count] / 16.0
    labels = digits.target[:count].astype(np.int64)
    arrays = simulate_digits(images, size=size, seed=seed)
    train_idx, test_idx = train_test_split(
        np.arange(count), test_size=TEST_SIZE, stratify=labels, random_state=seed
    )
    return {
        **arrays,
        "labels": labels,
        "train_idx": np.sort(train_idx).astype(np.int64),
        "test_idx": np.sort(test_idx).astype(np.int64),
    }


def prepare_digits_dvs(
    root: str | Path,
    seed: int = 0,
    size: int = 34,
    overwrite: bool = False,
    *,
    num_samples: int | None = None,
    verbose: bool = False,
) -> Path:
    """Generate the DigitsDVS event cache in ``root`` (unless a matching one is there and
    ``overwrite`` is False) and return ``root``. ``num_samples`` keeps only the first
    digits (for quick tests); the per-pixel noise then differs from the full set's."""
    root = Path(root)
    count = _check_args(seed, size, num_samples)
    if not overwrite and cache_problem(root, seed, size, num_samples) is None:
        return root
    # one writer at a time: a second process waits, then finds the cache built
    with waiting_lock(dataset_lock(root, "DigitsDVS")):
        if not overwrite and cache_problem(root, seed, size, num_samples) is None:
            return root
        _generate_into(root, seed, size, num_samples, count, verbose)
    return root


def _generate_into(root: Path, seed: int, size: int, num_samples, count: int, verbose: bool):
    root.mkdir(parents=True, exist_ok=True)
    (root / META_FILE).unlink(missing_ok=True)  # the old cache is no longer trusted
    start = time.perf_counter()
    arrays = generate_digits_dvs(seed=seed, size=size, num_samples=num_samples)
    seconds = time.perf_counter() - start
    _atomic_write(root / EVENTS_FILE, lambda f: write_npz(f, arrays))
    lengths = np.diff(arrays["offsets"])
    meta = {
        "dataset": "DigitsDVS",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "size": int(size),
        "num_samples": count,
        "num_train": int(arrays["train_idx"].size),
        "num_test": int(arrays["test_idx"].size),
        "num_events": int(arrays["t"].size),
        "events_per_sample": {
            "mean": float(lengths.mean()),
            "min": int(lengths.min()),
            "max": int(lengths.max()),
        },
        "duration_us": DURATION_US,
        "render_frames": 3 * FRAMES_PER_SACCADE + 1,
        "threshold": THRESHOLD,
        "sensor_size": [int(size), int(size)],
        "classes": [str(i) for i in range(10)],
        "generation_seconds": round(seconds, 3),
    }
    text = json.dumps(meta, indent=2).encode()
    _atomic_write(root / META_FILE, lambda f: f.write(text))
    if verbose:
        print(
            f"DigitsDVS: wrote {count} samples, {meta['num_events']} events "
            f"({meta['events_per_sample']['mean']:.0f} per sample) to {root} in {seconds:.1f} s"
        )


def load_digits_dvs_events(root: str | Path) -> tuple[dict, dict]:
    """The cache's arrays and meta (no check against a seed or size)."""
    root = Path(root)
    meta = _read_meta(root)
    if meta is None:
        raise DatasetNotFoundError(f"DigitsDVS: {root / META_FILE} is missing or unreadable")
    fix = f"regenerate it with {PREPARE_COMMAND.format(root=root)} and overwrite, or delete the folder"
    arrays = read_npz(root / EVENTS_FILE, _ARRAY_KEYS, "DigitsDVS", fix)
    return arrays, meta
