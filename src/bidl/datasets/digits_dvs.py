"""``DigitsDVS``: the embedded default dataset, real handwritten digits seen by a
simulated event camera.

scikit-learn ships 1797 handwritten digits of 8x8 pixels (no download). Each is
upsampled smoothly onto a ``size`` x ``size`` sensor (34 by default, like N-MNIST), moved
along three linear saccades forming a triangle (as the N-MNIST recordings were made),
rendered at sub-pixel offsets, and fed to an ESIM-style event camera
(``bidl.datasets.event_camera``). The events are generated once into a cache folder::

    <root>/events.npz   x, y (uint8), t (int64, us), p (uint8: 1 ON, 0 OFF) of all samples
                        back to back, offsets [N + 1], labels [N], train_idx, test_idx
    <root>/meta.json    seed, size, generator version, counts (written last)

and integrated into frames ``[T, 2, H, W]`` (channels OFF, ON) when the dataset loads.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from ..registry import DATASETS, BidlError
from .base import BaseDataset, DatasetNotFoundError
from .event_camera import EventCamera
from .events import events_to_frames_batch

GENERATOR_VERSION = 1
NUM_DIGITS = 1797
SOURCE_SIZE = 8
DURATION_US = 300_000
FRAMES_PER_SACCADE = 25  # 75 render intervals over the recording
THRESHOLD = 0.2
THRESHOLD_SIGMA = 0.03
REF_JITTER = 0.3
LOG_EPS = 0.1
TEST_SIZE = 0.2
MIN_SAMPLES = 50
CHUNK = 128  # digits simulated together (part of the generator: changing it changes events)
# triangle of the saccades on a 34-pixel sensor (dy, dx in pixels; scaled with the size)
_SACCADE_VERTICES = np.array([[-1.0, -2.0], [2.0, 0.0], [-1.0, 2.0]])
_DIGIT_FRACTION = 26.0 / 34.0  # the digit's 8 source pixels span this share of the sensor

EVENTS_FILE = "events.npz"
META_FILE = "meta.json"
PREPARE_COMMAND = "bidl data prepare digits_dvs --root {root}"
LAYOUT = (
    "  <root>/events.npz   event arrays x, y, t, p, offsets, labels, train_idx, test_idx\n"
    "  <root>/meta.json    seed, size, generator version, counts"
)
_ARRAY_KEYS = ("x", "y", "t", "p", "offsets", "labels", "train_idx", "test_idx")


# ---------------------------------------------------------------------------------------
# rendering


def _cubic_bspline(d: np.ndarray) -> np.ndarray:
    """The cubic B-spline kernel: smooth, non-negative, its shifted copies sum to one."""
    a = np.abs(d)
    inner = 2.0 / 3.0 - a**2 + 0.5 * a**3
    outer = (2.0 - a) ** 3 / 6.0
    return np.where(a < 1, inner, np.where(a < 2, outer, 0.0))


def upsample_matrix(size: int, source: int = SOURCE_SIZE) -> np.ndarray:
    """``[size, source]`` weights placing a ``source``-pixel axis, smoothly upsampled, in
    the middle of a ``size``-pixel axis (``_DIGIT_FRACTION`` of it); zeros around."""
    scale = size * _DIGIT_FRACTION / source
    centres = (np.arange(size) + 0.5 - size / 2) / scale + source / 2  # in source pixels
    dist = centres[:, None] - (np.arange(source)[None, :] + 0.5)
    return _cubic_bspline(dist)


def shift_matrix(size: int, shift: float) -> np.ndarray:
    """``[size, size]`` bilinear weights moving an axis by ``shift`` pixels (zeros enter)."""
    pos = np.arange(size) - shift
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    out = np.zeros((size, size))
    rows = np.arange(size)
    for idx, weight in ((lo, 1.0 - frac), (lo + 1, frac)):
        ok = (idx >= 0) & (idx < size)
        out[rows[ok], idx[ok]] += weight[ok]
    return out


def saccade_offsets(size: int, frames_per_saccade: int = FRAMES_PER_SACCADE) -> np.ndarray:
    """``[3 * frames_per_saccade + 1, 2]`` offsets (dy, dx): three linear sweeps around a
    triangle, back to the start."""
    vertices = _SACCADE_VERTICES * (size / 34.0)
    path = [vertices[0][None]]
    for i in range(3):
        a, b = vertices[i], vertices[(i + 1) % 3]
        f = np.arange(1, frames_per_saccade + 1)[:, None] / frames_per_saccade
        path.append(a + f * (b - a))
    return np.concatenate(path)


def render_weights(size: int, offsets: np.ndarray, source: int = SOURCE_SIZE) -> list:
    """For each (dy, dx) of ``offsets``, the ``[size, source]`` row and column weights that
    render a source image upsampled and shifted: ``rows @ image @ cols.T``."""
    base = upsample_matrix(size, source)
    return [
        (
            (shift_matrix(size, dy) @ base).astype(np.float32),
            (shift_matrix(size, dx) @ base).astype(np.float32),
        )
        for dy, dx in offsets
    ]


def render_frames(images: np.ndarray, size: int, offsets: np.ndarray, weights=None):
    """Yield ``[N, size, size]`` float32 intensities of ``images`` (``[N, 8, 8]`` in
    [0, 1]) at each (dy, dx) of ``offsets`` (``weights`` from ``render_weights``)."""
    if weights is None:
        weights = render_weights(size, offsets, images.shape[-1])
    images = np.asarray(images, dtype=np.float32)
    for rows, cols in weights:
        yield np.clip(rows @ images @ cols.T, 0.0, None)


def simulate_digits(images: np.ndarray, size: int = 34, seed: int = 0) -> dict[str, np.ndarray]:
    """Events of ``images`` (``[N, 8, 8]``, values in [0, 1]) moved along the saccades.

    Returns ``x``, ``y`` (uint8), ``t`` (int64 us), ``p`` (uint8) of all samples back to
    back, each sample's in time order, and ``offsets`` (``[N + 1]``). The digits are
    simulated in fixed chunks of ``CHUNK`` with the generator seeded by ``(seed, chunk)``,
    so a sample's events do not depend on how many samples are simulated."""
    images = np.asarray(images, dtype=np.float32)
    count = images.shape[0]
    offsets_yx = saccade_offsets(size)
    times = np.linspace(0.0, DURATION_US, len(offsets_yx))
    weights = render_weights(size, offsets_yx, images.shape[-1])
    coord = np.uint8 if size <= 256 else np.int16
    parts: dict[str, list[np.ndarray]] = {"x": [], "y": [], "t": [], "p": []}
    lengths = []
    for chunk, lo in enumerate(range(0, count, CHUNK)):
        block = np.zeros((CHUNK, *images.shape[1:]), dtype=np.float32)
        real = min(CHUNK, count - lo)
        block[:real] = images[lo : lo + real]  # blank padding gives no events
        camera = EventCamera(
            threshold=THRESHOLD,
            threshold_sigma=THRESHOLD_SIGMA,
            ref_jitter=REF_JITTER,
            eps=LOG_EPS,
            seed=[int(seed), chunk],
        )
        events = camera.simulate(render_frames(block, size, offsets_yx, weights), times)
        lengths.append(np.bincount(events.index, minlength=CHUNK)[:real])
        parts["x"].append(events.x.astype(coord))
        parts["y"].append(events.y.astype(coord))
        parts["t"].append(events.t.astype(np.int64))
        parts["p"].append(events.p.astype(np.uint8))
    out = {k: np.concatenate(v) for k, v in parts.items()}
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.concatenate(lengths), out=offsets[1:])
    out["offsets"] = offsets
    return out


