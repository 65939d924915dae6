"""``SpikingBackbone``: one per-timestep definition, run with the time loop outside the
network (EIM, BIDL's ``...Itout`` models) or inside each layer (IIM, ``...It``)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from torch import nn

from ...layers import TemporalAggregation
from ...neurons import reset_states, run_multi_step
from ...registry import BACKBONES, BidlError


class SpikingBackbone(nn.Module):
    """A subclass builds ``self.body`` (spiking layers for one timestep, an ``nn.Sequential``),
    ``self.head`` (the per-timestep readout) and calls ``super().__init__`` first.

    ``forward(xs)`` takes BIDL's layout ``[B, T, *input_shape]``, resets every state,
    runs the time loop outside (EIM) or inside the layers (IIM), and aggregates the
    per-step outputs over time (``amode``: 'mean' | 'sum' | 'pick').
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        timestep: int,
        amode: str = "mean",
        use_inner_loop: bool = False,
    ):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.timestep = timestep
        self.use_inner_loop = use_inner_loop
        self.aggregate = TemporalAggregation(amode)

    def check_input(self, xs: torch.Tensor) -> None:
        expected = len(self.input_shape) + 2
        if xs.dim() != expected or tuple(xs.shape[2:]) != self.input_shape:
            dims = ", ".join(str(s) for s in self.input_shape)
            raise BidlError(
                f"{type(self).__name__} expects input [B, T, {dims}] (batch, time, "
                f"{'channels, height, width' if len(self.input_shape) == 3 else 'features'}); "
                f"got {list(xs.shape)}. Make the model config (input_channels, h, w) "
                f"match what the data pipeline produces."
            )

    def forward_step(self, x_t: torch.Tensor) -> torch.Tensor:
        """One timestep through body and head, using and updating the cells' states."""
        return self.head(self.body(x_t))

    def forward_sequence(self, x_seq: torch.Tensor) -> torch.Tensor:
        """All timesteps ``[T, B, ...]`` -> per-step outputs ``[T, B, ...]``."""
        if self.use_inner_loop:
            return run_multi_step(self.head, run_multi_step(self.body, x_seq))
        return torch.stack([self.forward_step(x_t) for x_t in x_seq])

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        self.check_input(xs)
        reset_states(self)
        outputs = self.forward_sequence(xs.transpose(0, 1))  # time-major inside
        return self.aggregate(outputs)


def register_spiking_backbone(eim_name: str, iim_name: str):
    """Register a backbone class under its EIM name and a factory under its IIM name.

    Both names build the same class; the IIM one defaults ``use_inner_loop=True``.
    """

    def register(cls: type[SpikingBackbone]) -> type[SpikingBackbone]:
        BACKBONES.register_module(name=[cls.__name__, eim_name], module=cls)

        def build_inner_loop(**kwargs):
            kwargs.setdefault("use_inner_loop", True)
            return cls(**kwargs)

        build_inner_loop.__name__ = iim_name
        build_inner_loop.__signature__ = inspect.signature(cls)
        build_inner_loop.__doc__ = f"{cls.__name__} with the time loop inside the layers (IIM)."
        BACKBONES.register_module(name=iim_name, module=build_inner_loop)
        return cls

    return register
