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
from .lif_plus import LifPlus, lifplus_state_names
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
    "LifPlus",
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
    "lifplus_state_names",
    "reset_states",
    "run_multi_step",
    "set_step_mode",
    "stateful_cells",
]
