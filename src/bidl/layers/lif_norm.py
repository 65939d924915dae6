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


class Lif2d(Lif):
    """LIF on ``[B, C, H, W]`` with ``BatchNorm2d(C)`` on the membrane when ``norm``.

    It is a ``Lif`` (same equations, state ``v``, step modes); ``norm`` is a bool here, and
    the other keyword arguments are ``Lif``'s (``mode``, ``memb_mode``, ``soma_params``,
    ``alpha``, ``beta``, ``theta``, ``v_0``, ``learn``, ``noise``, ``spike_func``).
    """

    def __init__(self, channels: int, norm: bool = True, **kwargs: Any) -> None:
        kwargs = _norm_kwargs("Lif2d", channels, kwargs)
        super().__init__(norm=nn.BatchNorm2d(channels) if norm else None, **kwargs)
        self.channels = channels

    def _check_input(self, x: torch.Tensor) -> None:
        check_ndim("Lif2d", x, (4,), "[B, C, H, W]")
        super()._check_input(x)


class Lif1d(Lif):
    """LIF on ``[B, C]`` or ``[B, C, L]`` with ``BatchNorm1d(C)`` on the membrane when ``norm``.

    Other keyword arguments as ``Lif2d``.
    """

    def __init__(self, features: int, norm: bool = True, **kwargs: Any) -> None:
        kwargs = _norm_kwargs("Lif1d", features, kwargs)
        super().__init__(norm=nn.BatchNorm1d(features) if norm else None, **kwargs)
        self.features = features

    def _check_input(self, x: torch.Tensor) -> None:
        check_ndim("Lif1d", x, (2, 3), "[B, C] or [B, C, L]")
        super()._check_input(x)
