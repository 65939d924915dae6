"""``Lif2d`` and ``Lif1d``: a LIF cell with batch norm on its membrane potential."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..neurons.lif import Lif
from ..registry import BidlError
from .base import check_ndim


def _norm_kwargs(layer: str, channels: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise BidlError(f"{layer}: the channel count must be a positive int, got {channels!r}")
    given = kwargs.get("input_channels", channels)
    if given != channels:
        raise BidlError(
            f"{layer}({channels}): input_channels={given} contradicts channels={channels}"
        )
    if kwargs.get("channel_dim", 1) != 1:
        raise BidlError(
            f"{layer}: the channel dim is 1 ([B, C, ...]); got channel_dim={kwargs['channel_dim']}"
        )
    kwargs["input_channels"] = channels
    return kwargs


class ChannelNormCell:
    """Mixin for a LIF-family cell class: ``Cell(channels, norm=True, **cell_kwargs)`` with
    ``norm_class(channels)`` on the membrane when ``norm``, inputs of ``ndims`` ranks, and
    the cell's BIDL layer default ``memb_mode``. Put it first: ``class X(ChannelNormCell,
    Lif)``."""

    norm_class: type[nn.Module]
    ndims: tuple[int, ...]
    layout: str

    def __init__(self, channels: int, norm: bool = True, **kwargs: Any) -> None:
        name = type(self).__name__
        kwargs = _norm_kwargs(name, channels, kwargs)
        kwargs.setdefault("memb_mode", self.layer_memb_mode)
        super().__init__(norm=self.norm_class(channels) if norm else None, **kwargs)
        self.channels = channels

    def _check_input(self, x: torch.Tensor) -> None:
        check_ndim(type(self).__name__, x, self.ndims, self.layout)
        super()._check_input(x)


class Lif2d(ChannelNormCell, Lif):
    """LIF on ``[B, C, H, W]`` with ``BatchNorm2d(C)`` on the membrane when ``norm``.

    It is a ``Lif`` (same equations, state ``v``, step modes); ``norm`` is a bool here, and
    the other keyword arguments are ``Lif``'s (``mode``, ``memb_mode`` (default
    ``(0, 'relu')`` as BIDL's Lif2d), ``soma_params``, ``alpha``, ``beta``, ``theta``,
    ``v_0``, ``learn``, ``noise``, ``spike_func``).
    """

    norm_class = nn.BatchNorm2d
    ndims = (4,)
    layout = "[B, C, H, W]"


class Lif1d(ChannelNormCell, Lif):
    """LIF on ``[B, C]`` or ``[B, C, L]`` with ``BatchNorm1d(C)`` on the membrane when ``norm``.

    Other keyword arguments as ``Lif2d``.
    """

    norm_class = nn.BatchNorm1d
    ndims = (2, 3)
    layout = "[B, C] or [B, C, L]"

    @property
    def features(self) -> int:
        return self.channels
