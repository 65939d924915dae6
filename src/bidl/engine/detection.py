"""The detection path of training, validation and ``bidl test``: a detector (a model with
``task = "detection"``) takes ``gt_bboxes`` / ``gt_labels`` in training and is scored by
COCO mAP (``coco_metrics``) instead of accuracy."""

from __future__ import annotations

import torch

from ..registry import BidlError
from .coco_metrics import coco_metrics
from .evaluation import move_batch, run_model

#: batch keys of a detection sample (docs/detection.md)
TARGET_KEYS = ("gt_bboxes", "gt_labels")


def is_detector(model: torch.nn.Module) -> bool:
    model = getattr(model, "module", model)  # DDP
    return getattr(model, "task", None) == "detection"


def training_targets(batch: dict) -> dict:
    """The detector's training keywords from a batch, or a clear error."""
    missing = [k for k in TARGET_KEYS if k not in batch]
    if missing:
        raise BidlError(
            f"a detector trains on batches with {' and '.join(TARGET_KEYS)}; this batch has "
            f"{sorted(batch)} (missing {missing}). Collect them in the pipeline: "
            f"dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels'])"
        )
    return {k: batch[k] for k in TARGET_KEYS}


def unpadded(boxes: torch.Tensor, labels: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Per sample the boxes and labels of a batch without its padding rows (label -1)."""
    out = []
    for sample_boxes, sample_labels in zip(boxes, labels, strict=True):
        keep = sample_labels >= 0
        out.append(
            {"bboxes": sample_boxes[keep].float().cpu(), "labels": sample_labels[keep].cpu()}
        )
    return out


def predict_detections(
    model: torch.nn.Module,
    loader,
    device: torch.device,
    autocast=None,
    desc: str = "test",
    to_device=move_batch,
) -> tuple[list[dict], list[dict], float]:
    """Every sample's predictions (``bboxes``, ``scores``, ``labels``), its ground truth
    (from the batch's ``gt_bboxes`` / ``gt_labels``, padding dropped) and the seconds spent
    in the model."""
    predictions, truths = [], []

    def keep(loaded: dict, found: list) -> None:
        predictions.extend(
            {k: v.float().cpu() if k != "labels" else v.cpu() for k, v in p.items()} for p in found
        )
        targets = training_targets(loaded)
        truths.extend(unpadded(targets["gt_bboxes"], targets["gt_labels"]))

    seconds = run_model(model, loader, device, keep, autocast, desc, to_device)
    return predictions, truths, seconds


def class_names(dataset, model: torch.nn.Module) -> list[str]:
    """The dataset's ``CLASSES``, else ``0 .. num_classes - 1`` of the model's head."""
    names = getattr(dataset, "CLASSES", None)
    if names:
        return list(names)
    model = getattr(model, "module", model)
    return [str(i) for i in range(model.num_classes)]


def detection_metrics(predictions: list, truths: list, classes: list[str]) -> dict:
    """COCO mAP, mAP50, mAP75 and by size, and the number of predicted boxes."""
    metrics = coco_metrics(predictions, truths, classes)
    metrics["boxes_per_sample"] = sum(len(p["scores"]) for p in predictions) / max(
        1, len(predictions)
    )
    return metrics


def evaluate_detector(
    model, dataset, loader, device, autocast=None, desc="test", to_device=move_batch
) -> tuple[dict, float]:
    """COCO metrics of ``model`` over ``loader`` and the seconds spent in the model."""
    predictions, truths, seconds = predict_detections(
        model, loader, device, autocast, desc=desc, to_device=to_device
    )
    return detection_metrics(predictions, truths, class_names(dataset, model)), seconds
