"""ResNet-LIF backbones of BIDL (depth 10/18/34/50/101/152): residual blocks whose neurons
are LIF cells (the lite models: ReLUs in most places), one definition for both execution
modes and for model segments."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...layers import SpikingLayer
from ...layers.options import neuron_options
from ...neurons import StatefulCell, build_neuron, time_foldable
from ...registry import BidlError
from .base import IT_DEFAULTS, SpikingBackbone, register_factory

logger = logging.getLogger("bidl")


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))


class ResidualBlock(SpikingLayer):
    """A residual block written once as ``compute(x, apply)`` (see ``SpikingLayer``)."""

    #: the name of the last convolution (its batch norm is what ``zero_init_residual`` zeroes)
    last_conv = ""

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return getattr(self, self.last_conv)[1]

    def shortcut(self, x, apply):
        return apply(self.downsample, x) if self.downsample is not None else x


class BasicBlock(ResidualBlock):
    """conv3x3-BN -> act1 -> conv3x3-BN, plus the shortcut, -> lif_out."""

    expansion = 1
    last_conv = "conv2"

    def __init__(self, cin, cout, stride, downsample, acts):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, 1)
        self.act1 = acts(cout)
        self.conv2 = conv_bn(cout, cout, 3, 1, 1)
        self.downsample = downsample
        self.lif_out = acts(cout)

    def compute(self, x, apply):
        out = apply(self.conv2, apply(self.act1, apply(self.conv1, x)))
        return apply(self.lif_out, out + self.shortcut(x, apply))


class Bottleneck(ResidualBlock):
    """conv1x1 -> act1 -> conv3x3 (stride) -> act2 -> conv1x1 (each with BN), plus the
    shortcut, -> lif_out; the inner width is ``cout // 4``."""

    expansion = 4
    last_conv = "conv3"

    def __init__(self, cin, cout, stride, downsample, acts):
        super().__init__()
        mid = cout // self.expansion
        self.conv1 = conv_bn(cin, mid, 1)
        self.act1 = acts(mid)
        self.conv2 = conv_bn(mid, mid, 3, stride, 1)
        self.act2 = acts(mid)
        self.conv3 = conv_bn(mid, cout, 1)
        self.downsample = downsample
        self.lif_out = acts(cout)

    def compute(self, x, apply):
        out = apply(self.act1, apply(self.conv1, x))
        out = apply(self.conv3, apply(self.act2, apply(self.conv2, out)))
        return apply(self.lif_out, out + self.shortcut(x, apply))


