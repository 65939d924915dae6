"""``YOLOXLoss``: YOLOX's training loss over SimOTA's assignment (``simota.py``).

Per batch, with ``num_fg`` the number of foreground anchors (at least 1):

- ``iou_loss``: ``reg_weight * sum(1 - IoU^2) / num_fg`` over foreground anchors, the
  decoded box against its object's box;
- ``conf_loss``: objectness BCE over every anchor (target 1 on foreground) ``/ num_fg``;
- ``cls_loss``: class BCE on foreground anchors, the target the one-hot class scaled by
  the IoU of the prediction ``/ num_fg``;
- ``loss``: their sum. ``num_fg`` (foreground anchors per object) is reported too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import LOSSES, BidlError
from .boxes import aligned_iou, xyxy_to_cxcywh
from .simota import simota_assign


def check_targets(gt_bboxes: torch.Tensor, gt_labels: torch.Tensor, batch: int) -> None:
    """Boxes ``[B, M, 4]`` and labels ``[B, M]`` (-1 on padding rows), or a clear error."""
    if not torch.is_tensor(gt_bboxes) or gt_bboxes.dim() != 3 or gt_bboxes.shape[-1] != 4:
        shape = list(gt_bboxes.shape) if torch.is_tensor(gt_bboxes) else type(gt_bboxes).__name__
        raise BidlError(
            f"detector: gt_bboxes must be [B, M, 4] boxes (x1, y1, x2, y2), got {shape}; the "
            f"dataset's pipeline must collect gt_bboxes and gt_labels padded to max_objects"
        )
    if not torch.is_tensor(gt_labels) or tuple(gt_labels.shape) != tuple(gt_bboxes.shape[:2]):
        shape = list(gt_labels.shape) if torch.is_tensor(gt_labels) else type(gt_labels).__name__
        raise BidlError(
            f"detector: gt_labels must be [B, M] class indices (-1 on padding) matching "
            f"gt_bboxes {list(gt_bboxes.shape)}, got {shape}"
        )
    if gt_bboxes.shape[0] != batch:
        raise BidlError(
            f"detector: {gt_bboxes.shape[0]} samples of boxes for a batch of {batch} frames"
        )


@LOSSES.register_module(name=["YOLOXLoss"])
class YOLOXLoss(nn.Module):
    """See the module docstring; ``reg_weight`` (5.0) weighs the IoU loss,
    ``center_radius`` (1.5 strides) bounds SimOTA's candidates."""

    def __init__(self, reg_weight: float = 5.0, center_radius: float = 1.5) -> None:
        super().__init__()
        self.reg_weight = float(reg_weight)
        self.center_radius = float(center_radius)

    def forward(
        self,
        boxes: torch.Tensor,
        obj_logits: torch.Tensor,
        cls_logits: torch.Tensor,
        centers: torch.Tensor,
        strides: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """``boxes`` ``[B, A, 4]`` decoded (cxcywh), ``obj_logits`` ``[B, A]``,
        ``cls_logits`` ``[B, A, K]``, anchor ``centers`` ``[A, 2]`` and ``strides``
        ``[A]``; targets ``gt_bboxes`` ``[B, M, 4]`` (xyxy) and ``gt_labels`` ``[B, M]``."""
        batch, _, num_classes = cls_logits.shape
        check_targets(gt_bboxes, gt_labels, batch)
        if bool((gt_labels >= num_classes).any()):
            raise BidlError(
                f"YOLOXLoss: a label is {int(gt_labels.max())}, but the head has "
                f"{num_classes} classes; set the head's num_classes to the dataset's"
            )
        obj_targets = torch.zeros_like(obj_logits)
        fg_boxes, fg_targets, fg_cls, fg_cls_targets = [], [], [], []
        objects = 0
        for b in range(batch):
            valid = gt_labels[b] >= 0
            gt = xyxy_to_cxcywh(gt_bboxes[b][valid].to(boxes.dtype))
            classes = gt_labels[b][valid]
            objects += int(classes.numel())
            if classes.numel() == 0:
                continue
            found = simota_assign(
                boxes[b].detach(),
                obj_logits[b].detach(),
                cls_logits[b].detach(),
                centers,
                strides,
                gt,
                classes,
                self.center_radius,
            )
            if found.num_fg == 0:
                continue
            obj_targets[b, found.fg_mask] = 1.0
            fg_boxes.append(boxes[b][found.fg_mask])
            fg_targets.append(gt[found.matched_gt])
            fg_cls.append(cls_logits[b][found.fg_mask])
            onehot = F.one_hot(classes[found.matched_gt].long(), num_classes).to(cls_logits.dtype)
            fg_cls_targets.append(onehot * found.matched_iou[:, None].to(cls_logits.dtype))
        num_fg = sum(t.shape[0] for t in fg_targets)
        norm = max(num_fg, 1)
        conf_loss = (
            F.binary_cross_entropy_with_logits(obj_logits, obj_targets, reduction="sum") / norm
        )
        if num_fg:
            iou = aligned_iou(torch.cat(fg_boxes), torch.cat(fg_targets))
            iou_loss = self.reg_weight * (1 - iou**2).sum() / norm
            cls_loss = (
                F.binary_cross_entropy_with_logits(
                    torch.cat(fg_cls), torch.cat(fg_cls_targets), reduction="sum"
                )
                / norm
            )
        else:  # no object in the batch: only objectness learns (zeros keep the graph)
            iou_loss = boxes.sum() * 0.0
            cls_loss = cls_logits.sum() * 0.0
        return {
            "loss": iou_loss + conf_loss + cls_loss,
            "iou_loss": iou_loss.detach(),
            "conf_loss": conf_loss.detach(),
            "cls_loss": cls_loss.detach(),
            "num_fg": torch.tensor(num_fg / max(objects, 1)),
        }
