"""Classification losses, built by name from configs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import LOSSES, BidlError


def _check_reduction(reduction: str) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise BidlError(f"loss reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


@LOSSES.register_module()
class CrossEntropyLoss(nn.Module):
    """Softmax cross entropy on integer labels (or soft targets of the same shape)."""

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0, class_weight=None):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self.loss_weight = loss_weight
        weight = (
            None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
        )
        self.register_buffer("class_weight", weight, persistent=False)

    def forward(self, cls_score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(cls_score, label, weight=self.class_weight, reduction=self.reduction)
        return self.loss_weight * loss


@LOSSES.register_module()
class LabelSmoothLoss(nn.Module):
    """Cross entropy against ``(1 - label_smooth_val) * one_hot + label_smooth_val / K``."""

    def __init__(
        self,
        label_smooth_val: float,
        num_classes: int | None = None,
        mode: str = "original",
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ):
        super().__init__()
        if not 0.0 <= label_smooth_val < 1.0:
            raise BidlError(f"label_smooth_val must be in [0, 1), got {label_smooth_val}")
        if mode != "original":
            raise BidlError(f"LabelSmoothLoss supports mode='original', got {mode!r}")
        self.label_smooth_val = label_smooth_val
        self.num_classes = num_classes
        self.reduction = _check_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(self, cls_score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if self.num_classes is not None and cls_score.shape[-1] != self.num_classes:
            raise BidlError(
                f"LabelSmoothLoss: num_classes={self.num_classes} but scores have "
                f"{cls_score.shape[-1]} classes"
            )
        loss = F.cross_entropy(
            cls_score, label, label_smoothing=self.label_smooth_val, reduction=self.reduction
        )
        return self.loss_weight * loss
