"""``YOLOXHead``: YOLOX's decoupled, anchor-free head (as ST-YOLO uses it), its loss and
its post-processing (score threshold, class-wise NMS).

Per level (strides 8, 16, 32): a 1x1 stem, then two 3x3 convolutions for the class branch
and two for the box branch; 1x1 predictions of the classes, of the box (centre offset and
log size in strides) and of the objectness. Its width follows the input, as ST-YOLO's:
``hidden = int(256 * in_channels[-1] / 1024)``, unless ``hidden_channels`` sets it (the
head runs once per sample, after the time loop, so a wider head costs little).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..registry import HEADS, LOSSES, BidlError, build
from .boxes import batched_nms, cxcywh_to_xyxy
from .yolo_blocks import ConvBnAct

#: the raw prediction of each anchor: 4 box values, objectness, then the class logits
BOX, OBJ, CLS = slice(0, 4), 4, slice(5, None)


@HEADS.register_module(name=["YOLOXHead", "YoloX"])
class YOLOXHead(nn.Module):
    """Feature maps -> per-anchor predictions ``[B, A, 5 + num_classes]`` (raw: box
    offsets and log sizes, objectness and class logits), anchors level by level, row by
    row.

    Args:
        num_classes: object classes.
        in_channels: channels of the three input maps.
        strides: their strides in pixels.
        loss: the training loss (``YOLOXLoss``).
        hidden_channels: the branches' width (None: ST-YOLO's rule above).
        prior_prob: initial objectness and class probability (biases, as in YOLOX).
    """

    def __init__(
        self,
        num_classes: int = 2,
        in_channels: Sequence[int] = (128, 256, 512),
        strides: Sequence[int] = (8, 16, 32),
        loss: dict | None = None,
        hidden_channels: int | None = None,
        prior_prob: float = 0.01,
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise BidlError(f"YOLOXHead: num_classes must be a positive int, got {num_classes!r}")
        if len(in_channels) != len(strides):
            raise BidlError(
                f"YOLOXHead: one stride per input map; in_channels={list(in_channels)}, "
                f"strides={list(strides)}"
            )
        self.num_classes = num_classes
        self.strides = tuple(int(s) for s in strides)
        hidden = int(256 * in_channels[-1] / 1024) if hidden_channels is None else hidden_channels
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise BidlError(f"YOLOXHead: hidden_channels must be a positive int, got {hidden!r}")
        self.stems = nn.ModuleList(ConvBnAct(c, hidden, 1) for c in in_channels)

        def branch() -> nn.Sequential:
            return nn.Sequential(ConvBnAct(hidden, hidden, 3), ConvBnAct(hidden, hidden, 3))

        self.cls_convs = nn.ModuleList(branch() for _ in in_channels)
        self.reg_convs = nn.ModuleList(branch() for _ in in_channels)
        self.cls_preds = nn.ModuleList(nn.Conv2d(hidden, num_classes, 1) for _ in in_channels)
        self.reg_preds = nn.ModuleList(nn.Conv2d(hidden, 4, 1) for _ in in_channels)
        self.obj_preds = nn.ModuleList(nn.Conv2d(hidden, 1, 1) for _ in in_channels)
        bias = -math.log((1 - prior_prob) / prior_prob)
        for conv in (*self.cls_preds, *self.obj_preds):
            nn.init.constant_(conv.bias, bias)
        self.compute_loss = build(loss or dict(type="YOLOXLoss"), LOSSES)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """The raw predictions ``[B, A, 5 + K]`` of all levels."""
        if len(features) != len(self.strides):
            raise BidlError(
                f"YOLOXHead: expected {len(self.strides)} feature maps, got {len(features)}"
            )
        levels = []
        for k, x in enumerate(features):
            x = self.stems[k](x)
            cls_feat = self.cls_convs[k](x)
            reg_feat = self.reg_convs[k](x)
            out = torch.cat(
                [
                    self.reg_preds[k](reg_feat),
                    self.obj_preds[k](reg_feat),
                    self.cls_preds[k](cls_feat),
                ],
                dim=1,
            )
            levels.append(out.flatten(2))
        return torch.cat(levels, dim=2).transpose(1, 2)

    def anchors(
        self, features: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per anchor: its grid cell ``(x, y)`` ``[A, 2]``, its centre in pixels ``[A, 2]``
        and its stride ``[A]``, in the order of ``forward``'s anchors."""
        cells, strides = [], []
        for x, stride in zip(features, self.strides, strict=True):
            h, w = x.shape[-2:]
            ys, xs = torch.meshgrid(
                torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
            )
            cells.append(torch.stack((xs, ys), dim=-1).reshape(-1, 2))
            strides.append(torch.full((h * w,), stride, device=x.device))
        dtype = features[0].dtype
        cell = torch.cat(cells).to(dtype)
        stride = torch.cat(strides).to(dtype)
        return cell, (cell + 0.5) * stride[:, None], stride

    @staticmethod
    def decode(raw: torch.Tensor, cells: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
        """Raw box values -> boxes (cx, cy, w, h) in pixels ``[B, A, 4]``."""
        xy = (raw[..., :2] + cells) * strides[:, None]
        wh = torch.exp(raw[..., 2:4]) * strides[:, None]
        return torch.cat((xy, wh), dim=-1)

    def scores(self, raw: torch.Tensor, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Every anchor's decoded box (cx, cy, w, h), objectness and class probabilities
        ``[B, A, 5 + K]``: the output before thresholds and NMS."""
        cells, _, strides = self.anchors(features)
        boxes = self.decode(raw, cells, strides)
        return torch.cat((boxes, raw[..., 4:].sigmoid()), dim=-1)

    def loss(
        self,
        raw: torch.Tensor,
        features: Sequence[torch.Tensor],
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        cells, centers, strides = self.anchors(features)
        boxes = self.decode(raw, cells, strides)
        return self.compute_loss(
            boxes, raw[..., OBJ], raw[..., CLS], centers, strides, gt_bboxes, gt_labels
        )


def postprocess(
    decoded: torch.Tensor,
    score_thr: float = 0.1,
    nms_thr: float = 0.45,
    max_per_img: int = 100,
    multi_label: bool = False,
) -> list[dict[str, torch.Tensor]]:
    """``YOLOXHead.scores`` output ``[B, A, 5 + K]`` -> per sample ``bboxes`` ``[N, 4]``
    (x1, y1, x2, y2), ``scores`` ``[N]`` (objectness x class probability) and ``labels``
    ``[N]``: candidates scoring at least ``score_thr``, class-wise NMS at IoU ``nms_thr``,
    the ``max_per_img`` best. Each anchor proposes its best class (BIDL ST-YOLO's
    ``postprocess``: 0.1, 0.45), or with ``multi_label`` every class that passes the
    threshold (as YOLOv5's and mmdetection's evaluations do: a box whose class is in doubt
    is also scored, lower, under its second class)."""
    results = []
    for sample in decoded:
        class_probs = sample[:, 5:]
        if multi_label:
            all_scores = sample[:, 4:5] * class_probs
            anchors, labels = (all_scores >= score_thr).nonzero(as_tuple=True)
            scores = all_scores[anchors, labels]
        else:
            class_prob, labels = class_probs.max(dim=1)
            scores = sample[:, 4] * class_prob
            anchors = (scores >= score_thr).nonzero().squeeze(1)
            scores, labels = scores[anchors], labels[anchors]
        boxes = cxcywh_to_xyxy(sample[anchors, :4])
        kept = batched_nms(boxes, scores, labels, nms_thr)[:max_per_img]
        results.append({"bboxes": boxes[kept], "scores": scores[kept], "labels": labels[kept]})
    return results
