"""The DigitsDVS-Det cache: generated once, checked against its parameters, loaded.

<root>/events.npz   x, y (uint8), t (int32, us), p (uint8: 1 ON, 0 OFF) of all clips back to
                    back, offsets [N + 1]; per digit glyph, label, scale, start, end, boxes
                    [K, 4] (x1, y1, x2, y2 at the last instant), object_offsets [N + 1];
                    train_idx, test_idx
<root>/meta.json    seed, num_samples, generator version, counts (written last)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ... import fileio
from ...locking import dataset_lock, waiting_lock
from ...registry import BidlError
from ..base import DatasetNotFoundError
from ..npz_cache import read_meta, read_npz, write_npz
from .simulate import (
    CANVAS,
    CHUNK,
    DURATION_US,
    GENERATOR_VERSION,
    MAX_DIGITS,
    RENDER_STEPS,
    boxes_of,
    render_digits,
    sample_layout,
    simulate_clips,
)

NUM_TRAIN = 4000
NUM_TEST = 500
GLYPH_TEST_SIZE = 0.2  # share of scikit-learn's digits kept for the test clips' glyphs
SPLIT_IDS = {"train": 0, "test": 1}
EVENTS_FILE = "events.npz"
META_FILE = "meta.json"
PREPARE_COMMAND = "bidl data prepare digits_dvs_det --root {root}"
LAYOUT = (
    "  <root>/events.npz   events x, y, t, p, offsets; digits glyph, label, scale, start, end,\n"
    "                      boxes, object_offsets; train_idx, test_idx\n"
    "  <root>/meta.json    seed, num_samples, generator version, counts"
)
_ARRAY_KEYS = (
    "x", "y", "t", "p", "offsets", "object_offsets", "glyph", "label", "scale", "start",
    "end", "boxes", "train_idx", "test_idx",
)  # fmt: skip


def check_args(seed, num_samples) -> tuple[int, int]:
    """Clips per split (train, test) for ``num_samples`` (None: all)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BidlError(f"DigitsDVSDet: seed must be a non-negative int, got {seed!r}")
    if num_samples is None:
        return NUM_TRAIN, NUM_TEST
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, (int, np.integer))
        or not 1 <= num_samples <= NUM_TRAIN
    ):
        raise BidlError(
            f"DigitsDVSDet: num_samples must be None (all: {NUM_TRAIN} train, {NUM_TEST} test "
            f"clips) or an int in [1, {NUM_TRAIN}] (the first clips of each split), got "
            f"{num_samples!r}"
        )
    return min(int(num_samples), NUM_TRAIN), min(int(num_samples), NUM_TEST)


def _read_meta(root: Path) -> dict | None:
    return read_meta(root / META_FILE)


def cache_problem(root: str | Path, seed: int = 0, num_samples=None) -> str | None:
    """Why the cache in ``root`` cannot serve (seed, num_samples); None if it can."""
    root = Path(root)
    check_args(seed, num_samples)
    meta = _read_meta(root)
    if meta is None:
        return f"{META_FILE} is missing or unreadable"
    if not (root / EVENTS_FILE).is_file():
        return f"{EVENTS_FILE} is missing"
    wanted = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "num_samples": None if num_samples is None else int(num_samples),
    }
    wrong = [f"{k} {meta.get(k)!r} (wanted {v!r})" for k, v in wanted.items() if meta.get(k) != v]
    if wrong:
        return "the cache was made with " + ", ".join(wrong)
    return None


