"""``TemporalAggregation``: reduce a sequence of per-step outputs to one output per sample."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import BidlError

AGGREGATION_MODES = ("mean", "sum", "pick")


class TemporalAggregation(nn.Module):
    """Aggregate ``[T, B, ...]`` over time into ``[B, ...]``.

    Modes: ``'mean'`` (average over the T steps), ``'sum'`` (total), ``'pick'`` (the
    last step's output).

    Whole sequence (training, internal iteration)::

        y = agg(y_seq)                      # y_seq [T, B, ...] -> [B, ...]

    Streaming (external iteration, deployment): the state is the running sum ``acc``
    (for 'pick', the last output). Each step returns the aggregate of steps ``0..t`` and
    the new state; after the last step ``t = T - 1`` the output is exactly ``agg(y_seq)``
    (the same additions in the same order)::

        acc = None                          # or agg.init_state(y_0)
        for t, y_t in enumerate(y_seq):
            out, acc = agg.step(y_t, acc, t)
        # out == agg(y_seq)

    ``t`` may be an int or a tensor (so an exported step graph can take it as an input).
    """

    state_names = ("acc",)

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        if mode not in AGGREGATION_MODES:
            raise BidlError(
                f"TemporalAggregation: unknown mode {mode!r}; "
                f"use one of {', '.join(map(repr, AGGREGATION_MODES))}"
            )
        self.mode = mode

    def forward(self, y_seq: torch.Tensor) -> torch.Tensor:
        if y_seq.dim() < 2:
            raise BidlError(
                f"TemporalAggregation: expected a sequence [T, B, ...], got shape {list(y_seq.shape)}"
            )
        if self.mode == "pick":
            return y_seq[-1]
        acc = y_seq[0]
        for y_t in y_seq[1:]:
            acc = acc + y_t
        if self.mode == "sum":
            return acc
        return acc / y_seq.shape[0]

    def init_state(self, y_t: torch.Tensor) -> torch.Tensor:
        """The state before step 0: zeros shaped like one step's output."""
        return torch.zeros_like(y_t)

    def step(
        self, y_t: torch.Tensor, acc: torch.Tensor | None, t: int | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fold in step ``t`` (0-based): returns ``(aggregate of steps 0..t, new state)``."""
        if self.mode == "pick":
            return y_t, y_t
        acc = y_t if acc is None else acc + y_t
        if self.mode == "sum":
            return acc, acc
        return acc / (t + 1), acc

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
