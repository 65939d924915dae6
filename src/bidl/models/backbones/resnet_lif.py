"""ResNet-LIF backbones of BIDL (depth 10/18/34/50/101/152): residual blocks whose neurons
are LIF cells, one definition for both execution modes and for model segments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ...layers import SpikingLayer
from ...neurons import build_neuron, run_multi_step
from ...registry import BidlError
from .base import SpikingBackbone, register_spiking_backbone

Apply = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _one_step(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return module(x)


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))


class ResidualBlock(SpikingLayer):
    """A residual block written once as ``compute(x, apply)``: one step applies each part
    directly; a sequence ``[T, B, ...]`` applies it with ``run_multi_step`` (convs folded
    over time, cells multi-step), so both give the same result."""

    def compute(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        raise NotImplementedError

    def shortcut(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        return apply(self.downsample, x) if self.downsample is not None else x

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        return self.compute(x, _one_step)

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.compute(x_seq, run_multi_step)


class BasicBlock(ResidualBlock):
    """conv3x3-BN -> act -> conv3x3-BN, plus the shortcut, -> LIF."""

    expansion = 1

    def __init__(self, cin, cout, stride, downsample, make_act, make_cell):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, 1)
        self.act1 = make_act(cout)
        self.conv2 = conv_bn(cout, cout, 3, 1, 1)
        self.downsample = downsample
        self.lif_out = make_cell(cout)
        self.last_bn = self.conv2[1]

    def compute(self, x, apply):
        out = apply(self.conv2, apply(self.act1, apply(self.conv1, x)))
        return apply(self.lif_out, out + self.shortcut(x, apply))


class Bottleneck(ResidualBlock):
    """conv1x1 -> act -> conv3x3 (stride) -> act -> conv1x1 (each with BN), plus the
    shortcut, -> LIF; the inner width is ``cout // 4``."""

    expansion = 4

    def __init__(self, cin, cout, stride, downsample, make_act, make_cell):
        super().__init__()
        mid = cout // self.expansion
        self.conv1 = conv_bn(cin, mid, 1)
        self.act1 = make_act(mid)
        self.conv2 = conv_bn(mid, mid, 3, stride, 1)
        self.act2 = make_act(mid)
        self.conv3 = conv_bn(mid, cout, 1)
        self.downsample = downsample
        self.lif_out = make_cell(cout)
        self.last_bn = self.conv3[1]

    def compute(self, x, apply):
        out = apply(self.act1, apply(self.conv1, x))
        out = apply(self.conv3, apply(self.act2, apply(self.conv2, out)))
        return apply(self.lif_out, out + self.shortcut(x, apply))


