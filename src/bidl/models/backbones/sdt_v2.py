"""Meta-SpikeFormer, the Spike-driven Transformer v2 (Yao et al., ICLR 2024), as BIDL's
application ``classification/image/spikeformerv2`` builds it: two conv stages of
separable-conv blocks (downsampling by 4, then 2, then 2), then two transformer stages
whose attention is ``Q (K^T V) * 0.125`` on spikes with re-parameterisable convolutions
(RepConv) for Q, K, V and the projection; membrane shortcuts throughout. One per-timestep
body, run EIM or IIM.

Registered as BIDL names them, ``metaspikformer_8_<width>`` (224 x 224, 1000 classes,
T=4; widths 384, 512, 768 are the third stage's), and ``metaspikformer_tiny``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...layers import SpikingLayer
from ...registry import BidlError
from .base import register_factory
from .sdt_v1 import MsMlp
from .spiking_transformer import (
    AttentionProduct,
    TransformerBackbone,
    check_heads,
    init_weights,
    readout,
)


class BnPad(nn.BatchNorm2d):
    """Batch norm, then a border of ``pad`` pixels holding what the norm makes of a zero
    input: the same as zero-padding before the norm, so the 1x1 conv, this and the
    following unpadded 3x3 conv fold into one padded 3x3 conv at deployment. It is a batch
    norm, so over a sequence it runs step by step in training (its border reads the
    running statistics its own step just updated) and folded in eval."""

    def __init__(self, channels: int, pad: int = 1) -> None:
        super().__init__(channels)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        # the border value of each channel; constants to the gradient, as in the papers' code
        scale = self.weight.detach() / torch.sqrt(self.running_var + self.eps)
        border = (self.bias.detach() - self.running_mean * scale).view(-1, 1, 1)
        pad = (self.pad,) * 4
        return nn.functional.pad(y - border, pad) + border


class RepConv(SpikingLayer):
    """1x1 conv, ``BnPad``, depthwise 3x3 conv, 1x1 conv, BN (no biases): a 3x3 conv in
    training form (BIDL's ``RepConv``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(cin, cin, 1, bias=False)
        self.bn_pad = BnPad(cin)
        self.dwconv = nn.Conv2d(cin, cin, 3, groups=cin, bias=False)
        self.pwconv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def compute(self, x, apply):
        x = apply(self.bn_pad, apply(self.conv1x1, x))
        return apply(self.bn, apply(self.pwconv, apply(self.dwconv, x)))


def rep_conv_bn(dim: int) -> nn.Sequential:
    """BIDL's ``q_conv``/``k_conv``/``v_conv``/``proj_conv``: a RepConv and one more BN."""
    return nn.Sequential(RepConv(dim, dim), nn.BatchNorm2d(dim))


class Downsampling(SpikingLayer):
    """``BN(conv(LIF(u)))`` (no LIF on the data: the first one takes the input)."""

    def __init__(self, cin, cout, kernel, stride, padding, lif, first: bool) -> None:
        super().__init__()
        self.encode_lif = None if first else lif()
        self.encode_conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        self.encode_bn = nn.BatchNorm2d(cout)

    def compute(self, x, apply):
        if self.encode_lif is not None:
            x = apply(self.encode_lif, x)
        return apply(self.encode_bn, apply(self.encode_conv, x))


class SepConv(SpikingLayer):
    """The inverted separable conv of MobileNetV2 on spikes: LIF, 1x1 conv to twice the
    width, BN, LIF, depthwise 7x7 conv, 1x1 conv back, BN."""

    def __init__(self, dim: int, lif, expansion: int = 2, kernel: int = 7) -> None:
        super().__init__()
        mid = dim * expansion
        self.lif1 = lif()
        self.pwconv1 = nn.Conv2d(dim, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.lif2 = lif()
        self.dwconv = nn.Conv2d(mid, mid, kernel, padding=kernel // 2, groups=mid, bias=False)
        self.pwconv2 = nn.Conv2d(mid, dim, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def compute(self, x, apply):
        x = apply(self.bn1, apply(self.pwconv1, apply(self.lif1, x)))
        x = apply(self.dwconv, apply(self.lif2, x))
        return apply(self.bn2, apply(self.pwconv2, x))


class ConvBlock(SpikingLayer):
    """``u + SepConv(u)``, then ``u + BN(conv3x3(LIF(BN(conv3x3(LIF(u))))))`` (the 3x3 convs
    widen by ``mlp_ratio`` and back; no biases)."""

    def __init__(self, dim: int, mlp_ratio: int, lif) -> None:
        super().__init__()
        hidden = dim * mlp_ratio
        self.conv = SepConv(dim, lif)
        self.lif1 = lif()
        self.conv1 = nn.Conv2d(dim, hidden, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.lif2 = lif()
        self.conv2 = nn.Conv2d(hidden, dim, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def compute(self, x, apply):
        x = x + apply(self.conv, x)
        y = apply(self.bn1, apply(self.conv1, apply(self.lif1, x)))
        y = apply(self.bn2, apply(self.conv2, apply(self.lif2, y)))
        return x + y


class MsAttention(SpikingLayer):
    """``s = LIF(u)``; ``Q, K, V = LIF(BN(RepConv(s)))``; ``LIF_0.5(Q (K^T V) * 0.125)``;
    then ``BN(RepConv(.))`` (BIDL's ``MS_Attention_RepConv_qkv_id``)."""

    #: what NIR export names when it refuses the network
    activation_product = "Q (K^T V)"

    def __init__(self, dim: int, heads: int, lif, scale: float = 0.125) -> None:
        super().__init__()
        check_heads(type(self).__name__, dim, heads)
        self.product = AttentionProduct(heads, scale)
        self.head_lif = lif()
        for name in ("q", "k", "v"):
            self.add_module(f"{name}_conv", rep_conv_bn(dim))
            self.add_module(f"{name}_lif", lif())
        self.attn_lif = lif(0.5)
        self.proj_conv = rep_conv_bn(dim)

    def compute(self, x, apply):
        s = apply(self.head_lif, x)
        q, k, v = (
            apply(getattr(self, f"{n}_lif"), apply(getattr(self, f"{n}_conv"), s))
            for n in ("q", "k", "v")
        )
        y = apply(self.attn_lif, self.product(q, k, v))
        return apply(self.proj_conv, y)


class MsBlock(SpikingLayer):
    """``u + attention(u)``, then ``u + MLP(u)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, lif) -> None:
        super().__init__()
        self.attn = MsAttention(dim, heads, lif)
        self.mlp = MsMlp(dim, dim * mlp_ratio, lif)

    def compute(self, x, apply):
        x = x + apply(self.attn, x)
        return x + apply(self.mlp, x)


class MetaSpikformer(TransformerBackbone):
    """Meta-SpikeFormer with widths ``embed_dims = (C1, C2, C3, C4)``:

    - conv 7x7 stride 2 to ``C1/2`` + BN, one ConvBlock; LIF, conv 3x3 stride 2 to ``C1``
      + BN, one ConvBlock (stride 4 in all);
    - LIF, conv stride 2 to ``C2`` + BN, ``conv_blocks`` ConvBlocks (BIDL: 2);
    - LIF, conv stride 2 to ``C3`` + BN, ``depths[0]`` transformer blocks (BIDL: 6);
    - LIF, conv stride 1 to ``C4`` + BN, ``depths[1]`` transformer blocks (BIDL: 2);
    - at each step the token mean passes a LIF and a linear classifier, averaged over time.

    BIDL's optional distillation head (``kd``) is not built: ``bidl`` distils through the
    training config (``distill``) into the one head. ``tau``, ``v_threshold`` and ``spike_func`` as in
    ``Spikformer``.
    """

    def __init__(
        self,
        embed_dims: Sequence[int] = (96, 192, 384, 480),
        depths: Sequence[int] = (6, 2),
        conv_blocks: int = 2,
        num_heads: int = 8,
        mlp_ratio: int = 4,
        timestep: int = 4,
        input_channels: int = 3,
        h: int = 224,
        w: int = 224,
        nclass: int = 1000,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        spike_func: Any = None,
        amode: str = "mean",
        use_inner_loop: bool = False,
        split: list[int] | None = None,
    ) -> None:
        super().__init__(
            timestep, input_channels, h, w, amode, use_inner_loop, tau, spike_func, v_threshold
        )
        c1, c2, c3, c4 = _four(type(self).__name__, embed_dims)
        self.check_dims([c1, c2, c3, c4], num_heads, multiple=2)
        check_heads(type(self).__name__, c3, num_heads)
        lif = self.lif
        layers: list[nn.Module] = [
            Downsampling(input_channels, c1 // 2, 7, 2, 3, lif, first=True),
            ConvBlock(c1 // 2, mlp_ratio, lif),
            Downsampling(c1 // 2, c1, 3, 2, 1, lif, first=False),
            ConvBlock(c1, mlp_ratio, lif),
            Downsampling(c1, c2, 3, 2, 1, lif, first=False),
            *(ConvBlock(c2, mlp_ratio, lif) for _ in range(conv_blocks)),
            Downsampling(c2, c3, 3, 2, 1, lif, first=False),
            *(MsBlock(c3, num_heads, mlp_ratio, lif) for _ in range(depths[0])),
            Downsampling(c3, c4, 3, 1, 1, lif, first=False),
            *(MsBlock(c4, num_heads, mlp_ratio, lif) for _ in range(depths[1])),
        ]
        self.body = nn.Sequential(*layers)
        self.head = readout(c4, nclass, lif())
        init_weights(self)
        self.finish(split)


def _four(owner: str, dims: Sequence[int]) -> tuple[int, int, int, int]:
    if not isinstance(dims, (list, tuple)) or len(dims) != 4:
        raise BidlError(f"{owner}: embed_dims must be 4 widths (C1, C2, C3, C4), got {dims!r}")
    return tuple(int(d) for d in dims)  # type: ignore[return-value]


IMAGENET = dict(timestep=4, input_channels=3, h=224, w=224, nclass=1000)

#: BIDL's names and widths (every name runs the time loop inside: IIM)
SIZES = {
    "metaspikformer_8_384": dict(IMAGENET, embed_dims=(96, 192, 384, 480)),
    "metaspikformer_8_512": dict(IMAGENET, embed_dims=(128, 256, 512, 640)),
    "metaspikformer_8_768": dict(IMAGENET, embed_dims=(192, 384, 768, 960)),
    "metaspikformer_tiny": dict(
        embed_dims=(16, 32, 64, 64),
        depths=(1, 1),
        conv_blocks=1,
        num_heads=4,
        mlp_ratio=2,
        timestep=8,
        input_channels=2,
        h=34,
        w=34,
        nclass=10,
        v_threshold=0.5,
    ),
}

register_factory(MetaSpikformer, ["MetaSpikformer", "SpikeDrivenTransformerV2"])
for _name, _size in SIZES.items():
    register_factory(MetaSpikformer, _name, use_inner_loop=True, **_size)