@time_foldable
class ChannelNormalize(nn.Module):
    """``(x - mean) / std`` per channel (dim -3), for one step or a whole sequence."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


ARCH_SETTINGS = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
_DOWN_T_MODES = ("max", "avg")


class ResNetLifBackbone(SpikingBackbone):
    """ResNet with LIF neurons: stem (conv 7x7 stride 2, or 3x3 stride 1 with
    ``low_resolut``; BN; LIF; 3x3 max-pool stride 2), four stages of residual blocks
    (``base_channels`` x expansion, doubling, strides 1/2/2/2), global average pool and a
    linear readout; per step and averaged over time (BIDL's ``ResNetLifItout`` on the
    chip) or once on the time-averaged features (its CPU/GPU path and ``ResNetLif``): the
    readout is linear, so both give the same numbers.

    ``down_t=(factor, 'max'|'avg')`` pools every ``factor`` input frames into one before the
    network (BIDL allows factor 1 only); ``input_norm=dict(mean=[...], std=[...])``
    normalizes the input channels. BIDL's ``norm`` does the same on Lynxi chips only (its
    CPU/GPU path never normalizes), so it is accepted and not applied, with a note.
    ``zero_init_residual`` zeroes each block's last BN scale; ``split=[start, end]``
    (BIDL's ``ResNetLifItout_MP``) keeps residual blocks ``start..end-1``. ``it_batch``
    (BIDL's IIM batch size) is accepted and not needed.
    """

    #: 'all': LIF cells everywhere; 'lite': BIDL's lite models (ResNetLifRelu)
    activations = "all"

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
        input_norm: dict | None = None,
        neuron: Any = "lif",
        neuron_config: Any = None,
        spike_func: Any = None,
        use_inner_loop: bool = False,
        readout: str = "per_step",
        it_batch: int | None = None,
        split: list[int] | None = None,
    ):
        if depth not in ARCH_SETTINGS:
            raise BidlError(
                f"{type(self).__name__}: depth must be one of {sorted(ARCH_SETTINGS)}, got {depth!r}"
            )
        super().__init__((input_channels, h, w), timestep, amode, use_inner_loop, readout)
        self.depth = depth
        self.down_t = self._check_down_t(down_t, timestep)
        if norm is not None:
            logger.info(
                "%s: norm=%s normalizes the input on Lynxi chips only in BIDL (its CPU/GPU "
                "path does not); bidl does not apply it. Use input_norm to normalize.",
                type(self).__name__,
                dict(norm),
            )

        def make_cell(channels: int) -> nn.Module:
            # BIDL's Lif2d: no batch norm, the LIF layers' default analog memb_mode
            options = dict(mode=cmode, soma_params=soma_params, noise=noise, spike_func=spike_func)
            options = neuron_options(neuron, options, channels)
            return build_neuron(neuron, neuron_config, norm=None, **options)

        stem_conv = (
            conv_bn(input_channels, stem_channels, 3, 1, 1)
            if low_resolut
            else conv_bn(input_channels, stem_channels, 7, 2, 3)
        )
        stem = [stem_conv, make_cell(stem_channels), nn.MaxPool2d(3, 2, 1)]
        if input_norm is not None:
            stem.insert(0, ChannelNormalize(input_norm["mean"], input_norm["std"]))
        self.stem = nn.Sequential(*stem)

        block, counts = ARCH_SETTINGS[depth]
        cin, cout = stem_channels, base_channels * block.expansion
        blocks, self.stage_of_block = [], []
        for stage, count in enumerate(counts):
            stride = 1 if stage == 0 else 2
            for index in range(count):
                first = index == 0
                downsample = None
                if first and (stride != 1 or cin != cout):
                    downsample = nn.Sequential(
                        nn.AvgPool2d(stride, ceil_mode=True), *conv_bn(cin, cout, 1)
                    )
                acts = self._block_activations(block, first, make_cell)
                blocks.append(block(cin, cout, stride if first else 1, downsample, acts))
                self.stage_of_block.append((stage, index))
                cin = cout
            cout *= 2
        self.body = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, nclass))
        if zero_init_residual:
            for module in self.body:
                nn.init.zeros_(module.last_bn.weight)
        self.finish(split)

    def _block_activations(self, block, first: bool, make_cell):
        """A factory of the block's activations, called in order (act1, [act2,] lif_out)."""
        if self.activations == "all":
            return make_cell
        made: list[int] = []

        def lite(channels: int) -> nn.Module:
            # BIDL's lite models: a LIF only as the first activation of a stage's first block
            made.append(channels)
            return make_cell(channels) if first and len(made) == 1 else nn.ReLU()

        return lite

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

    def bidl_module_names(self) -> dict[str, list[str] | str]:
        """BIDL's names: ``conv``/``lif``/``layerN.i.{conv1, lif1, ...}``/``fc``; a LIF of
        BIDL's is a ``Lif2d`` around the cell (``lif1.lif``; older checkpoints ``lif1``)."""

        def cell(name: str) -> list[str]:
            return [f"{name}.lif", name]

        names: dict[str, list[str] | str] = {}
        if self.stem is not None:
            offset = int(isinstance(self.stem[0], ChannelNormalize))
            names[f"stem.{offset}"] = "conv"
            names[f"stem.{offset + 1}"] = cell("lif")
        for key, block in self.body.named_children():
            stage, index = self.stage_of_block[int(key)]
            ref = f"layer{stage + 1}.{index}"
            bottleneck = isinstance(block, Bottleneck)
            parts = ["conv1", "conv2", "conv3"] if bottleneck else ["conv1", "conv2"]
            names.update({f"body.{key}.{part}": f"{ref}.{part}" for part in parts})
            if block.downsample is not None:
                names[f"body.{key}.downsample"] = f"{ref}.downsample"
            acts = ["act1", "act2", "lif_out"] if bottleneck else ["act1", "lif_out"]
            for i, act in enumerate(acts):
                if isinstance(getattr(block, act), StatefulCell):
                    names[f"body.{key}.{act}"] = cell(f"{ref}.lif{i + 1}")
        if isinstance(self.head, nn.Sequential):
            names["head.2"] = "fc"
        return names


class ResNetLifReluBackbone(ResNetLifBackbone):
    """BIDL's lite ResNet-LIF: a LIF cell in the stem and as the first activation of each
    stage's first block; ReLUs everywhere else."""

    activations = "lite"


for _cls, _eim, _iim in [
    (ResNetLifBackbone, ["ResNetLifItout", "ResNetLifItout_MP"], ["ResNetLifIt", "ResNetLif"]),
    (ResNetLifReluBackbone, ["ResNetLifReluItout"], ["ResNetLifReluIt"]),
]:
    register_factory(_cls, [_cls.__name__, *_eim])
    register_factory(_cls, _iim, **IT_DEFAULTS)
