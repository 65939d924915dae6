"""The Spike-driven Transformer (Yao et al., NeurIPS 2023; SDT v1): spike-driven
self-attention (SDSA: ``Q * LIF(column sum of K * V)``, masks and additions only) and the
membrane shortcut (every residual adds membrane potentials, each block starts with a
LIF); one per-timestep body, run EIM or IIM.

Registered under the sizes of the paper, ``sdt_<blocks>_<width>``: ImageNet (224 x 224,
1000 classes, T=4) 8-384, 6-512, 8-512, 10-512, 8-768; CIFAR (32 x 32, T=4) 2-512; the
neuromorphic data sets (2 x 128 x 128, T=16) 2-256; and ``sdt_tiny``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...layers import SpikingLayer
from .base import register_factory
from .spiking_transformer import (
    ColumnSum,
    PatchSplitting,
    TransformerBackbone,
    check_heads,
    init_weights,
    readout,
)


class MsSps(PatchSplitting):
    """SDT's patch splitting: three conv-BN-LIF (then pool) stages, a fourth conv-BN (then
    pool) whose membrane ``u`` is the shortcut: ``u + BN(conv(LIF(u)))``."""

    def __init__(self, in_channels, embed_dim, pooling_stat, lif):
        super().__init__(in_channels, embed_dim, pooling_stat, lif, rpe_lif=False)

    def compute(self, x, apply):
        for i, pool in enumerate(self.pools):
            conv, bn, lif = self.stage(i)
            x = apply(bn, apply(conv, x))
            if i < 3:
                x = apply(lif, x)
            if pool:
                x = apply(self.maxpool, x)
        spikes = apply(self.stage(3)[2], x)
        return x + apply(self.rpe_bn, apply(self.rpe_conv, spikes))


class SpikeDrivenSelfAttention(SpikingLayer):
    """SDSA on the membrane ``u``: ``s = LIF(u)``; ``Q, K, V = LIF(BN(linear(s)))``;
    ``Q * LIF_0.5(sum over tokens of K * V)`` (a channel mask: no products of real numbers);
    then ``BN(linear(.))``. The column sum runs per channel, so the head split of the
    paper's code changes nothing and costs nothing here."""

    #: what NIR export names when it refuses the network
    activation_product = "Q * LIF(sum over tokens of K * V)"

    def __init__(self, dim: int, heads: int, lif) -> None:
        super().__init__()
        check_heads(type(self).__name__, dim, heads)
        self.heads = heads
        self.shortcut_lif = lif()
        for name in ("q", "k", "v"):
            self.add_module(f"{name}_conv", nn.Conv2d(dim, dim, 1, bias=False))
            self.add_module(f"{name}_bn", nn.BatchNorm2d(dim))
            self.add_module(f"{name}_lif", lif())
        self.column_sum = ColumnSum()
        self.talking_heads_lif = lif(0.5)
        self.proj_conv = nn.Conv2d(dim, dim, 1)
        self.proj_bn = nn.BatchNorm2d(dim)

    def compute(self, x, apply):
        s = apply(self.shortcut_lif, x)
        q, k, v = (
            apply(
                getattr(self, f"{n}_lif"),
                apply(getattr(self, f"{n}_bn"), apply(getattr(self, f"{n}_conv"), s)),
            )
            for n in ("q", "k", "v")
        )
        kv = apply(self.talking_heads_lif, self.column_sum(k, v))
        return apply(self.proj_bn, apply(self.proj_conv, q * kv))


class MsMlp(SpikingLayer):
    """The membrane-shortcut MLP: ``BN(linear(LIF(BN(linear(LIF(u))))))``."""

    def __init__(self, dim: int, hidden: int, lif) -> None:
        super().__init__()
        self.fc1_lif = lif()
        self.fc1_conv = nn.Conv2d(dim, hidden, 1)
        self.fc1_bn = nn.BatchNorm2d(hidden)
        self.fc2_lif = lif()
        self.fc2_conv = nn.Conv2d(hidden, dim, 1)
        self.fc2_bn = nn.BatchNorm2d(dim)

    def compute(self, x, apply):
        x = apply(self.fc1_bn, apply(self.fc1_conv, apply(self.fc1_lif, x)))
        return apply(self.fc2_bn, apply(self.fc2_conv, apply(self.fc2_lif, x)))


class SdtBlock(SpikingLayer):
    """``u + SDSA(u)``, then ``u + MLP(u)``: residuals of membrane potentials."""

    def __init__(self, dim, heads, mlp_ratio, lif) -> None:
        super().__init__()
        self.attn = SpikeDrivenSelfAttention(dim, heads, lif)
        self.mlp = MsMlp(dim, int(dim * mlp_ratio), lif)

    def compute(self, x, apply):
        x = x + apply(self.attn, x)
        return x + apply(self.mlp, x)


class SpikeDrivenTransformer(TransformerBackbone):
    """SDT v1: the membrane-shortcut stem, ``depth`` SDSA blocks of width ``embed_dim``;
    at each step the token mean passes a LIF and a linear classifier, averaged over time.

    ``pooling_stat`` as in the paper's code ('1111' ImageNet, '0011' CIFAR and 64x64
    CIFAR10-DVS, '0111' 128x128 DVS128 Gesture); ``tau``, ``v_threshold`` and ``spike_func`` as in
    ``Spikformer``. The code's unused talking-heads convolution is left out; its optional
    DVS erosion (``dvs_mode``) is not offered.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        depth: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        timestep: int = 16,
        input_channels: int = 2,
        h: int = 128,
        w: int = 128,
        nclass: int = 11,
        pooling_stat: str = "0111",
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
        self.check_dims([embed_dim], num_heads, multiple=8)
        self.stem = MsSps(input_channels, embed_dim, pooling_stat, self.lif)
        self.body = nn.Sequential(
            *(SdtBlock(embed_dim, num_heads, mlp_ratio, self.lif) for _ in range(depth))
        )
        self.head = readout(embed_dim, nclass, self.lif())
        init_weights(self, conv=True)
        self.finish(split)


IMAGENET = dict(
    timestep=4, input_channels=3, h=224, w=224, nclass=1000, pooling_stat="1111", num_heads=8
)
CIFAR = dict(timestep=4, input_channels=3, h=32, w=32, nclass=10, pooling_stat="0011")

#: name -> the paper's size and input (every name runs the time loop inside: IIM)
SIZES = {
    "sdt_8_384": dict(IMAGENET, depth=8, embed_dim=384),
    "sdt_6_512": dict(IMAGENET, depth=6, embed_dim=512),
    "sdt_8_512": dict(IMAGENET, depth=8, embed_dim=512),
    "sdt_10_512": dict(IMAGENET, depth=10, embed_dim=512),
    "sdt_8_768": dict(IMAGENET, depth=8, embed_dim=768),
    "sdt_2_512": dict(CIFAR, depth=2, embed_dim=512),
    "sdt_2_256": dict(depth=2, embed_dim=256),
    # as spikformer_tiny: 9x9 tokens on DigitsDVS, half the papers' threshold
    "sdt_tiny": dict(depth=1, embed_dim=64, num_heads=4, timestep=8, h=34, w=34, nclass=10)
    | dict(pooling_stat="1100", v_threshold=0.5),
}

register_factory(SpikeDrivenTransformer, ["SpikeDrivenTransformer", "SDT"])
for _name, _size in SIZES.items():
    register_factory(SpikeDrivenTransformer, _name, use_inner_loop=True, **_size)