# ---------------------------------------------------------------------------------------
# the cache


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
    try:
        return json.loads((root / META_FILE).read_text())
    except (OSError, ValueError):
        return None


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
    """Write through a temporary file in the same folder, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_npz(f: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` (what ``np.load`` reads) with fast deflate (level 1)."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


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
    root.mkdir(parents=True, exist_ok=True)
    (root / META_FILE).unlink(missing_ok=True)  # the old cache is no longer trusted
    start = time.perf_counter()
    arrays = generate_digits_dvs(seed=seed, size=size, num_samples=num_samples)
    seconds = time.perf_counter() - start
    _atomic_write(root / EVENTS_FILE, lambda f: _write_npz(f, arrays))
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
    return root


def load_digits_dvs_events(root: str | Path) -> tuple[dict, dict]:
    """The cache's arrays and meta (no check against a seed or size)."""
    root = Path(root)
    meta = _read_meta(root)
    if meta is None:
        raise DatasetNotFoundError(f"DigitsDVS: {root / META_FILE} is missing or unreadable")
    try:
        with np.load(root / EVENTS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in _ARRAY_KEYS}
    except (OSError, KeyError, ValueError) as err:
        raise BidlError(
            f"DigitsDVS: cannot read {root / EVENTS_FILE} ({err}); regenerate it with "
            f"{PREPARE_COMMAND.format(root=root)} and overwrite, or delete the folder"
        ) from None
    return arrays, meta


