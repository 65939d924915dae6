"""COCO detection metrics (mAP over IoU 0.50:0.95, mAP50, mAP75, by object size) through
pycocotools, the reference implementation: bidl only converts its boxes into COCO's
records; every precision, recall and average is pycocotools' own."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence

import numpy as np

from ..registry import BidlError

#: the keys returned, in the order of pycocotools' ``COCOeval.stats``
METRIC_KEYS = ("mAP", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large")
INSTALL_HINT = 'pip install "bidl[detection]"'


def _pycocotools():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise BidlError(
            f"COCO metrics need pycocotools, which is not installed: {INSTALL_HINT} "
            f"(or pip install pycocotools)"
        ) from None
    return COCO, COCOeval


def _array(value, dtype, where: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise BidlError(f"coco_metrics: {where} is not numeric ({err})") from None


def _entry(sample, keys: Sequence[str], index: int, what: str) -> dict[str, np.ndarray]:
    """The arrays of one sample, checked: ``bboxes`` [K, 4] finite, ``labels`` [K], ..."""
    if not isinstance(sample, Mapping):
        raise BidlError(
            f"coco_metrics: {what}[{index}] must be a dict with {', '.join(keys)}, "
            f"got {type(sample).__name__}"
        )
    missing = [k for k in keys if k not in sample]
    if missing:
        raise BidlError(f"coco_metrics: {what}[{index}] has no {', '.join(missing)}")
    boxes = _array(sample["bboxes"], np.float64, f"{what}[{index}]['bboxes']")
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise BidlError(
            f"coco_metrics: {what}[{index}]['bboxes'] must have shape [K, 4] (x1, y1, x2, y2), "
            f"got {tuple(boxes.shape)}"
        )
    out = {"bboxes": boxes}
    for key in keys[1:]:
        dtype = np.float64 if key == "scores" else np.int64
        values = _array(sample[key], dtype, f"{what}[{index}][{key!r}]").reshape(-1)
        if values.shape[0] != boxes.shape[0]:
            raise BidlError(
                f"coco_metrics: {what}[{index}] has {boxes.shape[0]} boxes but "
                f"{values.shape[0]} {key}"
            )
        out[key] = values
    numbers = [boxes] + ([out["scores"]] if "scores" in out else [])
    if not all(np.isfinite(a).all() for a in numbers):
        raise BidlError(f"coco_metrics: {what}[{index}] holds NaN or infinite boxes or scores")
    return out


def _records(samples, keys, what: str, num_classes: int, ground_truth: bool) -> list[dict]:
    records = []
    for index, sample in enumerate(samples):
        arrays = _entry(sample, keys, index, what)
        keep = arrays["labels"] != -1  # the datasets' padding rows
        boxes, labels = arrays["bboxes"][keep], arrays["labels"][keep]
        bad = (labels < 0) | (labels >= num_classes)
        if bad.any():
            raise BidlError(
                f"coco_metrics: {what}[{index}] has label {int(labels[bad][0])}; labels are "
                f"class indices in [0, {num_classes}) (-1 marks padding)"
            )
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        if ground_truth and ((w <= 0) | (h <= 0)).any():
            row = int(np.flatnonzero((w <= 0) | (h <= 0))[0])
            raise BidlError(
                f"coco_metrics: {what}[{index}] box {row} is {boxes[row].tolist()}; boxes are "
                f"(x1, y1, x2, y2) with x2 > x1 and y2 > y1"
            )
        # a predicted box turned inside out (an untrained regressor's) is empty: it matches
        # nothing and counts as a false positive
        w, h = np.maximum(w, 0.0), np.maximum(h, 0.0)
        scores = arrays["scores"][keep] if "scores" in arrays else None
        for k in range(boxes.shape[0]):
            record = {
                "id": len(records) + 1,
                "image_id": index + 1,
                "category_id": int(labels[k]) + 1,
                "bbox": [float(boxes[k, 0]), float(boxes[k, 1]), float(w[k]), float(h[k])],
                "area": float(w[k] * h[k]),
                "iscrowd": 0,
            }
            if scores is not None:
                record["score"] = float(scores[k])
            records.append(record)
    return records


def _coco(coco_cls, images, categories, annotations):
    """A pycocotools ``COCO`` built from records in memory (no file, no printing)."""
    coco = coco_cls()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_metrics(
    predictions: Sequence[Mapping], ground_truths: Sequence[Mapping], classes: Sequence[str]
) -> dict[str, float]:
    """COCO box metrics of ``predictions`` against ``ground_truths`` (one entry per sample).

    Args:
        predictions: per sample a dict of ``bboxes`` [K, 4] (x1, y1, x2, y2 pixels),
            ``scores`` [K] and ``labels`` [K] (class indices); tensors or arrays.
        ground_truths: per sample a dict of ``bboxes`` [N, 4] and ``labels`` [N]; rows
            labelled -1 (a dataset's padding) are dropped.
        classes: the class names; class ``i`` is COCO category ``i + 1``.

    Returns ``mAP`` (AP averaged over IoU 0.50:0.05:0.95), ``mAP50``, ``mAP75`` and
    ``mAP_small`` / ``_medium`` / ``_large`` (COCO's areas: below 32**2, up to 96**2,
    above), floats in [0, 1] as pycocotools computes them (101-point interpolated
    precision, at most 100 detections per sample); -1.0 where no ground truth falls in
    the range, as pycocotools reports it. Classes without ground truth are left out of
    the averages (COCO's rule), so their false positives cost nothing. A predicted box
    with x2 < x1 or y2 < y1 is empty: a false positive.
    """
    coco_cls, eval_cls = _pycocotools()
    classes = [str(c) for c in classes]
    if not classes:
        raise BidlError("coco_metrics: classes is empty; give the dataset's class names")
    if len(predictions) != len(ground_truths):
        raise BidlError(
            f"coco_metrics: {len(predictions)} predictions for {len(ground_truths)} ground "
            f"truths; give one of each per sample"
        )
    n = len(classes)
    images = [{"id": i + 1} for i in range(len(ground_truths))]
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(classes)]
    gt_records = _records(ground_truths, ("bboxes", "labels"), "ground_truths", n, True)
    dt_records = _records(predictions, ("bboxes", "scores", "labels"), "predictions", n, False)
    gt = _coco(coco_cls, images, categories, gt_records)
    dt = _coco(coco_cls, images, categories, dt_records)
    evaluator = eval_cls(gt, dt, iouType="bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {key: float(evaluator.stats[i]) for i, key in enumerate(METRIC_KEYS)}
