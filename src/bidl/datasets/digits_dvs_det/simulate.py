"""The DigitsDVS-Det generator: clips of one to three of scikit-learn's 8x8 digits moving
along straight lines over a dark canvas, seen by an ESIM-style event camera
(``bidl.datasets.events.camera``), with each digit's exact box at the last instant.

A digit is drawn by bilinear interpolation of its 8x8 image onto a cell of ``scale``
pixels; intensities below ``INK_FLOOR`` are set to zero, so the digit's pixels are exactly
the non-zero ones and its box is their bounding box. Cells never touch during a clip, so
boxes do not overlap and no digit hides another."""

from __future__ import annotations

import math

import numpy as np

from ..events.camera import EventCamera

GENERATOR_VERSION = 1
CANVAS = 64
SOURCE_SIZE = 8
DURATION_US = 100_000
RENDER_STEPS = 16  # render intervals over a clip (17 frames), 2 per default time step
MAX_DIGITS = 3
SCALE_RANGE = (14.0, 20.0)  # side of a digit's 8x8 cell on the canvas, pixels
TRAVEL_RANGE = (6.0, 14.0)  # distance a digit moves over the clip, pixels
# directions at least 15 degrees from the axes: a stroke parallel to the motion sends no
# events, so a purely horizontal or vertical move would hide half of each glyph
ANGLE_RANGE_DEG = (15.0, 75.0)
# pixels kept free between two digits' cells at every instant; a digit's ink reaches at
# most 0.3 source pixels (0.75 px) beyond its cell, so inks stay 1.5 px apart or more
GAP = 3.0
PLACEMENT_TRIES = 50
# intensities below the floor are zero; at the floor a pixel's log intensity still moves
# by log((0.2 + 0.25) / 0.25) = 0.59 > 0.4 * (1 + 3 * 0.03) when the digit arrives or
# leaves, so every pixel of a box can fire
INK_FLOOR = 0.2
THRESHOLD = 0.4
THRESHOLD_SIGMA = 0.03
REF_JITTER = 0.3
LOG_EPS = 0.25
CHUNK = 64  # clips simulated together (part of the generator: changing it changes events)


