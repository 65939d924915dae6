"""bidl.engine.coco_metrics: COCO box metrics through pycocotools."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch

from bidl.engine.coco_metrics import METRIC_KEYS, coco_metrics
from bidl.registry import BidlError

pytest.importorskip("pycocotools")


def random_case(seed: int, images: int = 12, classes: int = 3):
    """Ground truths of every COCO size and predictions around them: jittered copies,
    misclassified copies and false positives, with random scores."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(images):
        n = int(rng.integers(0, 6))
        size = rng.choice([12.0, 50.0, 140.0], n) * rng.uniform(0.8, 1.2, n)
        xy = rng.uniform(0, 300, (n, 2))
        boxes = np.concatenate([xy, xy + size[:, None] * rng.uniform(0.6, 1.4, (n, 2))], 1)
        labels = rng.integers(0, classes, n)
        keep = rng.random(n) < 0.8
        jitter = rng.normal(0, 3, (n, 4))
        fp = int(rng.integers(0, 3))
        fp_xy = rng.uniform(0, 300, (fp, 2))
        pred_boxes = np.concatenate(
            [boxes[keep] + jitter[keep], np.concatenate([fp_xy, fp_xy + 30], 1)]
        )
        pred_boxes[:, 2:] = np.maximum(pred_boxes[:, 2:], pred_boxes[:, :2] + 1)
        pred_labels = np.concatenate([labels[keep], rng.integers(0, classes, fp)])
        swap = rng.random(pred_labels.size) < 0.1
        pred_labels[swap] = (pred_labels[swap] + 1) % classes
        gts.append({"bboxes": torch.tensor(boxes), "labels": torch.tensor(labels)})
        preds.append(
            {
                "bboxes": torch.tensor(pred_boxes, dtype=torch.float32),
                "scores": torch.tensor(rng.random(pred_labels.size), dtype=torch.float32),
                "labels": torch.tensor(pred_labels),
            }
        )
    return preds, gts


def test_perfect_predictions_score_one():
    _, gts = random_case(0)
    perfect = [
        {"bboxes": g["bboxes"], "scores": torch.ones(len(g["labels"])), "labels": g["labels"]}
        for g in gts
    ]
    metrics = coco_metrics(perfect, gts, ["a", "b", "c"])
    assert set(metrics) == set(METRIC_KEYS)
    assert all(v == pytest.approx(1.0) for v in metrics.values()), metrics


def test_average_precision_by_hand_from_101_point_interpolation():
    # two objects of one class; detections in score order: hit, miss, hit (exact boxes,
    # so every IoU threshold agrees). Precision/recall after each: (1, .5), (.5, .5),
    # (2/3, 1). Interpolated precision is 1 for recall 0.00..0.50 (51 of COCO's 101
    # points) and 2/3 for 0.51..1.00 (50 points): AP = (51 + 50 * 2/3) / 101.
    gts = [{"bboxes": [[0, 0, 10, 10], [20, 20, 40, 40]], "labels": [0, 0]}]
    preds = [
        {
            "bboxes": [[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 40, 40]],
            "scores": [0.9, 0.8, 0.7],
            "labels": [0, 0, 0],
        }
    ]
    metrics = coco_metrics(preds, gts, ["digit", "other"])
    expected = (51 + 50 * 2 / 3) / 101
    for key in ("mAP", "mAP50", "mAP75", "mAP_small"):
        assert metrics[key] == pytest.approx(expected, abs=1e-12)
    # no medium or large objects: -1, as pycocotools reports an empty range
    assert metrics["mAP_medium"] == -1.0 and metrics["mAP_large"] == -1.0


def test_a_box_at_iou_between_thresholds_counts_for_part_of_the_range():
    # IoU of [0, 0, 10, 10] with [0, 0, 10, 7.9] is 0.79: a hit for thresholds
    # 0.50..0.75 (6 of the 10), a miss above; AP is 1 at those thresholds, 0 at the others
    gts = [{"bboxes": [[0, 0, 10, 10]], "labels": [0]}]
    preds = [{"bboxes": [[0, 0, 10, 7.9]], "scores": [0.5], "labels": [0]}]
    metrics = coco_metrics(preds, gts, ["x"])
    assert metrics["mAP"] == pytest.approx(0.6)
    assert metrics["mAP50"] == pytest.approx(1.0) and metrics["mAP75"] == pytest.approx(1.0)


