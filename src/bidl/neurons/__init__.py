"""Stateful neuron cells, surrogate spike functions and the state protocol."""

from .base import (
    State,
    StatefulCell,
    fold_time,
    reset_states,
    run_multi_step,
    set_step_mode,
    stateful_cells,
)

__all__ = [
    "State",
    "StatefulCell",
    "fold_time",
    "reset_states",
    "run_multi_step",
    "set_step_mode",
    "stateful_cells",
]
