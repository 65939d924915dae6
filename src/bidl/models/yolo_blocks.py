"""The YOLOv5 / YOLOX building blocks, written once for both step modes.

Every block is a ``SpikingLayer``: ``compute(x, apply)`` runs on one timestep
``[B, C, H, W]`` (step mode 's') or on a whole sequence ``[T, B, C, H, W]`` ('m', where
the convolutions run once on time folded into the batch and batch norm in training keeps
per-step statistics). Channels are therefore concatenated along dim -3, which is the
channel dim in both layouts.

``ConvBnAct`` is YOLOv5's ``Conv`` and YOLOX's ``BaseConv`` (convolution without bias,
batch norm, SiLU); ``conv_lif`` is BIDL's ``Conv_lif`` of ST-YOLO (convolution, then a
LIF cell with batch norm on its membrane whose output is ``tanh`` of the new membrane);
``Bottleneck``, ``C3`` (YOLOX's ``CSPLayer``) and ``SPPF`` optionally end in ``conv_lif``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers.base import Apply, SpikingLayer
from ..layers.conv_lif import Conv2dLif
from ..neurons.surrogate import heaviside


def autopad(kernel: int) -> int:
    """'Same' padding of an odd kernel at stride 1."""
    return kernel // 2


class ConvBnAct(SpikingLayer):
    """``Conv2d`` (no bias) -> ``BatchNorm2d`` -> SiLU (or no activation)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        padding: int | None = None,
        act: bool = True,
    ) -> None:
        super().__init__()
        pad = autopad(kernel) if padding is None else padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, pad, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.SiLU() if act else nn.Identity()

    def compute(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        return apply(self.act, apply(self.bn, apply(self.conv, x)))


def conv_lif(
    in_channels: int,
    out_channels: int,
    kernel: int = 1,
    stride: int = 1,
    padding: int | None = None,
    spike_func: Any = None,
    **neuron_kwargs: Any,
) -> Conv2dLif:
    """BIDL ST-YOLO's ``Conv_lif``: ``Conv2d`` (no bias), then a LIF cell (alpha 0.3,
    theta 0.5, v_0 0, one value per channel, not learned) with ``BatchNorm2d`` on the
    membrane; its output is ``tanh`` of the membrane after reset and leak (the new state).
    ``spike_func=None`` fires as BIDL does there, a Heaviside step with no gradient (the
    gradient flows through the membrane); a surrogate name may replace it."""
    options = dict(
        mode="analog",
        memb_mode=(3, "tanh"),
        soma_params="channel_share",
        spike_func=heaviside if spike_func is None else spike_func,
    )
    options.update(neuron_kwargs)
    pad = autopad(kernel) if padding is None else padding
    return Conv2dLif(
        in_channels, out_channels, kernel, stride, pad, bias=False, norm="state", **options
    )


class Bottleneck(SpikingLayer):
    """1x1 ``ConvBnAct`` -> 3x3 ``ConvBnAct``, plus the input when ``shortcut`` (and the
    channel counts agree)."""

    def __init__(self, in_channels: int, out_channels: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1 = ConvBnAct(in_channels, out_channels, 1)
        self.cv2 = ConvBnAct(out_channels, out_channels, 3)
        self.add = shortcut and in_channels == out_channels

    def compute(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        y = apply(self.cv2, apply(self.cv1, x))
        return x + y if self.add else y


class C3(SpikingLayer):
    """CSP bottleneck with three convolutions: ``cv1`` -> ``n`` bottlenecks, beside
    ``cv2``; both halves concatenated, then ``cv3`` (a ``conv_lif`` when ``lif``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n: int = 1,
        shortcut: bool = True,
        expansion: float = 0.5,
        lif: bool = False,
        spike_func: Any = None,
    ) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        self.cv1 = ConvBnAct(in_channels, hidden, 1)
        self.cv2 = ConvBnAct(in_channels, hidden, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut) for _ in range(n)))
        self.cv3 = (
            conv_lif(2 * hidden, out_channels, 1, spike_func=spike_func)
            if lif
            else ConvBnAct(2 * hidden, out_channels, 1)
        )

    def compute(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        both = torch.cat((apply(self.m, apply(self.cv1, x)), apply(self.cv2, x)), dim=-3)
        return apply(self.cv3, both)


class SPPF(SpikingLayer):
    """Spatial pyramid pooling, fast: ``cv1``, three chained 5x5 max pools (stride 1), the
    four maps concatenated, then ``cv2`` (a ``conv_lif`` when ``lif``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 5,
        lif: bool = False,
        spike_func: Any = None,
    ) -> None:
        super().__init__()
        hidden = in_channels // 2
        self.cv1 = ConvBnAct(in_channels, hidden, 1)
        self.m = nn.MaxPool2d(kernel, stride=1, padding=kernel // 2)
        self.cv2 = (
            conv_lif(4 * hidden, out_channels, 1, spike_func=spike_func)
            if lif
            else ConvBnAct(4 * hidden, out_channels, 1)
        )

    def compute(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        x = apply(self.cv1, x)
        y1 = apply(self.m, x)
        y2 = apply(self.m, y1)
        return apply(self.cv2, torch.cat((x, y1, y2, apply(self.m, y2)), dim=-3))