class ChannelNormalize(nn.Module):
    """``(x - mean) / std`` per channel (dim -3), for one step or a whole sequence."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    multi_step = forward


ARCH_SETTINGS = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
_DOWN_T_MODES = ("max", "avg")


@register_spiking_backbone(["ResNetLifItout", "ResNetLifItout_MP"], ["ResNetLifIt", "ResNetLif"])
class ResNetLifBackbone(SpikingBackbone):
    """ResNet with LIF neurons: stem (conv 7x7 stride 2, or 3x3 stride 1 with
    ``low_resolut``; BN; LIF; 3x3 max-pool stride 2), four stages of residual blocks
    (``base_channels`` x expansion, doubling, strides 1/2/2/2), global average pool and a
    linear readout each step, outputs averaged over time.

    ``down_t=(factor, 'max'|'avg')`` pools every ``factor`` input frames into one before the
    network; ``norm=dict(mean=[...], std=[...])`` normalizes the input channels;
    ``zero_init_residual`` zeroes each block's last BN scale; ``split=[start, end]``
    (BIDL's ``ResNetLifItout_MP``) keeps residual blocks ``start..end-1``.
    """

    inner_activation = "lif"

    def __init__(
        self,
        depth: int = 18,
        nclass: int = 10,
        low_resolut: bool = False,
        timestep: int = 8,
        h: int = 224,
        w: int = 224,
        input_channels: int = 3,
        stem_channels: int = 64,
        base_channels: int = 64,
        down_t: Sequence[Any] = (1, "max"),
        zero_init_residual: bool = False,
        noise: float = 1e-3,
        cmode: str = "spike",
        amode: str = "mean",
        soma_params: str = "all_share",
        norm: dict | None = None,
        neuron: Any = "lif",
        neuron_config: Any = None,
        spike_func: Any = None,
        use_inner_loop: bool = False,
        split: list[int] | None = None,
    ):
        if depth not in ARCH_SETTINGS:
            raise BidlError(
                f"{type(self).__name__}: depth must be one of {sorted(ARCH_SETTINGS)}, got {depth!r}"
            )
        super().__init__((input_channels, h, w), timestep, amode, use_inner_loop)
        self.depth = depth
        self.down_t = self._check_down_t(down_t, timestep)

        def make_cell(channels: int) -> nn.Module:
            return build_neuron(
                neuron,
                neuron_config,
                norm=None,
                input_channels=channels,
                mode=cmode,
                soma_params=soma_params,
                noise=noise,
                spike_func=spike_func,
            )

        def make_act(channels: int) -> nn.Module:
            return make_cell(channels) if self.inner_activation == "lif" else nn.ReLU()

        stem_conv = (
            conv_bn(input_channels, stem_channels, 3, 1, 1)
            if low_resolut
            else conv_bn(input_channels, stem_channels, 7, 2, 3)
        )
        stem = [stem_conv, make_cell(stem_channels), nn.MaxPool2d(3, 2, 1)]
        if norm is not None:
            stem.insert(0, ChannelNormalize(norm["mean"], norm["std"]))
        self.stem = nn.Sequential(*stem)

        block, counts = ARCH_SETTINGS[depth]
        cin, cout = stem_channels, base_channels * block.expansion
        blocks = []
        for stage, count in enumerate(counts):
            stride = 1 if stage == 0 else 2
            for index in range(count):
                first = index == 0
                downsample = None
                if first and (stride != 1 or cin != cout):
                    downsample = nn.Sequential(
                        nn.AvgPool2d(stride, ceil_mode=True), *conv_bn(cin, cout, 1)
                    )
                blocks.append(
                    block(cin, cout, stride if first else 1, downsample, make_act, make_cell)
                )
                cin = cout
            cout *= 2
        self.body = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, nclass))
        if zero_init_residual:
            for module in self.body:
                nn.init.zeros_(module.last_bn.weight)
        self.take_segment(split)

    def _check_down_t(self, down_t: Sequence[Any], timestep: int) -> tuple[int, str]:
        name = type(self).__name__
        if (
            not isinstance(down_t, (list, tuple))
            or len(down_t) != 2
            or not isinstance(down_t[0], int)
            or down_t[0] < 1
            or down_t[1] not in _DOWN_T_MODES
        ):
            raise BidlError(
                f"{name}: down_t must be [factor, mode] with factor >= 1 and mode in "
                f"{_DOWN_T_MODES}, got {down_t!r}"
            )
        if timestep % down_t[0]:
            raise BidlError(
                f"{name}: timestep={timestep} is not a multiple of down_t factor {down_t[0]}"
            )
        return int(down_t[0]), str(down_t[1])

    def prepare_input(self, xs: torch.Tensor) -> torch.Tensor:
        factor, mode = self.down_t
        if factor == 1:
            return xs
        batch, steps = xs.shape[:2]
        if steps % factor:
            raise BidlError(
                f"{type(self).__name__}: {steps} input frames do not divide into groups of "
                f"down_t factor {factor}; give a multiple of {factor} frames"
            )
        grouped = xs.reshape(batch, steps // factor, factor, *xs.shape[2:])
        return grouped.amax(dim=2) if mode == "max" else grouped.mean(dim=2)


@register_spiking_backbone("ResNetLifReluItout", "ResNetLifReluIt")
class ResNetLifReluBackbone(ResNetLifBackbone):
    """The lite ResNet-LIF: ReLU inside each residual block, a LIF cell only at its output
    (and in the stem), so it carries a third to a half of the states."""

    inner_activation = "relu"
