"""How far a reduced-precision artifact is from its float32 model: top-1 accuracy of each on
the same samples, how often their predictions agree, and the largest output difference;
for a detector, the COCO mAP of each (the artifact's head graph and NMS after its steps,
against the float32 model's neck, head and NMS) and the largest feature difference."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..engine.detection import detection_metrics, unpadded
from ..registry import BidlError
from .head_graph import open_head
from .runtime import Runtime
from .step_graph import StepGraph


@dataclass
class PrecisionReport:
    """An artifact of ``precision`` against the float32 step graph of the same weights."""

    precision: str
    samples: int
    reference_top1: float  # percent, float32
    top1: float  # percent, the artifact
    agreement: float  # percent of samples with the same predicted class
    max_abs_diff: float  # largest |artifact - float32| over every output value
    max_abs_reference: float  # largest |float32 output|, for scale

    @property
    def top1_change(self) -> float:
        return self.top1 - self.reference_top1

    def summary(self, what: str = "test split") -> str:
        return (
            f"accuracy on the {what} ({self.samples} samples): top-1 fp32 "
            f"{self.reference_top1:.2f} %, {self.precision} {self.top1:.2f} % "
            f"({self.top1_change:+.2f} points); same prediction for {self.agreement:.2f} % of "
            f"samples; largest output difference {self.max_abs_diff:.3g} (outputs up to "
            f"{self.max_abs_reference:.3g})"
        )


@dataclass
class DetectionPrecisionReport:
    """A detector's artifact of ``precision`` against the float32 model of the same weights."""

    precision: str
    samples: int
    reference: dict  # COCO figures of the float32 model (mAP, mAP50, ...)
    metrics: dict  # the same of the artifact
    max_abs_diff: float  # largest |artifact - float32| over the spiking part's features
    max_abs_reference: float

    def summary(self, what: str = "test split") -> str:
        ref, got = self.reference, self.metrics
        return (
            f"detection on the {what} ({self.samples} samples): mAP fp32 {ref['mAP']:.4f}, "
            f"{self.precision} {got['mAP']:.4f} ({got['mAP'] - ref['mAP']:+.4f}); mAP50 fp32 "
            f"{ref['mAP50']:.4f}, {self.precision} {got['mAP50']:.4f} "
            f"({got['mAP50'] - ref['mAP50']:+.4f}); largest feature difference "
            f"{self.max_abs_diff:.3g} (features up to {self.max_abs_reference:.3g})"
        )


def _float32_graph(model: torch.nn.Module, runtime: Runtime, device: torch.device) -> StepGraph:
    """The float32 step graph of ``model`` taking what ``runtime``'s artifact takes."""
    return StepGraph(
        model,
        runtime.batch_size,
        runtime.input_dtype if runtime.input_dtype == "uint8" else "float32",
        float(runtime.manifest["input"].get("scale", 1.0)),
    ).to(device)


def _both(runtime: Runtime, graph: StepGraph, img, device) -> tuple[np.ndarray, np.ndarray]:
    """(the artifact's outputs, the float32 graph's) for the batch ``img`` [rows, T, ...]."""
    rows = img.shape[0]
    got = np.asarray(runtime.run(img), dtype=np.float64).reshape(rows, -1)
    padded = torch.cat([img, img.new_zeros((runtime.batch_size - rows, *img.shape[1:]))])
    with torch.no_grad():
        out = graph.run_sequence(padded.to(device, graph.example_input().dtype))
    return got, out[:rows].double().cpu().numpy().reshape(rows, -1)


def _cpu(img) -> torch.Tensor:
    return img.detach().cpu() if torch.is_tensor(img) else torch.as_tensor(np.asarray(img))


def compare_detector_with_float32(
    model: torch.nn.Module,
    runtime: Runtime,
    batches: Iterable[dict],
    classes: list[str],
    device: str | torch.device = "cpu",
    limit: int | None = None,
) -> DetectionPrecisionReport:
    """Run detection ``batches`` (dicts with ``img``, ``gt_bboxes``, ``gt_labels``) through
    the artifact (steps, head graph, NMS) and through ``model`` in float32 (its step graph,
    neck, head, NMS); COCO figures of both on at most ``limit`` samples."""
    device = torch.device(device)
    model = model.eval()  # the neck's batch norms use their running statistics
    graph = _float32_graph(model, runtime, device)
    head = open_head(runtime.folder, runtime.manifest, runtime.device)
    if head is None:
        raise BidlError(
            f"{runtime.folder}: the detector's artifact has no head graph to compare; recompile it"
        )
    got_boxes, ref_boxes, truths, diffs, scale = [], [], [], [0.0], [0.0]
    count = 0
    for batch in batches:
        img = _cpu(batch["img"])
        take = img.shape[0] if limit is None else min(img.shape[0], limit - count)
        if take <= 0:
            break
        got, ref = _both(runtime, graph, img[:take], device)
        got_boxes += head.detect(got.astype(np.float32))
        with torch.no_grad():
            ref_boxes += model.detect_from_features(torch.from_numpy(ref).float())
        truths += unpadded(batch["gt_bboxes"][:take], batch["gt_labels"][:take])
        diffs.append(float(np.abs(got - ref).max()))
        scale.append(float(np.abs(ref).max()))
        count += take
    if not count:
        raise BidlError("comparison with float32: the data gave no samples")
    return DetectionPrecisionReport(
        precision=str(runtime.manifest.get("precision", "fp32")),
        samples=count,
        reference=detection_metrics(ref_boxes, truths, classes),
        metrics=detection_metrics(got_boxes, truths, classes),
        max_abs_diff=max(diffs),
        max_abs_reference=max(scale),
    )


def compare_with_float32(
    model: torch.nn.Module,
    runtime: Runtime,
    batches: Iterable,
    device: str | torch.device = "cpu",
    limit: int | None = None,
) -> PrecisionReport:
    """Run ``batches`` (``(img [B, T, ...], labels [B])`` pairs) through ``runtime`` and
    through ``model``'s float32 step graph on ``device``; at most ``limit`` samples."""
    device = torch.device(device)
    graph = _float32_graph(model, runtime, device)
    got, ref, labels = [], [], []
    count = 0
    for img, label in batches:
        img = _cpu(img)
        if limit is not None:
            img, label = img[: limit - count], label[: limit - count]
        rows = img.shape[0]
        if rows == 0:
            break
        pair = _both(runtime, graph, img, device)
        got.append(pair[0])
        ref.append(pair[1])
        labels.append(np.asarray(label).reshape(-1))
        count += rows
        if limit is not None and count >= limit:
            break
    if not count:
        raise BidlError("comparison with float32: the data gave no samples")
    got, ref, labels = np.concatenate(got), np.concatenate(ref), np.concatenate(labels)
    return PrecisionReport(
        precision=str(runtime.manifest.get("precision", "fp32")),
        samples=count,
        reference_top1=100.0 * float((ref.argmax(1) == labels).mean()),
        top1=100.0 * float((got.argmax(1) == labels).mean()),
        agreement=100.0 * float((got.argmax(1) == ref.argmax(1)).mean()),
        max_abs_diff=float(np.abs(got - ref).max()),
        max_abs_reference=float(np.abs(ref).max()),
    )


__all__ = [
    "DetectionPrecisionReport",
    "PrecisionReport",
    "compare_detector_with_float32",
    "compare_with_float32",
]
