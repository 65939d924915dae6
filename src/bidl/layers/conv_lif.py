"""``Conv2dLif``: convolution, then a spiking neuron, then optional max pooling."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..neurons.base import fold_time
from ..neurons.builder import build_neuron
from .base import SpikingLayer, check_ndim, check_size


class Conv2dLif(SpikingLayer):
    """``Conv2d`` -> neuron (``BatchNorm2d`` on its membrane when ``norm``) -> ``MaxPool2d(pool)``.

    Input ``[B, C_in, H, W]`` per step (``[T, B, C_in, H, W]`` in step mode 'm'). The
    neuron is built by ``build_neuron(neuron, neuron_config, norm=..., input_channels=
    out_channels, **neuron_kwargs)``, so ``neuron_kwargs`` are the neuron's arguments
    (``mode``, ``soma_params``, ``alpha``, ``theta``, ``noise``, ``spike_func``, ...).
    ``pool`` is None (no pooling) or a ``MaxPool2d`` kernel size (stride = kernel size).
    """

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
        norm: bool = True,
        neuron: Any = "lif",
        neuron_config: Any = None,
        **neuron_kwargs: Any,
    ) -> None:
        super().__init__()
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
        neuron_kwargs.setdefault("input_channels", out_channels)
        self.neuron = build_neuron(
            neuron,
            neuron_config,
            norm=nn.BatchNorm2d(out_channels) if norm else None,
            **neuron_kwargs,
        )
        self.pool = nn.MaxPool2d(pool) if pool is not None else None

    def _name(self) -> str:
        return f"Conv2dLif({self.conv.in_channels}, {self.conv.out_channels})"

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        check_ndim("Conv2dLif", x, (4,), "[B, C, H, W]")
        check_size(self._name(), x, 1, self.conv.in_channels, "input channels")
        y = self.neuron.single_step(self.conv(x))
        return self.pool(y) if self.pool is not None else y

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        check_ndim("Conv2dLif (step_mode='m')", x_seq, (5,), "sequence [T, B, C, H, W]")
        check_size(self._name(), x_seq, 2, self.conv.in_channels, "input channels")
        y_seq = self.neuron.multi_step(fold_time(self.conv, x_seq))
        return fold_time(self.pool, y_seq) if self.pool is not None else y_seq
