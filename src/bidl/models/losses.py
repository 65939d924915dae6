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
    """Softmax cross entropy on integer labels (or soft targets of the same shape).

    ``use_sigmoid=True`` (BIDL's binary models): a sigmoid cross entropy on logits; one
    logit per sample ``[B]`` takes 0/1 labels ``[B]``, scores ``[B, K]`` take integer
    labels (one-hot) or targets of the same shape. ``use_soft=True``: the softmax cross
    entropy against soft targets ``[B, K]`` (probabilities).
    """

    def __init__(
        self,
        use_sigmoid: bool = False,
        use_soft: bool = False,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        class_weight=None,
    ):
        super().__init__()
        if use_sigmoid and use_soft:
            raise BidlError("CrossEntropyLoss: use_sigmoid and use_soft cannot both be True")
        self.use_sigmoid, self.use_soft = bool(use_sigmoid), bool(use_soft)
        self.reduction = _check_reduction(reduction)
        self.loss_weight = loss_weight
        weight = (
            None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
        )
        self.register_buffer("class_weight", weight, persistent=False)

    def forward(self, cls_score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if self.use_sigmoid:
            loss = self._binary(cls_score, label)
        elif self.use_soft and label.shape != cls_score.shape:
            raise BidlError(
                f"CrossEntropyLoss(use_soft=True): targets {list(label.shape)} must have the "
                f"shape of the scores {list(cls_score.shape)}"
            )
        else:
            if self.use_soft:
                label = label.float()
            loss = F.cross_entropy(
                cls_score, label, weight=self.class_weight, reduction=self.reduction
            )
        return self.loss_weight * loss

    def _binary(self, cls_score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if label.shape != cls_score.shape:
            if cls_score.dim() != 2 or label.dim() != 1:
                raise BidlError(
                    f"CrossEntropyLoss(use_sigmoid=True): labels {list(label.shape)} do not "
                    f"fit scores {list(cls_score.shape)}; give one 0/1 label per logit, or "
                    f"integer class labels [B] for scores [B, K]"
                )
            label = F.one_hot(label.long(), cls_score.shape[1])
        weight = self.class_weight
        if weight is not None and cls_score.dim() == 2:
            weight = weight.expand_as(cls_score)
        return F.binary_cross_entropy_with_logits(
            cls_score, label.to(cls_score.dtype), weight=weight, reduction=self.reduction
        )


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
        if label.dim() == cls_score.dim():  # class probabilities (mixup / CutMix targets)
            label = label.to(cls_score.dtype)
        loss = F.cross_entropy(
            cls_score, label, label_smoothing=self.label_smooth_val, reduction=self.reduction
        )
        return self.loss_weight * loss
