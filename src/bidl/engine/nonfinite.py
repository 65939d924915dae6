"""The first non-finite loss of an epoch, noticed on the device and read at log intervals,
so that a training step never waits for the device to check its loss."""

from __future__ import annotations

import torch

_NONE = 2**62  # no non-finite loss yet


class NonFiniteWatch:
    """Keeps the first iteration whose loss was NaN or infinite, and that loss."""

    def __init__(self):
        self.first: torch.Tensor | None = None
        self.value: torch.Tensor | None = None

    def observe(self, loss: torch.Tensor, iteration: int) -> None:
        value = loss.detach().float().reshape(())
        if self.first is None:
            self.first = torch.full((), _NONE, dtype=torch.int64, device=value.device)
            self.value = torch.zeros((), device=value.device)
        new = ~torch.isfinite(value) & (self.first == _NONE)
        self.first = torch.where(new, iteration, self.first)
        self.value = torch.where(new, value, self.value)

    def found(self, world_size: int = 1) -> tuple[int, float | None] | None:
        """``(iteration, loss)`` of the first non-finite loss on any rank (the loss is None
        when another rank's came first), or None. Every rank must call it together."""
        if self.first is None:
            return None
        first = self.first.clone()
        if world_size > 1:
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
        iteration = int(first)
        if iteration == _NONE:
            return None
        here = float(self.value) if int(self.first) == iteration else None
        return iteration, here