def sample_layout(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Place up to ``count`` digits: ``scale`` [K], ``start`` and ``end`` [K, 2] (x, y of
    the cell's top-left corner at the first and the last instant). A digit that finds no
    place clear of the others within ``PLACEMENT_TRIES`` draws is left out."""
    placed: list[tuple[float, float, float, float, float]] = []  # scale, x, y, dx, dy
    for _ in range(count):
        for _ in range(PLACEMENT_TRIES):
            u_scale, u_travel, u_angle, u_quarter, u_x, u_y = rng.random(6)
            scale = SCALE_RANGE[0] + u_scale * (SCALE_RANGE[1] - SCALE_RANGE[0])
            travel = TRAVEL_RANGE[0] + u_travel * (TRAVEL_RANGE[1] - TRAVEL_RANGE[0])
            degrees = ANGLE_RANGE_DEG[0] + u_angle * (ANGLE_RANGE_DEG[1] - ANGLE_RANGE_DEG[0])
            angle = math.radians(degrees + 90.0 * math.floor(4 * u_quarter))
            dx, dy = travel * math.cos(angle), travel * math.sin(angle)
            # both ends inside the canvas
            x = max(0.0, -dx) + u_x * (CANVAS - scale - abs(dx))
            y = max(0.0, -dy) + u_y * (CANVAS - scale - abs(dy))
            cell = (scale, x, y, dx, dy)
            if all(_clear(cell, other) for other in placed):
                placed.append(cell)
                break
    cells = np.array(placed, dtype=np.float64).reshape(-1, 5)
    return {"scale": cells[:, 0], "start": cells[:, 1:3], "end": cells[:, 1:3] + cells[:, 3:5]}


def _overlap_span(gap0: float, rate: float, low: float, high: float) -> tuple[float, float]:
    """The instants ``f`` in [0, 1] at which ``low < gap0 + f * rate < high``."""
    if rate == 0.0:
        return (0.0, 1.0) if low < gap0 < high else (1.0, 0.0)
    a, b = (low - gap0) / rate, (high - gap0) / rate
    return max(0.0, min(a, b)), min(1.0, max(a, b))


def _clear(a: tuple, b: tuple) -> bool:
    """Whether two cells moving in straight lines stay ``GAP`` apart throughout the clip:
    their offset changes linearly, so the instants they overlap along x form one span,
    along y another, and they touch only if the two spans meet."""
    scale_a, xa, ya, dxa, dya = a
    scale_b, xb, yb, dxb, dyb = b
    low, high = -(scale_a + GAP), scale_b + GAP  # overlap while low < a - b < high
    x0, x1 = _overlap_span(xa - xb, dxa - dxb, low, high)
    y0, y1 = _overlap_span(ya - yb, dya - dyb, low, high)
    return max(x0, y0) >= min(x1, y1)


def axis_weights(origin: np.ndarray, scale: np.ndarray, size: int = CANVAS) -> np.ndarray:
    """``[K, size, 8]`` bilinear weights of the 8 source pixels for each canvas pixel along
    one axis, for cells starting at ``origin`` [K] with side ``scale`` [K] pixels."""
    unit = np.asarray(scale, dtype=np.float64)[:, None] / SOURCE_SIZE
    # canvas pixel centres in source-pixel units, relative to the cell's corner
    pos = (np.arange(size)[None, :] + 0.5 - np.asarray(origin, dtype=np.float64)[:, None]) / unit
    dist = pos[:, :, None] - (np.arange(SOURCE_SIZE) + 0.5)[None, None, :]
    return np.maximum(0.0, 1.0 - np.abs(dist))


def render_digits(
    images: np.ndarray, scale: np.ndarray, corner: np.ndarray, size: int = CANVAS
) -> np.ndarray:
    """``[K, size, size]`` float32 intensities of the digits ``images`` ([K, 8, 8] in
    [0, 1]) with cells of side ``scale`` [K] at ``corner`` [K, 2] (x, y); values below
    ``INK_FLOOR`` are zero."""
    images = np.asarray(images, dtype=np.float32)
    corner = np.asarray(corner, dtype=np.float64).reshape(-1, 2)
    rows = axis_weights(corner[:, 1], scale, size).astype(np.float32)
    cols = axis_weights(corner[:, 0], scale, size).astype(np.float32)
    out = (rows @ images) @ cols.transpose(0, 2, 1)
    out[out < INK_FLOOR] = 0.0
    return out


def boxes_of(intensity: np.ndarray) -> np.ndarray:
    """``[K, 4]`` float32 (x1, y1, x2, y2): the bounding box of each ``[size, size]``
    image's non-zero pixels, pixel ``(r, c)`` covering ``[c, c + 1) x [r, r + 1)``."""
    boxes = np.zeros((intensity.shape[0], 4), dtype=np.float32)
    for k, image in enumerate(intensity):
        rows = np.flatnonzero(image.any(axis=1))
        cols = np.flatnonzero(image.any(axis=0))
        boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def simulate_clips(
    images: np.ndarray,
    objects: dict[str, np.ndarray],
    object_offsets: np.ndarray,
    camera_seed,
) -> dict[str, np.ndarray]:
    """Events of a chunk of clips. ``objects`` holds per digit ``glyph`` (row of
    ``images``), ``scale``, ``start``, ``end``; clip ``i`` owns digits
    ``object_offsets[i]:object_offsets[i + 1]``. The chunk is padded to ``CHUNK`` clips
    with empty ones (no events) so a clip's events do not depend on the chunk's fill.
    Returns ``x``, ``y``, ``t``, ``p`` in clip then time order and ``lengths`` [clips]."""
    clips = object_offsets.size - 1
    first, last = int(object_offsets[0]), int(object_offsets[-1])
    counts = np.diff(object_offsets)
    clip_of = np.repeat(np.arange(clips), counts)
    rank = np.arange(last - first) - np.repeat(object_offsets[:-1] - first, counts)
    glyphs = images[objects["glyph"][first:last]]
    scale = objects["scale"][first:last]
    start = objects["start"][first:last]
    move = objects["end"][first:last] - start

    def frames():
        for f in np.linspace(0.0, 1.0, RENDER_STEPS + 1):
            digits = render_digits(glyphs, scale, start + f * move)
            canvas = np.zeros((CHUNK, CANVAS, CANVAS), dtype=np.float32)
            # digits never overlap, so adding those of a clip draws each unchanged; one
            # rank at a time, so no clip is indexed twice in one assignment
            for r in range(MAX_DIGITS):
                sel = rank == r
                canvas[clip_of[sel]] += digits[sel]
            yield canvas

    camera = EventCamera(
        threshold=THRESHOLD,
        threshold_sigma=THRESHOLD_SIGMA,
        ref_jitter=REF_JITTER,
        eps=LOG_EPS,
        seed=camera_seed,
    )
    events = camera.simulate(frames(), np.linspace(0.0, DURATION_US, RENDER_STEPS + 1))
    lengths = np.bincount(events.index, minlength=CHUNK)[:clips]
    return {
        "x": events.x.astype(np.uint8),
        "y": events.y.astype(np.uint8),
        "t": events.t.astype(np.int32),
        "p": events.p.astype(np.uint8),
        "lengths": lengths.astype(np.int64),
    }
