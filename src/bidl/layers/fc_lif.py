"""``FcLif``: a fully connected layer followed by a spiking neuron."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..neurons.base import fold_time
from ..neurons.builder import build_neuron
from .base import SpikingLayer, check_ndim, check_size


class FcLif(SpikingLayer):
    """``Linear`` -> neuron (``BatchNorm1d`` on its membrane when ``norm``).

    Input ``[B, in_features]`` per step (``[T, B, in_features]`` in step mode 'm'). The
    neuron is built as in ``Conv2dLif``, with ``input_channels=out_features``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        norm: bool = True,
        neuron: Any = "lif",
        neuron_config: Any = None,
        **neuron_kwargs: Any,
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features, bias=bias)
        neuron_kwargs.setdefault("input_channels", out_features)
        self.neuron = build_neuron(
            neuron,
            neuron_config,
            norm=nn.BatchNorm1d(out_features) if norm else None,
            **neuron_kwargs,
        )

    def _name(self) -> str:
        return f"FcLif({self.fc.in_features}, {self.fc.out_features})"

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        check_ndim("FcLif", x, (2,), "[B, in_features]")
        check_size(self._name(), x, 1, self.fc.in_features, "input features")
        return self.neuron.single_step(self.fc(x))

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        check_ndim("FcLif (step_mode='m')", x_seq, (3,), "sequence [T, B, in_features]")
        check_size(self._name(), x_seq, 2, self.fc.in_features, "input features")
        return self.neuron.multi_step(fold_time(self.fc, x_seq))
