"""``YOLOPAFPN``: YOLOX's path-aggregation neck (top-down, then bottom-up), as ST-YOLO
uses it on the spiking backbone's last-step features. Stateless: it runs once, after the
spiking part."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import NECKS, BidlError
from .yolo_blocks import C3, ConvBnAct


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling of ``x`` to ``like``'s height and width (x2 for the
    usual even maps, as YOLOX's ``scale_factor=2``)."""
    return F.interpolate(x, size=like.shape[-2:], mode="nearest-exact")


@NECKS.register_module(name=["YOLOPAFPN", "PAFPN"])
class YOLOPAFPN(nn.Module):
    """Feature maps at strides 8, 16, 32 with ``in_channels`` -> maps of the same shapes.

    ``depth`` scales the bottlenecks of each CSP layer (``round(3 * depth)``; ST-YOLO's
    config: 0.67, two)."""

    def __init__(self, in_channels: Sequence[int] = (128, 256, 512), depth: float = 0.67) -> None:
        super().__init__()
        if len(in_channels) != 3:
            raise BidlError(
                f"YOLOPAFPN takes three feature maps (strides 8, 16, 32); in_channels={in_channels!r}"
            )
        c3, c4, c5 = (int(c) for c in in_channels)
        self.in_channels = (c3, c4, c5)
        n = round(3 * depth)
        self.lateral_conv0 = ConvBnAct(c5, c4, 1)
        self.C3_p4 = C3(2 * c4, c4, n, shortcut=False)
        self.reduce_conv1 = ConvBnAct(c4, c3, 1)
        self.C3_p3 = C3(2 * c3, c3, n, shortcut=False)
        self.bu_conv2 = ConvBnAct(c3, c3, 3, 2)
        self.C3_n3 = C3(2 * c3, c4, n, shortcut=False)
        self.bu_conv1 = ConvBnAct(c4, c4, 3, 2)
        self.C3_n4 = C3(2 * c4, c5, n, shortcut=False)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        x2, x1, x0 = features
        top = self.lateral_conv0(x0)  # stride 32
        mid = self.C3_p4(torch.cat([upsample_to(top, x1), x1], 1))
        mid_reduced = self.reduce_conv1(mid)  # stride 16
        out2 = self.C3_p3(torch.cat([upsample_to(mid_reduced, x2), x2], 1))  # stride 8
        out1 = self.C3_n3(torch.cat([self.bu_conv2(out2), mid_reduced], 1))  # stride 16
        out0 = self.C3_n4(torch.cat([self.bu_conv1(out1), top], 1))  # stride 32
        return [out2, out1, out0]
