"""``ImageClassifier``: backbone (+ optional neck) + head, BIDL's (and mmcls's) model shape."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import BACKBONES, CLASSIFIERS, HEADS, NECKS, BidlError, build


@CLASSIFIERS.register_module()
class ImageClassifier(nn.Module):
    """``img`` ``[B, T, C, H, W]`` -> backbone -> (neck) -> head.

    ``model(img, gt_label)`` returns the loss dict in training; ``model(img, return_loss=False)``
    returns class probabilities ``[B, num_classes]``.
    """

    def __init__(
        self,
        backbone: dict,
        neck: dict | None = None,
        head: dict | None = None,
        pretrained=None,
        train_cfg=None,
        init_cfg=None,
    ):
        super().__init__()
        self.backbone = build(backbone, BACKBONES)
        self.neck = build(neck, NECKS)
        self.head = build(head or dict(type="ClsHead"), HEADS)

    def extract_feat(self, img: torch.Tensor) -> torch.Tensor:
        x = self.backbone(img)
        return self.neck(x) if self.neck is not None else x

    def forward_train(self, img: torch.Tensor, gt_label: torch.Tensor) -> dict:
        return self.head.forward_train(self.extract_feat(img), gt_label)

    def simple_test(self, img: torch.Tensor, softmax: bool = True) -> torch.Tensor:
        return self.head.simple_test(self.extract_feat(img), softmax=softmax)

    def forward(
        self,
        img: torch.Tensor,
        gt_label: torch.Tensor | None = None,
        return_loss: bool = True,
        **kwargs,
    ) -> dict | torch.Tensor:
        if not return_loss:
            return self.simple_test(img)
        if gt_label is None:
            raise BidlError(
                "ImageClassifier: a training forward needs gt_label; "
                "call model(img, return_loss=False) for predictions"
            )
        return self.forward_train(img, gt_label)


def build_classifier(cfg: dict) -> nn.Module:
    """Build the whole model from the config's ``model`` section."""
    return build(cfg, CLASSIFIERS)
