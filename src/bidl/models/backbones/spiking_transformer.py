r"""What the spiking transformers (Spikformer, Spike-driven Transformer v1 and v2) share.

- ``papers_lif``: the LIF of their code (SpikingJelly's ``MultiStepLIFNode(tau=2,
  v_reset=0)``) as a bidl ``Lif`` cell;
- token and head layouts, spiking self-attention's product, the patch-splitting stem's
  layers and the readout (token mean, optionally a LIF, a linear classifier);
- ``TransformerBackbone``: the ``SpikingBackbone`` they all are, with their input checks.

Their layers are ``SpikingLayer``\ s written once as ``compute(x, apply)``; every tensor op
works on the trailing dims only (``[..., C, H, W]``), so one body serves a step
``[B, C, H, W]`` and a sequence ``[T, B, C, H, W]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ...layers import SpikingLayer
from ...neurons import Lif, Sigmoid
from ...registry import BidlError
from .base import SpikingBackbone


def papers_lif(tau: float = 2.0, v_threshold: float = 1.0, spike_func: Any = None) -> Lif:
    """SpikingJelly's LIF (``H = V + (X - V) / tau``, fire at ``v_threshold``, hard reset
    to 0) as bidl's ``Lif`` (``v' = x + v``, fire above ``theta``, ``v = alpha v''``).

    With the membrane measured in units of ``tau`` times SpikingJelly's, the two are the
    same neuron: ``alpha = 1 - 1/tau``, ``theta = tau * v_threshold``, and the surrogate
    ``Sigmoid(4 / tau)`` gives SpikingJelly's default ``Sigmoid(alpha=4)`` gradient with
    respect to the input. (bidl fires where ``v > theta``, SpikingJelly where ``>=``; and
    its ``detach_reset`` has no counterpart: the reset passes gradient here.)
    """
    if not tau > 1:
        raise BidlError(f"tau must be > 1 (the leak of SpikingJelly's LIF), got {tau!r}")
    return Lif(
        alpha=1.0 - 1.0 / tau,
        beta=0.0,
        theta=tau * v_threshold,
        v_0=0.0,
        spike_func=spike_func if spike_func is not None else Sigmoid(4.0 / tau),
    )


def conv_bn(
    cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0, bias: bool = False
) -> nn.Sequential:
    """``Conv2d`` and ``BatchNorm2d``; a 1x1 one is the papers' per-token linear layer."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias), nn.BatchNorm2d(cout)
    )


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[..., C, H, W]`` -> ``[..., heads, N, C // heads]`` (channels split head-major)."""
    *lead, channels, height, width = x.shape
    return x.reshape(*lead, heads, channels // heads, height * width).transpose(-1, -2)


def merge_heads(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of ``split_heads``: ``[..., heads, N, d]`` -> ``[..., heads * d, H, W]``."""
    *lead, heads, _, dim = x.shape
    return x.transpose(-1, -2).reshape(*lead, heads * dim, height, width)


def spiking_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float
) -> torch.Tensor:
    """``Q K^T V * scale`` per head, without softmax (Spikformer's SSA); ``[..., C, H, W]``.

    Without softmax the product is associative: it runs as ``Q (K^T V)`` when the head
    width is below the token count (linear in tokens) and as ``(Q K^T) V`` otherwise. On
    spikes every partial sum is an integer, so both orders give the same numbers."""
    height, width = q.shape[-2:]
    q, k, v = (split_heads(t, heads) for t in (q, k, v))
    tokens, dim = q.shape[-2:]
    out = q @ (k.transpose(-1, -2) @ v) if dim < tokens else (q @ k.transpose(-1, -2)) @ v
    return merge_heads(out * scale, height, width)


def _rows(x: torch.Tensor) -> int:
    """How many (step, sample) rows ``[..., C, H, W]`` holds."""
    return x.numel() // max(1, x.shape[-3] * x.shape[-2] * x.shape[-1])


def _spikes_per_row(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(_rows(x), -1).double().sum(1) if x.numel() else x.new_zeros(0)


class AttentionProduct(nn.Module):
    """``spiking_attention`` as a module, so that analysis hooks see it and count what
    spike-driven hardware adds: each spike of a left operand accumulates one row of the
    right one (``nnz(left) x width(right)``; an integer entry of ``Q K^T`` counts as that
    many spikes). The papers' formula is the same count: firing rate x T x FLOPs."""

    def __init__(self, heads: int, scale: float) -> None:
        super().__init__()
        self.heads, self.scale = heads, scale

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return spiking_attention(q, k, v, self.heads, self.scale)

    def _linear_order(self, shape: tuple[int, ...]) -> bool:
        channels, height, width = shape[-3:]
        return channels // self.heads < height * width  # Q (K^T V)

    def synaptic_operations(self, q, k, v) -> torch.Tensor:
        """Accumulates per (step, sample) row, in the order the product runs."""
        channels, height, width = q.shape[-3:]
        dim, tokens = channels // self.heads, height * width
        if self._linear_order(q.shape):  # K^T V, then Q (K^T V): d-wide rows each
            return (_spikes_per_row(k) + _spikes_per_row(q)) * dim
        counts = split_heads(q, self.heads) @ split_heads(k, self.heads).transpose(-1, -2)
        return _spikes_per_row(q) * tokens + counts.reshape(_rows(q), -1).double().sum(1) * dim

    def dense_macs(self, shape: tuple[int, ...]) -> int:
        """MACs of the same product on dense inputs of one (step, sample)."""
        channels, height, width = shape[-3:]
        dim, tokens = channels // self.heads, height * width
        inner = dim if self._linear_order(shape) else tokens
        return 2 * self.heads * tokens * dim * inner


class ColumnSum(nn.Module):
    """SDSA's ``sum over tokens of K * V``: with spikes, ``K * V`` is a mask and the sum
    adds one per surviving spike (``nnz(K * V)`` accumulates, the papers' count)."""

    def forward(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (k * v).sum(dim=(-2, -1), keepdim=True)

    def synaptic_operations(self, k, v) -> torch.Tensor:
        return _spikes_per_row(k * v)

    def dense_macs(self, shape: tuple[int, ...]) -> int:
        channels, height, width = shape[-3:]
        return channels * height * width


def check_heads(owner: str, dim: int, heads: int) -> None:
    if heads < 1 or dim % heads:
        raise BidlError(f"{owner}: the width {dim} must divide into num_heads={heads} heads")


def parse_pooling(owner: str, pooling_stat: str) -> tuple[bool, bool, bool, bool]:
    """The patch-splitting stem's pooling switches: 4 characters of '0'/'1' (SDT's
    ``pooling_stat``), one per conv stage; a '1' halves the resolution there."""
    if (
        not isinstance(pooling_stat, str)
        or len(pooling_stat) != 4
        or set(pooling_stat) - {"0", "1"}
    ):
        raise BidlError(
            f"{owner}: pooling_stat must be 4 characters of '0'/'1' (one per stem stage, '1' "
            f"max-pools by 2 there), e.g. '1111' for 128x128 or 224x224 input, '0011' for "
            f"32x32; got {pooling_stat!r}"
        )
    return tuple(c == "1" for c in pooling_stat)  # type: ignore[return-value]


class PatchSplitting(SpikingLayer):
    """The layers of the spiking patch-splitting stem (SPS): four 3x3 conv + BN + LIF
    stages widening to ``embed_dim`` (``/8, /4, /2, 1``), each optionally max-pooled by 2
    (3x3, stride 2), and a 3x3 relative-position conv + BN (+ LIF). Names follow the
    papers' code (``proj_conv``, ``proj_bn1``, ``rpe_conv``, ...); ``compute`` is the
    variant's."""

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        pooling_stat: str,
        lif: Callable[..., nn.Module],
        rpe_lif: bool,
    ) -> None:
        super().__init__()
        self.pools = parse_pooling(type(self).__name__, pooling_stat)
        widths = [in_channels, embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim]
        for i in range(4):
            suffix = str(i) if i else ""
            self.add_module(f"proj_conv{suffix}", _conv3x3(widths[i], widths[i + 1]))
            self.add_module(f"proj_bn{suffix}", nn.BatchNorm2d(widths[i + 1]))
            self.add_module(f"proj_lif{suffix}", lif())
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.rpe_conv = _conv3x3(embed_dim, embed_dim)
        self.rpe_bn = nn.BatchNorm2d(embed_dim)
        self.rpe_lif = lif() if rpe_lif else None

    def stage(self, i: int) -> tuple[nn.Module, nn.Module, nn.Module]:
        suffix = str(i) if i else ""
        return (
            getattr(self, f"proj_conv{suffix}"),
            getattr(self, f"proj_bn{suffix}"),
            getattr(self, f"proj_lif{suffix}"),
        )

    @staticmethod
    def output_size(size: int, pooling_stat: str) -> int:
        for pool in pooling_stat:
            if pool == "1":
                size = (size - 1) // 2 + 1  # MaxPool2d(3, 2, padding=1)
        return size


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=False)


def readout(dim: int, nclass: int, lif: nn.Module | None) -> nn.Sequential:
    """The classification head at each step: the mean over tokens, optionally a LIF (the
    Spike-driven Transformers), a linear layer; its outputs are averaged over time."""
    parts: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if lif is not None:
        parts.append(lif)
    parts.append(nn.Linear(dim, nclass))
    return nn.Sequential(*parts)


def init_weights(model: nn.Module, conv: bool = False) -> None:
    """The papers' initialisation: truncated normal (std 0.02) linear weights, zero biases;
    with ``conv`` (the Spike-driven Transformer) the convolutions too."""
    kinds = (nn.Linear, nn.Conv2d) if conv else (nn.Linear,)
    for module in model.modules():
        if isinstance(module, kinds):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class TransformerBackbone(SpikingBackbone):
    """The shared frame: input ``[B, T, C, H, W]``, the papers' LIF (time constant ``tau``,
    threshold ``v_threshold`` in SpikingJelly's units, surrogate ``spike_func``), the
    checks of the sizes (``embed_dim`` divisible into heads and by 8)."""

    def __init__(
        self,
        timestep: int,
        input_channels: int,
        h: int,
        w: int,
        amode: str,
        use_inner_loop: bool,
        tau: float,
        spike_func: Any,
        v_threshold: float = 1.0,
    ) -> None:
        super().__init__((input_channels, h, w), timestep, amode, use_inner_loop)
        if not v_threshold > 0:
            raise BidlError(f"v_threshold must be > 0 (1.0 in the papers), got {v_threshold!r}")
        papers_lif(tau)  # checks tau once, with a clear message
        self.tau, self.v_threshold = tau, v_threshold
        self.spike_func = spike_func

    def lif(self, relative_threshold: float = 1.0) -> Lif:
        """A LIF firing at ``relative_threshold * v_threshold`` (the attention's: 0.5)."""
        return papers_lif(self.tau, relative_threshold * self.v_threshold, self.spike_func)

    def nir_refusal(self) -> str | None:
        """Why NIR cannot hold this network, naming its first attention: every NIR node
        applies fixed weights to one input, none multiplies two activations."""
        for name, module in self.named_modules():
            product = getattr(type(module), "activation_product", None)
            if product is not None:
                return (
                    f"{name} ({type(module).__name__}) computes {product}, which multiplies "
                    f"spike tensors with each other; NIR has no node that multiplies "
                    f"activations (its nodes apply fixed weights to one input). Deploy it as "
                    f"a step graph (bidl compile: ONNX, AOTInductor or torch) instead"
                )
        return None

    def check_dims(self, dims: Sequence[int], heads: int, multiple: int = 1) -> None:
        name = type(self).__name__
        for dim in dims:
            if dim < 1 or dim % multiple:
                raise BidlError(
                    f"{name}: every width must be a positive multiple of {multiple}, got {dim}"
                )
        check_heads(name, dims[-1], heads)