def glyph_pools(seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """scikit-learn's digits in [0, 1], their labels, and the indices whose glyphs the
    train and the test clips draw from (stratified, disjoint)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    labels = digits.target.astype(np.int64)
    train, test = train_test_split(
        np.arange(labels.size), test_size=GLYPH_TEST_SIZE, stratify=labels, random_state=seed
    )
    return digits.images / 16.0, labels, {"train": np.sort(train), "test": np.sort(test)}


def layout_clips(split: str, count: int, seed: int, pool: np.ndarray) -> dict[str, np.ndarray]:
    """The digits of the first ``count`` clips of ``split``: each clip draws from its own
    generator, seeded by (seed, split, clip), so a clip does not depend on ``count``."""
    parts: dict[str, list] = {"glyph": [], "scale": [], "start": [], "end": []}
    per_clip = []
    for i in range(count):
        rng = np.random.default_rng([int(seed), SPLIT_IDS[split], i])
        layout = sample_layout(rng, int(rng.integers(1, MAX_DIGITS + 1)))
        n = layout["scale"].size
        parts["glyph"].append(rng.choice(pool, size=n))
        for key in ("scale", "start", "end"):
            parts[key].append(layout[key])
        per_clip.append(n)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["glyph"] = out["glyph"].astype(np.int32)
    out["object_offsets"] = np.concatenate([[0], np.cumsum(per_clip)]).astype(np.int64)
    return out


def generate_split(split: str, count: int, seed: int, images, labels, pool) -> dict:
    """Digits, boxes and events of the first ``count`` clips of ``split``."""
    objects = layout_clips(split, count, seed, pool)
    objects["label"] = labels[objects["glyph"]]
    final = render_digits(images[objects["glyph"]], objects["scale"], objects["end"])
    objects["boxes"] = boxes_of(final)
    events: dict[str, list] = {"x": [], "y": [], "t": [], "p": [], "lengths": []}
    offsets = objects["object_offsets"]
    for chunk, lo in enumerate(range(0, count, CHUNK)):
        hi = min(lo + CHUNK, count)
        part = simulate_clips(
            images,
            objects,
            offsets[lo : hi + 1],
            camera_seed=[int(seed), SPLIT_IDS[split], chunk],
        )
        for key, value in part.items():
            events[key].append(value)
    out = {k: np.concatenate(v) for k, v in events.items()}
    lengths = out.pop("lengths")
    out["offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return {**out, **objects}


def generate_digits_dvs_det(seed: int = 0, num_samples: int | None = None) -> dict:
    """The cache arrays: train clips first, then test clips."""
    counts = dict(zip(("train", "test"), check_args(seed, num_samples), strict=True))
    images, labels, pools = glyph_pools(seed)
    splits = {s: generate_split(s, n, seed, images, labels, pools[s]) for s, n in counts.items()}
    train, test = splits["train"], splits["test"]
    out = {}
    for key in ("x", "y", "t", "p", "glyph", "label", "scale", "start", "end", "boxes"):
        out[key] = np.concatenate([train[key], test[key]])
    for key, total in (("offsets", train["t"].size), ("object_offsets", train["label"].size)):
        out[key] = np.concatenate([train[key], test[key][1:] + total])
    out["train_idx"] = np.arange(counts["train"], dtype=np.int64)
    out["test_idx"] = np.arange(counts["test"], dtype=np.int64) + counts["train"]
    return out


def prepare_digits_dvs_det(
    root: str | Path,
    seed: int = 0,
    overwrite: bool = False,
    *,
    num_samples: int | None = None,
    verbose: bool = False,
) -> Path:
    """Generate the DigitsDVS-Det cache in ``root`` (unless a matching one is there and
    ``overwrite`` is False) and return ``root``. ``num_samples`` keeps only the first
    clips of each split (quick tests); those clips equal the full set's."""
    root = Path(root)
    num_train, num_test = check_args(seed, num_samples)
    if not overwrite and cache_problem(root, seed, num_samples) is None:
        return root
    # one writer at a time: a second process waits, then finds the cache built
    with waiting_lock(dataset_lock(root, "DigitsDVSDet")):
        if not overwrite and cache_problem(root, seed, num_samples) is None:
            return root
        _generate_into(root, seed, num_samples, num_train, num_test, verbose)
    return root


def _generate_into(root: Path, seed: int, num_samples, num_train: int, num_test: int, verbose):
    root.mkdir(parents=True, exist_ok=True)
    (root / META_FILE).unlink(missing_ok=True)  # the old cache is no longer trusted
    start = time.perf_counter()
    arrays = generate_digits_dvs_det(seed=seed, num_samples=num_samples)
    seconds = time.perf_counter() - start
    fileio.atomic_write(root / EVENTS_FILE, lambda f: write_npz(f, arrays))
    lengths = np.diff(arrays["offsets"])
    digits = np.diff(arrays["object_offsets"])
    sides = arrays["boxes"][:, 2:] - arrays["boxes"][:, :2]
    meta = {
        "dataset": "DigitsDVSDet",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "num_samples": None if num_samples is None else int(num_samples),
        "num_train": num_train,
        "num_test": num_test,
        "num_events": int(arrays["t"].size),
        "events_per_clip": {
            "mean": float(lengths.mean()),
            "min": int(lengths.min()),
            "max": int(lengths.max()),
        },
        "digits_per_clip": {str(k): int((digits == k).sum()) for k in range(1, MAX_DIGITS + 1)},
        "box_side_px": {"min": float(sides.min()), "max": float(sides.max())},
        "duration_us": DURATION_US,
        "render_frames": RENDER_STEPS + 1,
        "canvas": [CANVAS, CANVAS],
        "classes": [str(i) for i in range(10)],
        "generation_seconds": round(seconds, 3),
    }
    text = json.dumps(meta, indent=2).encode()
    fileio.atomic_write(root / META_FILE, lambda f: f.write(text))
    if verbose:
        print(
            f"DigitsDVSDet: wrote {num_train} train and {num_test} test clips, "
            f"{int(digits.sum())} digits, {meta['num_events']} events "
            f"({meta['events_per_clip']['mean']:.0f} per clip) to {root} in {seconds:.1f} s"
        )


def load_digits_dvs_det(root: str | Path) -> tuple[dict, dict]:
    """The cache's arrays and meta (no check against a seed or num_samples)."""
    root = Path(root)
    meta = _read_meta(root)
    if meta is None:
        raise DatasetNotFoundError(f"DigitsDVSDet: {root / META_FILE} is missing or unreadable")
    fix = (
        f"regenerate it with {PREPARE_COMMAND.format(root=root)} --overwrite, or delete the folder"
    )
    arrays = read_npz(root / EVENTS_FILE, _ARRAY_KEYS, "DigitsDVSDet", fix)
    return arrays, meta


def prepare_command(root, seed: int, overwrite: bool, options: dict) -> str:
    """``bidl data prepare digits_dvs_det``: ``--set num_samples=N`` is the only key."""
    unknown = sorted(set(options) - {"num_samples"})
    if unknown:
        raise BidlError(
            f"bidl data prepare digits_dvs_det: --set takes num_samples (the first N clips "
            f"of each split, for quick runs), not {', '.join(unknown)}; --seed is an option"
        )
    path = prepare_digits_dvs_det(
        root or "data/digits_dvs_det",
        seed=seed,
        overwrite=overwrite,
        num_samples=options.get("num_samples"),
        verbose=True,
    )
    return f"DigitsDVSDet cache ready in {path}"
