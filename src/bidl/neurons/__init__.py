"""Stateful neuron cells, surrogate spike functions and the step-mode and state protocols."""

from .base import State, StatefulCell, reset_states, stateful_cells
from .builder import build_neuron
from .lif import Lif
from .lif_plus import LifPlus, lifplus_state_names
from .monitor import FiringRateMonitor
from .spiking_cell import SpikingCell, membrane_noise
from .step_mode import STEP_MODES, StepModule, set_step_mode, step_mode_of, step_modules
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
from .time_fold import fold_time, is_time_foldable, run_multi_step, time_foldable

__all__ = [
    "SPIKE_FUNCTIONS",
    "STEP_MODES",
    "ATan",
    "FiringRateMonitor",
    "Lif",
    "LifPlus",
    "Rectangle",
    "Sigmoid",
    "SpikingCell",
    "State",
    "StatefulCell",
    "StepModule",
    "SurrogateSpike",
    "Triangle",
    "build_neuron",
    "build_spike_fn",
    "fold_time",
    "heaviside",
    "is_time_foldable",
    "lifplus_state_names",
    "membrane_noise",
    "reset_states",
    "run_multi_step",
    "set_step_mode",
    "step_mode_of",
    "step_modules",
    "stateful_cells",
    "time_foldable",
]
