"""SimOTA (YOLOX's label assignment): which anchor points learn which object.

For one image: the candidate anchors are those whose centre lies within ``center_radius``
strides of an object's centre. Each (object, candidate) pair costs the classification
BCE of the candidate's ``sqrt(sigmoid(cls) * sigmoid(obj))`` against the object's class,
plus ``3 * -log(IoU)``; pairs outside the object's centre region cost 1e6 more. Each
object takes its ``k`` cheapest candidates, ``k`` the sum of its ten best IoUs (at least
1); an anchor claimed by several objects keeps the cheapest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .boxes import box_iou

#: candidates per object whose IoUs set its dynamic k
TOPK_CANDIDATES = 10
#: weight of the IoU cost against the classification cost
IOU_COST_WEIGHT = 3.0
#: cost added to pairs outside the object's centre region
OUTSIDE_COST = 1e6


@dataclass
class Assignment:
    """The result for one image with ``A`` anchors and ``G`` objects."""

    fg_mask: torch.Tensor  # [A] bool: anchors that learn an object
    matched_gt: torch.Tensor  # [num_fg] int64: the object of each foreground anchor
    matched_iou: torch.Tensor  # [num_fg]: IoU of its prediction with that object

    @property
    def num_fg(self) -> int:
        return int(self.matched_gt.numel())


def center_candidates(
    gt_cxcywh: torch.Tensor, centers: torch.Tensor, strides: torch.Tensor, radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors within ``radius`` strides of any object's centre: the mask ``[A]`` and, for
    those anchors, which objects they are near ``[G, A_candidates]``."""
    reach = strides[None, :] * radius  # [1, A]
    dx = (centers[None, :, 0] - gt_cxcywh[:, None, 0]).abs()
    dy = (centers[None, :, 1] - gt_cxcywh[:, None, 1]).abs()
    inside = (dx < reach) & (dy < reach)  # [G, A]
    mask = inside.any(dim=0)
    return mask, inside[:, mask]


@torch.no_grad()
def simota_assign(
    pred_boxes: torch.Tensor,
    obj_logits: torch.Tensor,
    cls_logits: torch.Tensor,
    centers: torch.Tensor,
    strides: torch.Tensor,
    gt_cxcywh: torch.Tensor,
    gt_classes: torch.Tensor,
    center_radius: float = 1.5,
) -> Assignment:
    """Assign the ``G`` objects (``gt_cxcywh`` ``[G, 4]``, ``gt_classes`` ``[G]``) of one
    image to its ``A`` anchors: decoded boxes ``pred_boxes`` ``[A, 4]`` (cxcywh),
    ``obj_logits`` ``[A]``, ``cls_logits`` ``[A, K]``, anchor centres ``[A, 2]`` and
    strides ``[A]``."""
    anchors = pred_boxes.shape[0]
    fg_mask, near = center_candidates(gt_cxcywh, centers, strides, center_radius)
    candidates = int(fg_mask.sum())
    empty = torch.zeros(0, dtype=torch.int64, device=pred_boxes.device)
    if candidates == 0 or gt_cxcywh.shape[0] == 0:
        none = torch.zeros(anchors, dtype=torch.bool, device=pred_boxes.device)
        return Assignment(none, empty, pred_boxes.new_zeros(0))
    ious = box_iou(gt_cxcywh.float(), pred_boxes[fg_mask].float(), fmt="cxcywh")  # [G, C]
    num_classes = cls_logits.shape[-1]
    probs = (
        cls_logits[fg_mask].float().sigmoid() * obj_logits[fg_mask, None].float().sigmoid()
    ).sqrt()
    target = F.one_hot(gt_classes.long(), num_classes).float()  # [G, K]
    cls_cost = F.binary_cross_entropy(
        probs[None].expand(target.shape[0], -1, -1),
        target[:, None].expand(-1, candidates, -1),
        reduction="none",
    ).sum(-1)
    cost = cls_cost + IOU_COST_WEIGHT * -torch.log(ious + 1e-8) + OUTSIDE_COST * (~near)

    top = min(TOPK_CANDIDATES, candidates)
    dynamic_k = ious.topk(top, dim=1).values.sum(1).int().clamp(min=1)
    matching = torch.zeros_like(cost, dtype=torch.bool)
    for g in range(cost.shape[0]):
        chosen = cost[g].topk(int(dynamic_k[g]), largest=False).indices
        matching[g, chosen] = True
    claimed = matching.sum(0)
    if bool((claimed > 1).any()):  # an anchor claimed by several objects keeps the cheapest
        shared = claimed > 1
        cheapest = cost[:, shared].argmin(0)
        matching[:, shared] = False
        matching[cheapest, shared.nonzero().squeeze(1)] = True
    fg_in_candidates = matching.any(0)
    matched_gt = matching[:, fg_in_candidates].float().argmax(0)
    matched_iou = (matching.float() * ious).sum(0)[fg_in_candidates]
    fg_mask = fg_mask.clone()
    fg_mask[fg_mask.clone()] = fg_in_candidates
    return Assignment(fg_mask, matched_gt, matched_iou)
