"""What every composite layer shares: a step mode and the forward that dispatches on it."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import BidlError


class SpikingLayer(nn.Module):
    """A layer built from stateless parts and stateful cells, runnable both ways.

    - ``single_step(x)``: one timestep ``[B, ...]``; the cells keep their state.
    - ``multi_step(x_seq)``: a whole sequence ``[T, B, ...]``; stateless parts run once on
      time folded into the batch, cells run all ``T`` steps. The result equals calling
      ``single_step`` ``T`` times.
    - ``forward`` picks one by ``step_mode`` (``'s'`` by default; ``set_step_mode``
      switches a whole model).
    """

    def __init__(self) -> None:
        super().__init__()
        self.step_mode = "s"

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "m":
            return self.multi_step(x)
        if self.step_mode == "s":
            return self.single_step(x)
        raise BidlError(
            f"{type(self).__name__}: step_mode must be 's' (single step) or 'm' (multi step), "
            f"got {self.step_mode!r}"
        )

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode!r}"


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
