"""Classification heads: turn the backbone's scores into losses, accuracies or predictions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS, LOSSES, BidlError, build


@HEADS.register_module()
class ClsHead(nn.Module):
    """The backbone already produces class scores; the head adds the loss and top-k accuracy.

    Scores are ``[B, K]``, or one logit per sample ``[B]`` for a binary task (see
    ``class_scores``)."""

    def __init__(
        self,
        loss: dict | None = None,
        topk: int | tuple[int, ...] = (1,),
        cal_acc: bool = False,
        init_cfg=None,
    ):
        super().__init__()
        self.topk = (topk,) if isinstance(topk, int) else tuple(topk)
        if any(k < 1 for k in self.topk):
            raise BidlError(f"ClsHead topk values must be >= 1, got {self.topk}")
        self.cal_acc = cal_acc
        self.compute_loss = build(loss or dict(type="CrossEntropyLoss"), LOSSES)

    def accuracy(self, cls_score: torch.Tensor, gt_label: torch.Tensor) -> dict[str, torch.Tensor]:
        cls_score = class_scores(cls_score)
        if gt_label.dim() == 2:  # soft targets (mixup, distillation): their top class
            gt_label = gt_label.argmax(dim=1)
        maxk = min(max(self.topk), cls_score.shape[1])
        ranked = cls_score.topk(maxk, dim=1).indices
        hits = ranked.eq(gt_label.view(-1, 1))
        return {
            f"top-{k}": hits[:, : min(k, maxk)].any(dim=1).float().mean() * 100.0 for k in self.topk
        }

    def forward_train(self, cls_score: torch.Tensor, gt_label: torch.Tensor) -> dict:
        losses = {"loss": self.compute_loss(cls_score, gt_label)}
        if self.cal_acc:
            with torch.no_grad():
                losses["accuracy"] = self.accuracy(cls_score, gt_label)
        return losses

    def simple_test(self, cls_score: torch.Tensor, softmax: bool = True) -> torch.Tensor:
        cls_score = class_scores(cls_score)
        return F.softmax(cls_score, dim=1) if softmax else cls_score


def class_scores(cls_score: torch.Tensor) -> torch.Tensor:
    """Scores ``[B, K]``; one logit per sample ``[B]`` (BIDL's binary models, sigmoid loss)
    becomes ``[B, 2]`` scores ``(0, logit)``, whose softmax is ``(1 - p, p)`` with
    ``p = sigmoid(logit)``: class 1 wins when the logit is positive."""
    if cls_score.dim() == 1:
        return torch.stack([torch.zeros_like(cls_score), cls_score], dim=1)
    return cls_score
