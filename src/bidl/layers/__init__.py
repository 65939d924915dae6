"""Composite spiking layers: stateless parts plus neuron cells, runnable step by step or
over a whole sequence, and the temporal aggregation of a network's outputs."""

from .aggregation import AGGREGATION_MODES, TemporalAggregation
from .base import Apply, SpikingLayer, apply_one_step
from .bidl_keys import (
    bidl_layer_key_map,
    convert_bidl_layer_state,
    load_bidl_layer_state,
    rename_keys,
)
from .conv_lif import Conv2dLif
from .fc_lif import FcLif
from .lif_norm import ChannelNormCell, Lif1d, Lif2d
from .lif_plus import Conv2dLifPlus, FcLifPlus, Lif1dPlus, Lif2dPlus
from .options import NORM_MODES, POOL_POSITIONS

__all__ = [
    "AGGREGATION_MODES",
    "NORM_MODES",
    "POOL_POSITIONS",
    "Apply",
    "ChannelNormCell",
    "Conv2dLif",
    "Conv2dLifPlus",
    "FcLif",
    "FcLifPlus",
    "Lif1d",
    "Lif1dPlus",
    "Lif2d",
    "Lif2dPlus",
    "SpikingLayer",
    "TemporalAggregation",
    "apply_one_step",
    "bidl_layer_key_map",
    "convert_bidl_layer_state",
    "load_bidl_layer_state",
    "rename_keys",
]
