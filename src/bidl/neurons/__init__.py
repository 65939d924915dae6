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
from .builder import build_neuron
from .lif import Lif
from .surrogate import (
    SPIKE_FUNCTIONS,
    ATan,
    Rectangle,
    Sigmoid,
    SurrogateSpike,
    Triangle,
    build_spike_fn,
    heaviside,
)

__all__ = [
    "SPIKE_FUNCTIONS",
    "ATan",
    "Lif",
    "Rectangle",
    "Sigmoid",
    "State",
    "StatefulCell",
    "SurrogateSpike",
    "Triangle",
    "build_neuron",
    "build_spike_fn",
    "fold_time",
    "heaviside",
    "reset_states",
    "run_multi_step",
    "set_step_mode",
    "stateful_cells",
]
