"""Spikformer (Zhou et al., ICLR 2023): spiking patch splitting, spiking self-attention
(``Q K^T V * 0.125`` on spikes, no softmax) and a spiking MLP, every block output a spike
count; one per-timestep body, run EIM or IIM.

Registered under the sizes of the paper, ``spikformer_<blocks>_<width>``: ImageNet
(224 x 224, 1000 classes, T=4) 8-384, 6-512, 8-512, 10-512, 8-768; CIFAR (32 x 32, T=4)
4-384; the neuromorphic data sets (2 x 128 x 128, T=16) 2-256; and ``spikformer_tiny``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...layers import SpikingLayer
from .base import register_factory
from .spiking_transformer import (
    AttentionProduct,
    PatchSplitting,
    TransformerBackbone,
    check_heads,
    init_weights,
    readout,
)


class SpikformerSps(PatchSplitting):
    """Spikformer's SPS: conv-BN-LIF (then pool) four times; the relative position
    embedding adds ``LIF(BN(conv(x)))`` to the stem's spikes ``x``."""

    def __init__(self, in_channels, embed_dim, pooling_stat, lif):
        super().__init__(in_channels, embed_dim, pooling_stat, lif, rpe_lif=True)

    def compute(self, x, apply):
        for i, pool in enumerate(self.pools):
            conv, bn, lif = self.stage(i)
            x = apply(lif, apply(bn, apply(conv, x)))
            if pool:
                x = apply(self.maxpool, x)
        rpe = apply(self.rpe_lif, apply(self.rpe_bn, apply(self.rpe_conv, x)))
        return x + rpe


class SpikingSelfAttention(SpikingLayer):
    """SSA: ``Q, K, V = LIF(BN(linear(x)))``; ``LIF_0.5(Q K^T V * scale)``; then the
    projection ``LIF(BN(linear(.)))``. The linear layers are 1x1 convolutions."""

    #: what NIR export names when it refuses the network
    activation_product = "Q K^T V"

    def __init__(self, dim: int, heads: int, scale: float, qkv_bias: bool, lif) -> None:
        super().__init__()
        check_heads(type(self).__name__, dim, heads)
        self.product = AttentionProduct(heads, scale)
        for name in ("q", "k", "v"):
            self.add_module(f"{name}_conv", nn.Conv2d(dim, dim, 1, bias=qkv_bias))
            self.add_module(f"{name}_bn", nn.BatchNorm2d(dim))
            self.add_module(f"{name}_lif", lif())
        self.attn_lif = lif(0.5)
        self.proj_conv = nn.Conv2d(dim, dim, 1)
        self.proj_bn = nn.BatchNorm2d(dim)
        self.proj_lif = lif()

    def compute(self, x, apply):
        q, k, v = (
            apply(
                getattr(self, f"{n}_lif"),
                apply(getattr(self, f"{n}_bn"), apply(getattr(self, f"{n}_conv"), x)),
            )
            for n in ("q", "k", "v")
        )
        y = apply(self.attn_lif, self.product(q, k, v))
        return apply(self.proj_lif, apply(self.proj_bn, apply(self.proj_conv, y)))


class SpikingMlp(SpikingLayer):
    """Two per-token linear layers, each followed by BN and a LIF."""

    def __init__(self, dim: int, hidden: int, lif) -> None:
        super().__init__()
        self.fc1_conv = nn.Conv2d(dim, hidden, 1)
        self.fc1_bn = nn.BatchNorm2d(hidden)
        self.fc1_lif = lif()
        self.fc2_conv = nn.Conv2d(hidden, dim, 1)
        self.fc2_bn = nn.BatchNorm2d(dim)
        self.fc2_lif = lif()

    def compute(self, x, apply):
        x = apply(self.fc1_lif, apply(self.fc1_bn, apply(self.fc1_conv, x)))
        return apply(self.fc2_lif, apply(self.fc2_bn, apply(self.fc2_conv, x)))


class SpikformerBlock(SpikingLayer):
    """``x + SSA(x)``, then ``x + MLP(x)``."""

    def __init__(self, dim, heads, mlp_ratio, scale, qkv_bias, lif) -> None:
        super().__init__()
        self.attn = SpikingSelfAttention(dim, heads, scale, qkv_bias, lif)
        self.mlp = SpikingMlp(dim, int(dim * mlp_ratio), lif)

    def compute(self, x, apply):
        x = x + apply(self.attn, x)
        return x + apply(self.mlp, x)


class Spikformer(TransformerBackbone):
    """Spikformer: SPS stem, ``depth`` blocks of width ``embed_dim``, the mean over tokens
    and a linear classifier at each step, averaged over time.

    ``pooling_stat`` says which of the stem's four stages halve the resolution ('1111':
    16x fewer rows and columns, the paper's ImageNet and neuromorphic models; '0011' for
    32x32 CIFAR). ``attn_scale`` is 0.125 in the paper (its CIFAR10-DVS code uses 0.25);
    ``qkv_bias`` gives Q, K, V biases (the CIFAR model has them). ``tau`` is the LIF's time
    constant and ``v_threshold`` its threshold (``papers_lif``: 2.0 and 1.0 in the papers;
    the attention's LIF fires at half of it); ``spike_func`` replaces its surrogate.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        depth: int = 2,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        timestep: int = 16,
        input_channels: int = 2,
        h: int = 128,
        w: int = 128,
        nclass: int = 10,
        pooling_stat: str = "1111",
        attn_scale: float = 0.125,
        qkv_bias: bool = False,
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
        self.stem = SpikformerSps(input_channels, embed_dim, pooling_stat, self.lif)
        self.body = nn.Sequential(
            *(
                SpikformerBlock(embed_dim, num_heads, mlp_ratio, attn_scale, qkv_bias, self.lif)
                for _ in range(depth)
            )
        )
        self.head = readout(embed_dim, nclass, None)
        init_weights(self)
        self.finish(split)


IMAGENET = dict(timestep=4, input_channels=3, h=224, w=224, nclass=1000, num_heads=8)
CIFAR = dict(timestep=4, input_channels=3, h=32, w=32, nclass=10, pooling_stat="0011")

#: name -> the paper's size and input (every name runs the time loop inside: IIM)
SIZES = {
    "spikformer_8_384": dict(IMAGENET, depth=8, embed_dim=384),
    "spikformer_6_512": dict(IMAGENET, depth=6, embed_dim=512),
    "spikformer_8_512": dict(IMAGENET, depth=8, embed_dim=512),
    "spikformer_10_512": dict(IMAGENET, depth=10, embed_dim=512),
    "spikformer_8_768": dict(IMAGENET, depth=8, embed_dim=768),
    "spikformer_4_384": dict(CIFAR, depth=4, embed_dim=384, num_heads=12, qkv_bias=True),
    "spikformer_2_256": dict(depth=2, embed_dim=256, num_heads=16),
    # a CPU-sized model for the 34x34 DigitsDVS: two pooled stem stages, 9x9 tokens, the
    # LIFs at half the papers' threshold (they learn faster there on small data)
    "spikformer_tiny": dict(
        depth=1, embed_dim=64, num_heads=4, timestep=8, h=34, w=34, pooling_stat="1100"
    )
    | dict(v_threshold=0.5),
}

register_factory(Spikformer, "Spikformer")
for _name, _size in SIZES.items():
    register_factory(Spikformer, _name, use_inner_loop=True, **_size)
