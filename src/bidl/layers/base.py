"""What every composite layer shares: one definition for both step modes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..neurons.step_mode import StepModule
from ..neurons.time_fold import run_multi_step
from ..registry import BidlError

#: how a layer applies one of its parts: to one step, or over a whole sequence
Apply = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def apply_one_step(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a part to one timestep: just call it."""
    return module(x)


class SpikingLayer(StepModule):
    """A layer built from stateless parts and stateful cells, written once.

    A subclass defines ``compute(x, apply)``, calling ``apply(part, x)`` for each part.
    In step mode 's' ``apply`` calls the part on one timestep ``[B, ...]``; in 'm' it is
    ``run_multi_step``: ``x`` is ``[T, B, ...]``, stateless parts run once on time folded
    into the batch, cells (in the layer's mode) run all ``T`` steps. The two give the same
    result. ``check_input(x, sequence)`` may check the input first.
    """

    def compute(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        raise NotImplementedError

    def check_input(self, x: torch.Tensor, sequence: bool) -> None:
        """Raise a ``BidlError`` for an input this layer cannot take."""

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x, sequence=False)
        return self.compute(x, apply_one_step)

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        self.check_input(x_seq, sequence=True)
        return self.compute(x_seq, run_multi_step)


def check_ndim(layer: str, x: torch.Tensor, allowed: tuple[int, ...], layout: str) -> None:
    """Raise a clear error when a one-step input does not have one of ``allowed`` ranks."""
    if x.dim() not in allowed:
        raise BidlError(
            f"{layer}: expected a one-timestep input {layout}, got shape {list(x.shape)}; "
            f"a whole sequence [T, B, ...] needs step_mode='m'"
        )


def check_size(layer: str, x: torch.Tensor, dim: int, expected: int, what: str) -> None:
    """Raise a clear error when ``x.shape[dim]`` is not the ``expected`` size."""
    if x.shape[dim] != expected:
        raise BidlError(
            f"{layer}: expected {expected} {what} along dim {dim}, got {x.shape[dim]} "
            f"(input shape {list(x.shape)})"
        )
