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

    Streaming (external iteration, deployment) follows the cells' pure step protocol:
    ``step(y_t, state) -> (out, new_state)`` with ``state`` a dict of ``state_names``:
    ``acc``, the running sum (for 'pick', the last output), and for 'mean' ``steps``, the
    number of steps so far (a tensor, so an exported step graph carries it as a state).
    Each step returns the aggregate of steps ``0..t``; after the last one it is exactly
    ``agg(y_seq)`` (the same additions in the same order)::

        state = agg.init_state(y_seq[0])    # or None: the first step starts it
        for y_t in y_seq:
            out, state = agg.step(y_t, state)
        # out == agg(y_seq)
    """

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        if mode not in AGGREGATION_MODES:
            raise BidlError(
                f"TemporalAggregation: unknown mode {mode!r}; "
                f"use one of {', '.join(map(repr, AGGREGATION_MODES))}"
            )
        self.mode = mode

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("acc", "steps") if self.mode == "mean" else ("acc",)

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

    def init_state(self, y_t: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state before step 0: a zero sum shaped like one step's output (and, for
        'mean', a zero step count of shape [1])."""
        state = {"acc": torch.zeros_like(y_t)}
        if self.mode == "mean":
            state["steps"] = torch.zeros(1, dtype=y_t.dtype, device=y_t.device)
        return state

    def step(
        self, y_t: torch.Tensor, state: dict[str, torch.Tensor] | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fold in one step: ``(aggregate of the steps so far, new state)``."""
        if state is None:
            state = self.init_state(y_t)
        if self.mode == "pick":
            return y_t, {"acc": y_t}
        acc = state["acc"] + y_t
        if self.mode == "sum":
            return acc, {"acc": acc}
        steps = state["steps"] + 1
        return acc / steps, {"acc": acc, "steps": steps}

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