def test_empty_predictions_score_zero():
    _, gts = random_case(1)
    empty = [
        {"bboxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}
        for _ in gts
    ]
    metrics = coco_metrics(empty, gts, ["a", "b", "c"])
    assert metrics["mAP"] == 0.0 and metrics["mAP50"] == 0.0


def test_a_class_without_ground_truth_is_left_out():
    gts = [{"bboxes": [[0, 0, 10, 10]], "labels": [0]}]
    hit = {"bboxes": [[0, 0, 10, 10]], "scores": [0.5], "labels": [0]}
    alone = coco_metrics([hit], gts, ["a", "b"])
    # a confident false positive of class 1, which has no ground truth anywhere
    extra = {
        "bboxes": [[0, 0, 10, 10], [30, 30, 40, 40]],
        "scores": [0.5, 0.99],
        "labels": [0, 1],
    }
    assert coco_metrics([extra], gts, ["a", "b"]) == alone
    assert alone["mAP"] == pytest.approx(1.0)


def test_an_inside_out_prediction_is_a_false_positive():
    gts = [{"bboxes": [[0, 0, 10, 10], [20, 20, 40, 40]], "labels": [0, 0]}]
    inverted = [[0, 0, 10, 10], [10, 0, 0, 10], [20, 20, 40, 40]]  # the second: x2 < x1
    preds = [{"bboxes": inverted, "scores": [0.9, 0.8, 0.7], "labels": [0, 0, 0]}]
    # as the miss of the hand-derived case above
    assert coco_metrics(preds, gts, ["a"])["mAP"] == pytest.approx((51 + 50 * 2 / 3) / 101)


def test_padding_rows_of_ground_truth_are_dropped():
    gts = [{"bboxes": [[0, 0, 10, 10], [0, 0, 0, 0]], "labels": [0, -1]}]
    preds = [{"bboxes": [[0, 0, 10, 10]], "scores": [0.5], "labels": [0]}]
    assert coco_metrics(preds, gts, ["a"])["mAP"] == pytest.approx(1.0)


def test_matches_faster_coco_eval():
    faster = pytest.importorskip("faster_coco_eval")
    preds, gts = random_case(2, images=20)
    ours = coco_metrics(preds, gts, ["a", "b", "c"])
    assert 0.05 < ours["mAP"] < 0.95  # an informative case, neither empty nor perfect
    images = [{"id": i + 1, "width": 512, "height": 512} for i in range(len(gts))]
    anns = []
    for i, g in enumerate(gts):
        for box, label in zip(g["bboxes"].tolist(), g["labels"].tolist(), strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            anns.append(
                dict(id=len(anns) + 1, image_id=i + 1, category_id=label + 1, iscrowd=0,
                     bbox=[box[0], box[1], w, h], area=w * h)
            )  # fmt: skip
    gt = faster.COCO()
    gt.dataset = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate("abc")],
    }
    gt.createIndex()
    results = []
    for i, p in enumerate(preds):
        for box, score, label in zip(
            p["bboxes"].tolist(), p["scores"].tolist(), p["labels"].tolist(), strict=True
        ):
            results.append(
                dict(image_id=i + 1, category_id=label + 1, score=score,
                     bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]])
            )  # fmt: skip
    evaluator = faster.COCOeval_faster(
        gt, gt.loadRes(results), iouType="bbox", print_function=print
    )
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    for i, key in enumerate(METRIC_KEYS):
        assert ours[key] == pytest.approx(float(evaluator.stats[i]), abs=1e-6), key


@pytest.mark.parametrize(
    ("preds", "gts", "message"),
    [
        ([], [{"bboxes": [], "labels": []}], "0 predictions for 1 ground truths"),
        (
            [{"bboxes": [[0, 0, 1, 1]], "scores": [1.0]}],
            [{"bboxes": [], "labels": []}],
            r"predictions\[0\] has no labels",
        ),
        (
            [{"bboxes": [[0, 0, 1]], "scores": [1.0], "labels": [0]}],
            [{"bboxes": [], "labels": []}],
            r"must have shape \[K, 4\]",
        ),
        (
            [{"bboxes": [[0, 0, 1, 1]], "scores": [float("nan")], "labels": [0]}],
            [{"bboxes": [], "labels": []}],
            "NaN or infinite",
        ),
        (
            [{"bboxes": [], "scores": [], "labels": []}],
            [{"bboxes": [[0, 0, 1, 1]], "labels": [2]}],
            r"label 2; labels are class indices in \[0, 2\)",
        ),
        (
            [{"bboxes": [], "scores": [], "labels": []}],
            [{"bboxes": [[5, 0, 1, 1]], "labels": [0]}],
            r"box 0 is \[5.0, 0.0, 1.0, 1.0\]; boxes are \(x1, y1, x2, y2\) with x2 > x1",
        ),
    ],
)
def test_bad_input_is_one_clear_error(preds, gts, message):
    with pytest.raises(BidlError, match=message):
        coco_metrics(preds, gts, ["a", "b"])


def test_missing_pycocotools_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.startswith("pycocotools"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(BidlError, match=r'pip install "bidl\[detection\]"'):
        coco_metrics([], [], ["a"])
