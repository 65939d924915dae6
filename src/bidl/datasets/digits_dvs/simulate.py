"""The DigitsDVS generator: scikit-learn's 8x8 digits upsampled onto a sensor, moved along
three saccades forming a triangle (as the N-MNIST recordings were made), rendered at
sub-pixel offsets, and fed to an ESIM-style event camera (``bidl.datasets.events.camera``)."""

from __future__ import annotations

import numpy as np

from ..events.camera import EventCamera

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
