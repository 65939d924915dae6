"""``FcLif``: a fully connected layer followed by a spiking neuron."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..neurons.builder import build_neuron
from .base import Apply, SpikingLayer, check_ndim, check_size
from .options import neuron_options, resolve_norm


class FcLif(SpikingLayer):
    """``Linear`` -> [``BatchNorm1d``] -> neuron.

    Input ``[B, in_features]`` per step (``[T, B, in_features]`` in step mode 'm').
    ``norm``: ``'state'`` (or True, the default): ``BatchNorm1d`` on the neuron's
    membrane; ``'current'``: on the input current (``norm``); None (or False): none.
    BIDL's ``norm_state=True`` is ``'state'``, ``norm_state=False`` is None (BIDL's FcLif
    has no batch norm then). The neuron is built as in ``Conv2dLif``, with
    ``input_channels=out_features``.
    """

    #: what BIDL's ``norm_state=False`` means for this layer
    norm_state_false: str | None = None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        norm: bool | str | None = True,
        neuron: Any = "lif",
        neuron_config: Any = None,
        *,
        norm_state: bool | None = None,
        **neuron_kwargs: Any,
    ) -> None:
        super().__init__()
        self.norm_mode = resolve_norm(type(self).__name__, norm, norm_state, self.norm_state_false)
        self.fc = nn.Linear(in_features, out_features, bias=bias)
        self.norm = nn.BatchNorm1d(out_features) if self.norm_mode == "current" else None
        self.neuron = build_neuron(
            neuron,
            neuron_config,
            norm=nn.BatchNorm1d(out_features) if self.norm_mode == "state" else None,
            **neuron_options(neuron, neuron_kwargs, out_features),
        )

    def _name(self) -> str:
        return f"{type(self).__name__}({self.fc.in_features}, {self.fc.out_features})"

    def check_input(self, x: torch.Tensor, sequence: bool) -> None:
        name = type(self).__name__
        if sequence:
            check_ndim(f"{name} (step_mode='m')", x, (3,), "sequence [T, B, in_features]")
        else:
            check_ndim(name, x, (2,), "[B, in_features]")
        check_size(self._name(), x, x.dim() - 1, self.fc.in_features, "input features")

    def compute(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        y = apply(self.fc, x)
        if self.norm is not None:
            y = apply(self.norm, y)
        return apply(self.neuron, y)

    def extra_repr(self) -> str:
        return f"norm={self.norm_mode!r}, " + super().extra_repr()