# ---------------------------------------------------------------------------------------
# the dataset


@DATASETS.register_module(name=["DigitsDVS", "DigitsDvs"])
class DigitsDVS(BaseDataset):
    """Handwritten digits (scikit-learn's 8x8 set) seen by a simulated event camera.

    Each sample's ``img`` is a uint8 array ``[timesteps, 2, size, size]``: events per
    polarity (channel 0 OFF, 1 ON) and pixel in each of ``timesteps`` equal time bins of
    the 300 ms recording, or in consecutive ``window_us`` windows from its start; counts
    saturate at 255. 1437 training and 360 test samples (stratified, fixed by ``seed``).

    The events are generated once into ``data_prefix`` (``events.npz``, ``meta.json``);
    with ``auto_prepare=False`` a missing or mismatched cache raises instead.
    ``num_samples`` keeps only the first digits (quick tests).
    """

    SOURCE = "generated by bidl from scikit-learn's 8x8 digits: events.npz + meta.json"

    CLASSES = [str(i) for i in range(10)]

    def __init__(
        self,
        data_prefix: str = "data/digits_dvs",
        pipeline: Sequence[dict] = (),
        test_mode: bool = False,
        timesteps: int = 8,
        size: int = 34,
        window_us: float | None = None,
        seed: int = 0,
        auto_prepare: bool = True,
        classes: Sequence[str] | None = None,
        ann_file: str | None = None,
        num_samples: int | None = None,
    ):
        _check_args(seed, size, num_samples)
        if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)):
            raise BidlError(f"DigitsDVS: timesteps must be an int, got {timesteps!r}")
        if timesteps < 1:
            raise BidlError(f"DigitsDVS: timesteps must be >= 1, got {timesteps}")
        if window_us is not None and not window_us > 0:
            raise BidlError(f"DigitsDVS: window_us must be > 0 or None, got {window_us!r}")
        self.timesteps = int(timesteps)
        self.size = int(size)
        self.window_us = window_us
        self.seed = int(seed)
        self.auto_prepare = auto_prepare
        self.num_samples = num_samples
        self.meta: dict = {}
        super().__init__(
            data_prefix=data_prefix,
            pipeline=pipeline,
            classes=classes,
            ann_file=ann_file,
            test_mode=test_mode,
        )

    @property
    def sensor_size(self) -> tuple[int, int]:
        return (self.size, self.size)

    def _ensure_cache(self) -> Path:
        root = Path(self.data_prefix)
        problem = cache_problem(root, self.seed, self.size, self.num_samples)
        if problem is None:
            return root
        if not self.auto_prepare:
            raise DatasetNotFoundError(
                f"DigitsDVS: no usable event cache in {str(root)!r}: {problem}.\n"
                f"Expected layout:\n{LAYOUT}\n"
                f"Prepare it with: {PREPARE_COMMAND.format(root=root)}\n"
                f"(seed={self.seed}, size={self.size}), or pass auto_prepare=True to "
                f"generate it on first use."
            )
        print(
            f"DigitsDVS: generating the event cache in {root} ({problem}; "
            f"seed={self.seed}, size={self.size}), a few seconds"
        )
        return prepare_digits_dvs(
            root, seed=self.seed, size=self.size, overwrite=True, num_samples=self.num_samples
        )

    def load_annotations(self) -> list[dict]:
        root = self._ensure_cache()
        arrays, self.meta = load_digits_dvs_events(root)
        split = np.sort(arrays["test_idx"] if self.test_mode else arrays["train_idx"])
        frames = events_to_frames_batch(
            arrays["x"],
            arrays["y"],
            arrays["t"],
            arrays["p"],
            arrays["offsets"],
            self.sensor_size,
            self.timesteps,
            by="time",
            t_start=0,
            t_end=int(self.meta.get("duration_us", DURATION_US)),
            window_us=self.window_us,
            dtype=np.uint8,
            samples=split,
        )
        labels = arrays["labels"][split]
        self.event_counts = np.diff(arrays["offsets"])[split]
        return [
            {"img": frames[i], "gt_label": int(labels[i]), "sample_idx": int(split[i])}
            for i in range(split.size)
        ]
