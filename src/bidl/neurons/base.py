"""The state protocol every stateful cell follows, and the helpers that drive it.

A cell defines one pure function ``step(x, state) -> (out, new_state)`` and names its
state tensors. Everything else -- single-step calls that remember state (external
iteration, EIM), multi-step calls over a whole sequence (internal iteration, IIM), state
resets, and the export of an explicit-state step graph -- is built on that.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from .step_mode import StepModule, set_step_mode
from .time_fold import fold_time, run_multi_step

State = dict[str, torch.Tensor]

__all__ = [
    "State",
    "StatefulCell",
    "fold_time",
    "reset_states",
    "run_multi_step",
    "set_step_mode",
    "stateful_cells",
]


class StatefulCell(StepModule):
    """Base class of neurons (and anything else that carries state across timesteps).

    - ``step(x, state)``: one timestep; pure, no hidden globals.
    - ``init_state(x)``: the state before the first step, shaped after the input.
    - ``module(x)``: in ``step_mode`` 's' (default) one step from ``self.state`` (the
      initial state after a reset), kept for the next call; in 'm', ``x`` is
      ``[T, B, ...]`` and all ``T`` steps run in one call, continuing the same way.
    """

    state_names: tuple[str, ...] = ()
    #: initial value of each state (0 unless a cell says otherwise)
    state_init: dict[str, float] = {}

    def __init__(self) -> None:
        super().__init__()
        self.state: State | None = None

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def state_shape(self, x: torch.Tensor) -> torch.Size:
        """Shape of each state tensor for input ``x`` of one timestep (same as ``x`` here)."""
        return x.shape

    def init_state(self, x: torch.Tensor) -> State:
        shape = self.state_shape(x)
        return {
            name: torch.full(
                shape, float(self.state_init.get(name, 0.0)), dtype=x.dtype, device=x.device
            )
            for name in self.state_names
        }

    def reset(self) -> None:
        self.state = None

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        state = self.state if self.state is not None else self.init_state(x)
        out, self.state = self.step(x, state)
        return out

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Run all timesteps of ``x_seq`` ``[T, B, ...]``, continuing from ``self.state``."""
        state = self.state if self.state is not None else self.init_state(x_seq[0])
        outputs = []
        for x in x_seq:
            out, state = self.step(x, state)
            outputs.append(out)
        self.state = state
        return torch.stack(outputs)


def stateful_cells(model: nn.Module) -> Iterator[tuple[str, StatefulCell]]:
    """Every stateful cell of ``model`` with its qualified name, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, StatefulCell):
            yield name, module


def reset_states(model: nn.Module) -> None:
    """Forget the state of every cell; the next call starts from the initial state."""
    for _, cell in stateful_cells(model):
        cell.reset()
