"""GEN1's boxes (``<name>_bbox.npy``): read, checked against their recording, filtered and
grouped into labelled instants the way BIDL's st-yolo application (RVT's preprocessing)
prepares them.

- A box partly outside the 304x240 frame is clipped to it (x to [0, 303], y to [0, 239],
  as the application clips); a box that is wholly outside, of non-positive size or not
  finite, or of a class other than 0 (car) and 1 (pedestrian), is an error naming the file
  (``drop_invalid=True`` drops such boxes instead).
- Boxes smaller than ``min_side`` (10) on a side or ``min_diag`` (30) on the diagonal are
  dropped (Prophesee's evaluation filter); on the training split, boxes wider than
  ``max_width`` (273, nine tenths of the frame) too (mislabelled rows).
- Label instants: the first at or after ``first_us`` (100 ms), then those that fall within
  2 ms of a multiple of ``period_us`` (250 ms: GEN1's 4 Hz) after the previous one kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .events.prophesee_dat import _RECORD, read_dat_header
from .events.records import EventFileError

SENSOR_SIZE = (240, 304)
NUM_CLASSES = 2
LABEL_JITTER_US = 2000


def read_gen1_boxes(path: str | Path) -> np.ndarray:
    """The boxes of a ``_bbox.npy`` file: a structured array with a timestamp (``ts``, or
    ``t`` in older files), x, y, w, h, class_id (and confidence, track_id)."""
    try:
        boxes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise EventFileError(f"{path}: not a readable box file ({err})") from None
    names = boxes.dtype.names or ()
    time_field = "ts" if "ts" in names else "t" if "t" in names else None
    missing = [k for k in ("x", "y", "w", "h", "class_id") if k not in names]
    if time_field is None or missing:
        raise EventFileError(
            f"{path}: a box file needs fields ts (or t), x, y, w, h and class_id; has {names}"
        )
    return boxes


def box_times(boxes: np.ndarray) -> np.ndarray:
    return boxes["ts" if "ts" in boxes.dtype.names else "t"].astype(np.int64)


def recording_span(path: str | Path) -> tuple[int, int]:
    """The first and last timestamps (us) of a ``.dat`` recording; an empty one is an
    error naming the file."""
    header = read_dat_header(path)
    count = (Path(path).stat().st_size - header.offset) // _RECORD.itemsize
    if count == 0:
        raise EventFileError(f"{path}: the recording holds no events")
    records = np.memmap(path, dtype=_RECORD, mode="r", offset=header.offset, shape=(count,))
    return int(records["t"][0]), int(records["t"][-1])


def _bad_rows(boxes: np.ndarray, sensor_size) -> list[tuple[np.ndarray, str]]:
    """(row mask, what is wrong) for every kind of invalid box."""
    height, width = sensor_size
    x, y, w, h = (boxes[k].astype(np.float64) for k in ("x", "y", "w", "h"))
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & np.isfinite(h)
    cls = boxes["class_id"].astype(np.int64)
    with np.errstate(invalid="ignore"):
        flat = finite & ((w <= 0) | (h <= 0))
        outside = finite & ~flat & ((x >= width) | (y >= height) | (x + w <= 0) | (y + h <= 0))
    return [
        (~finite, "is not finite"),
        (flat, "has a non-positive size"),
        (outside, f"lies wholly outside the {width}x{height} frame"),
        ((cls < 0) | (cls >= NUM_CLASSES), "has a class_id other than 0 (car) or 1 (pedestrian)"),
    ]


def check_boxes(boxes: np.ndarray, path, sensor_size=SENSOR_SIZE, drop_invalid=False):
    """``boxes`` without invalid rows (``drop_invalid``), or an error naming the file and
    the first invalid box."""
    bad_any = np.zeros(boxes.shape[0], dtype=bool)
    for bad, what in _bad_rows(boxes, sensor_size):
        if bad.any() and not drop_invalid:
            row = int(np.flatnonzero(bad)[0])
            b = boxes[row]
            raise EventFileError(
                f"{path}: box {row} (t={int(box_times(boxes)[row])} us, x={b['x']}, "
                f"y={b['y']}, w={b['w']}, h={b['h']}, class_id={b['class_id']}) {what}; "
                f"{int(bad.sum())} such box(es) in the file. Fix the file, or pass "
                f"drop_invalid_boxes=True to drop them"
            )
        bad_any |= bad
    return boxes[~bad_any]


def check_times(boxes: np.ndarray, path, recording, span: tuple[int, int]) -> None:
    """Every label time must lie within its recording's first and last events."""
    times = box_times(boxes)
    outside = (times < span[0]) | (times > span[1])
    if outside.any():
        t = int(times[outside][0])
        raise EventFileError(
            f"{path}: {int(outside.sum())} box(es) labelled at times outside the recording "
            f"{recording} (its events span {span[0]}..{span[1]} us; first such label at "
            f"t={t} us): the label file does not match its recording"
        )


def clipped_xyxy(boxes: np.ndarray, sensor_size=SENSOR_SIZE) -> np.ndarray:
    """``[N, 4]`` float32 (x1, y1, x2, y2), clipped to [0, W - 1] x [0, H - 1]."""
    height, width = sensor_size
    x, y = boxes["x"].astype(np.float64), boxes["y"].astype(np.float64)
    x2, y2 = x + boxes["w"], y + boxes["h"]
    out = np.stack(
        [
            np.clip(x, 0, width - 1),
            np.clip(y, 0, height - 1),
            np.clip(x2, 0, width - 1),
            np.clip(y2, 0, height - 1),
        ],
        axis=1,
    )
    return out.astype(np.float32)


def keep_mask(xyxy: np.ndarray, min_side: float, min_diag: float, max_width) -> np.ndarray:
    """Boxes that stay: of positive size once clipped, ``min_side`` and ``min_diag`` at
    least, ``max_width`` at most (None: no limit)."""
    w = xyxy[:, 2].astype(np.float64) - xyxy[:, 0]
    h = xyxy[:, 3].astype(np.float64) - xyxy[:, 1]
    keep = (w > 0) & (h > 0) & (w >= min_side) & (h >= min_side)
    keep &= w**2 + h**2 >= min_diag**2
    if max_width is not None:
        keep &= w <= max_width
    return keep


def label_instants(times: np.ndarray, first_us: int, period_us: int | None) -> np.ndarray:
    """The label times kept (sorted): the first at or after ``first_us``, then those within
    ``LABEL_JITTER_US`` of a whole number of ``period_us`` after the previous one kept
    (``period_us=None``: every time from ``first_us``)."""
    unique = np.unique(times)
    unique = unique[unique >= first_us]
    if period_us is None or unique.size == 0:
        return unique
    kept = [int(unique[0])]
    for t in unique[1:]:
        gap = int(t) - kept[-1]
        periods = round(gap / period_us)
        if periods > 0 and abs(gap - periods * period_us) <= LABEL_JITTER_US:
            kept.append(int(t))
    return np.asarray(kept, dtype=np.int64)
