"""How far a reduced-precision artifact is from its float32 model: top-1 accuracy of each on
the same samples, how often their predictions agree, and the largest output difference."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..registry import BidlError
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
    graph = StepGraph(
        model,
        runtime.batch_size,
        runtime.input_dtype if runtime.input_dtype == "uint8" else "float32",
        float(runtime.manifest["input"].get("scale", 1.0)),
    ).to(device)
    got, ref, labels = [], [], []
    count = 0
    for img, label in batches:
        img = img.detach().cpu() if torch.is_tensor(img) else torch.as_tensor(np.asarray(img))
        if limit is not None:
            img, label = img[: limit - count], label[: limit - count]
        rows = img.shape[0]
        if rows == 0:
            break
        got.append(np.asarray(runtime.run(img), dtype=np.float64).reshape(rows, -1))
        padded = torch.cat([img, img.new_zeros((runtime.batch_size - rows, *img.shape[1:]))])
        with torch.no_grad():
            out = graph.run_sequence(padded.to(device, graph.example_input().dtype))
        ref.append(out[:rows].double().cpu().numpy().reshape(rows, -1))
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


__all__ = ["PrecisionReport", "compare_with_float32"]
