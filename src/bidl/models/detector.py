"""``Detector``: a spiking backbone, a neck and a detection head (ST-YOLO's form), built
from a config beside ``ImageClassifier``.

The backbone runs all ``T`` frames (time loop outside or inside its layers), its states
carrying the scene from frame to frame; the neck and the head then run once, on the last
step's features, so the boxes describe the end of the window (as GEN1's labels do).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import BACKBONES, CLASSIFIERS, HEADS, NECKS, BidlError, build
from .detection_loss import check_targets
from .yolox_head import postprocess

#: post-processing defaults (BIDL ST-YOLO's confidence and NMS thresholds)
TEST_CFG = {"score_thr": 0.1, "nms_thr": 0.45, "max_per_img": 100, "multi_label": False}


@CLASSIFIERS.register_module(name=["Detector", "YoloV5Detector"])
class Detector(nn.Module):
    """``img`` ``[B, T, C, H, W]`` -> backbone -> neck -> head.

    ``model(img, gt_bboxes=..., gt_labels=...)`` returns the loss dict in training (boxes
    ``[B, M, 4]`` x1, y1, x2, y2 in pixels; labels ``[B, M]``, -1 on padding rows);
    ``model(img, return_loss=False)`` a list, one dict per sample, of ``bboxes`` ``[K, 4]``,
    ``scores`` ``[K]`` and ``labels`` ``[K]`` after the score threshold and NMS.

    The neck's and head's ``in_channels`` default to the backbone's feature channels.
    ``test_cfg``: ``score_thr`` (0.1), ``nms_thr`` (0.45), ``max_per_img`` (100),
    ``multi_label`` (False: each anchor proposes its best class only; see ``postprocess``).
    """

    task = "detection"

    def __init__(
        self,
        backbone: dict,
        neck: dict | None = None,
        head: dict | None = None,
        test_cfg: dict | None = None,
        pretrained=None,
        train_cfg=None,
        init_cfg=None,
    ) -> None:
        super().__init__()
        self.backbone = build(backbone, BACKBONES)
        if not hasattr(self.backbone, "split_features"):
            raise BidlError(
                f"Detector: backbone {type(self.backbone).__name__} gives no multi-scale "
                f"features; use a detection backbone (YoloDetN, YoloDetS, YoloDetX, StYolo)"
            )
        channels = tuple(self.backbone.out_channels)
        self.neck = build(neck or dict(type="YOLOPAFPN"), NECKS, in_channels=channels)
        self.head = build(head or dict(type="YOLOXHead"), HEADS, in_channels=channels)
        unknown = set(test_cfg or {}) - set(TEST_CFG)
        if unknown:
            raise BidlError(
                f"Detector: unknown test_cfg keys {sorted(unknown)}; it takes {sorted(TEST_CFG)}"
            )
        self.test_cfg = {**TEST_CFG, **(test_cfg or {})}

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def extract_feat(self, img: torch.Tensor) -> list[torch.Tensor]:
        """The neck's maps of the last step's backbone features."""
        return self.neck(self.backbone.split_features(self.backbone(img)))

    def head_outputs(self, img: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = self.extract_feat(img)
        return self.head(features), features

    def forward_train(
        self, img: torch.Tensor, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor
    ) -> dict:
        check_targets(gt_bboxes, gt_labels, img.shape[0])
        raw, features = self.head_outputs(img)
        return self.head.loss(raw, features, gt_bboxes, gt_labels)

    def scores(self, img: torch.Tensor) -> torch.Tensor:
        """Every anchor's box (cx, cy, w, h), objectness and class probabilities
        ``[B, A, 5 + K]``, before the threshold and NMS."""
        raw, features = self.head_outputs(img)
        return self.head.scores(raw, features)

    def scores_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """``scores`` from the spiking part's output ``[B, F]`` (the backbone's, or a
        compiled step graph's after the last step): the part that runs after the time
        loop."""
        maps = self.neck(self.backbone.split_features(features))
        return self.head.scores(self.head(maps), maps)

    def detect_from_features(self, features: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Boxes, scores and labels from the spiking part's output ``[B, F]``."""
        return postprocess(self.scores_from_features(features), **self.test_cfg)

    def simple_test(self, img: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return postprocess(self.scores(img), **self.test_cfg)

    def forward(
        self,
        img: torch.Tensor,
        gt_bboxes: torch.Tensor | None = None,
        gt_labels: torch.Tensor | None = None,
        return_loss: bool = True,
        **kwargs,
    ) -> dict | list[dict[str, torch.Tensor]]:
        if not return_loss:
            return self.simple_test(img)
        if gt_bboxes is None or gt_labels is None:
            raise BidlError(
                "Detector: a training forward needs gt_bboxes and gt_labels; call "
                "model(img, return_loss=False) for predictions"
            )
        return self.forward_train(img, gt_bboxes, gt_labels)

    def example_targets(self, batch: int = 2, objects: int = 2) -> dict[str, torch.Tensor]:
        """Synthetic training targets for ``batch`` samples: ``objects`` boxes each inside
        the frame, the rest padding (a smoke test's batch)."""
        _, h, w = self.backbone.input_shape
        boxes = torch.zeros(batch, objects + 1, 4)
        labels = torch.full((batch, objects + 1), -1, dtype=torch.int64)
        for b in range(batch):
            for i in range(objects):
                x1, y1 = (0.1 + 0.4 * i) * w, (0.2 + 0.3 * b % 0.6) * h
                boxes[b, i] = torch.tensor([x1, y1, x1 + 0.3 * w, y1 + 0.3 * h])
                labels[b, i] = (b + i) % self.num_classes
        return {"gt_bboxes": boxes, "gt_labels": labels}
