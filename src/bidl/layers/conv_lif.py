"""``Conv2dLif``: convolution, optional pooling and batch norm, a spiking neuron."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..neurons.builder import build_neuron
from .base import Apply, SpikingLayer, check_ndim, check_size
from .options import neuron_options, resolve_norm, resolve_pool


class Conv2dLif(SpikingLayer):
    """``Conv2d`` -> [``MaxPool2d``] -> [``BatchNorm2d``] -> neuron -> [``MaxPool2d``].

    Input ``[B, C_in, H, W]`` per step (``[T, B, C_in, H, W]`` in step mode 'm').

    - ``norm``: ``'state'`` (or True, the default): ``BatchNorm2d`` on the neuron's
      membrane each step (``neuron.norm``); ``'current'``: ``BatchNorm2d`` on the input
      current, after the convolution and a 'before' pool (``norm``); None (or False): none.
    - ``pool``: None, or a ``MaxPool2d`` kernel size (stride = kernel size), applied
      ``pool_position='after'`` the neuron (to its output) or ``'before'`` the norm and
      the neuron (the membrane then lives at the pooled resolution).
    - BIDL's keywords: ``norm_state=True`` is ``norm='state'``, ``norm_state=False`` is
      ``norm='current'`` (BIDL's Conv2dLif then normalizes the input current);
      ``mp=True`` is ``pool=2, pool_position='before'``.

    The neuron is ``build_neuron(neuron, neuron_config, norm=..., input_channels=
    out_channels, **neuron_kwargs)``: ``neuron_kwargs`` are the neuron's arguments
    (``mode``, ``soma_params``, ``alpha``, ``theta``, ``noise``, ``spike_func``, ...);
    ``memb_mode`` defaults to BIDL's layer default, ``(0, 'relu')`` for LIF and
    ``(0, 'tanh')`` for LIF+.
    """

    #: what BIDL's ``norm_state=False`` means for this layer
    norm_state_false: str | None = "current"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        pool: int | tuple[int, int] | None = None,
        norm: bool | str | None = True,
        neuron: Any = "lif",
        neuron_config: Any = None,
        *,
        pool_position: str = "after",
        norm_state: bool | None = None,
        mp: bool | None = None,
        **neuron_kwargs: Any,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.norm_mode = resolve_norm(name, norm, norm_state, self.norm_state_false)
        pool, self.pool_position = resolve_pool(name, pool, pool_position, mp)
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.pool = nn.MaxPool2d(pool) if pool is not None else None
        self.norm = nn.BatchNorm2d(out_channels) if self.norm_mode == "current" else None
        self.neuron = build_neuron(
            neuron,
            neuron_config,
            norm=nn.BatchNorm2d(out_channels) if self.norm_mode == "state" else None,
            **neuron_options(neuron, neuron_kwargs, out_channels),
        )

    def _name(self) -> str:
        return f"{type(self).__name__}({self.conv.in_channels}, {self.conv.out_channels})"

    def check_input(self, x: torch.Tensor, sequence: bool) -> None:
        name = type(self).__name__
        if sequence:
            check_ndim(f"{name} (step_mode='m')", x, (5,), "sequence [T, B, C, H, W]")
        else:
            check_ndim(name, x, (4,), "[B, C, H, W]")
        check_size(self._name(), x, x.dim() - 3, self.conv.in_channels, "input channels")

    def compute(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        y = apply(self.conv, x)
        if self.pool is not None and self.pool_position == "before":
            y = apply(self.pool, y)
        if self.norm is not None:
            y = apply(self.norm, y)
        y = apply(self.neuron, y)
        if self.pool is not None and self.pool_position == "after":
            y = apply(self.pool, y)
        return y

    def extra_repr(self) -> str:
        return f"norm={self.norm_mode!r}, pool_position={self.pool_position!r}, " + (
            super().extra_repr()
        )
