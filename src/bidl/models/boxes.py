"""Boxes: format conversions, pairwise IoU and a batched non-maximum suppression, in plain
torch (no torchvision).

Formats: ``xyxy`` is (x1, y1, x2, y2), ``cxcywh`` is (centre x, centre y, width, height),
both in pixels of the frame the model sees.
"""

from __future__ import annotations

import torch

from ..registry import BidlError


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def box_iou(a: torch.Tensor, b: torch.Tensor, fmt: str = "xyxy") -> torch.Tensor:
    """IoU of every box of ``a`` ``[N, 4]`` with every box of ``b`` ``[M, 4]`` -> ``[N, M]``.
    Boxes that do not overlap (touching edges included) have IoU 0."""
    if fmt == "cxcywh":
        a, b = cxcywh_to_xyxy(a), cxcywh_to_xyxy(b)
    elif fmt != "xyxy":
        raise BidlError(f"box_iou: fmt must be 'xyxy' or 'cxcywh', got {fmt!r}")
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(dim=-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(dim=-1)
    return overlap / (area_a[:, None] + area_b[None, :] - overlap).clamp(min=1e-12)


def aligned_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of ``a[i]`` with ``b[i]``, boxes ``[N, 4]`` in cxcywh (the regression loss's)."""
    a, b = cxcywh_to_xyxy(a), cxcywh_to_xyxy(b)
    top_left = torch.maximum(a[:, :2], b[:, :2])
    bottom_right = torch.minimum(a[:, 2:], b[:, 2:])
    overlap = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(dim=-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(dim=-1)
    return overlap / (area_a + area_b - overlap + 1e-16)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the kept boxes ``[K]``, highest score
    first. A box is dropped when its IoU with a kept, higher-scoring box exceeds
    ``iou_threshold``. Ties in score keep the earlier box, as a stable sort does."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    count = order.numel()
    # a box survives when no kept box before it overlaps it too much; kept boxes are known
    # in score order, so one pass over the rows decides them all
    suppressed = torch.zeros(count, dtype=torch.bool, device=boxes.device)
    overlaps = (iou > iou_threshold).triu(diagonal=1)
    for i in range(count):
        if not suppressed[i]:
            suppressed |= overlaps[i]
    return order[~suppressed]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS within each group (class) independently: boxes of different groups never
    suppress each other. Shifts each group's boxes by an offset larger than every
    coordinate, so one ``nms`` call does all groups. Indices sorted by score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    span = boxes.max() - boxes.min() + 1
    shifted = boxes + (groups.to(boxes.dtype) * span)[:, None]
    return nms(shifted, scores, iou_threshold)
